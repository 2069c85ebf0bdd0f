// The read role: lb asked this agent, next to a repository, to run one read
// command (protocol/read.ts). The command's body (read/) runs here, printing
// through an output that sends each line, warning and JSON value as a message;
// waiting on the peer at each, so a long listing streams in flat memory.
import type { Readable, Writable } from 'node:stream';
import { UsageError } from '../cli/status.js';
import { FRAME_JSON, FrameWriter, ProtocolError, readFirstFrame } from '../protocol/frames.js';
import { decodeReadRequest, type ReadReply } from '../protocol/read.js';
import { openRepository } from '../read/open.js';
import type { Report } from '../read/report.js';
import { runRead } from '../read/run.js';

/** JSON text goes in parts this long (characters), well inside a frame whatever they hold. */
const JSON_PART = 1024 * 1024;

class WireReport implements Report {
  constructor(
    private readonly writer: FrameWriter,
    readonly asJson: boolean,
  ) {}

  private send(reply: ReadReply): Promise<void> {
    return this.writer.send(reply);
  }

  line(text: string): Promise<void> {
    return this.send({ t: 'line', text });
  }

  warn(text: string): Promise<void> {
    return this.send({ t: 'warn', text });
  }

  async json(value: unknown): Promise<void> {
    const text = JSON.stringify(value);
    for (let at = 0; at === 0 || at < text.length; at += JSON_PART) {
      await this.send({ t: 'json', text: text.slice(at, at + JSON_PART), last: at + JSON_PART >= text.length });
    }
  }

  item(value: unknown): Promise<void> {
    return this.send({ t: 'item', value });
  }

  endItems(): Promise<void> {
    return this.send({ t: 'items-end' });
  }
}

/**
 * Reads the request on `input`, runs it, answers on `output`; resolves once the answer is handed to the
 * system. lb sends nothing after its request: more input, or its end, means lb broke off (`onPeerGone`).
 */
export async function readRepository(input: Readable, output: Writable, onPeerGone: () => void): Promise<void> {
  const first = await readFirstFrame(input);
  if (first.type !== FRAME_JSON) throw new ProtocolError('lb began with file data');
  const request = decodeReadRequest(first.message);
  input.on('data', onPeerGone);
  input.once('end', onPeerGone);
  input.resume();
  const writer = new FrameWriter(output);
  let last: ReadReply;
  try {
    const exit = await runRead(openRepository(request.repository, request.series ?? null), request.read, new WireReport(writer, request.json));
    last = { t: 'end', exit };
  } catch (error) {
    if (writer.broken) throw error; // lb is gone: nobody to tell
    last = { t: 'error', message: error instanceof Error ? error.message : String(error), usage: error instanceof UsageError };
  }
  writer.post(last);
  writer.flush();
  await new Promise<void>((resolve) => output.write(Buffer.alloc(0), () => resolve()));
}
