// A read command on a repository over SSH: lb's agent runs the command's body
// there (agent/read.ts) and sends what it prints; this prints it here. A peer's
// words are never printed as they come: text loses its control characters (no
// terminal escapes from a remote), JSON is parsed and written anew, the exit
// status is one lb documents, and a peer that breaks the protocol is refused in one line.
import { ProtocolError, FrameDecoder, FrameWriter, FRAME_JSON } from '../protocol/frames.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import { decodeReadReply, encodeReadRequest, type ReadCommand } from '../protocol/read.js';
import type { SshOptions } from '../transport/ssh.js';
import { RemoteEnded, printable, withAgent, type Remote } from './remote-agent.js';
import { UsageError, type Output } from './output.js';

/** The largest --json value taken from a peer (its parts are joined before it is parsed). */
const MAX_JSON_TEXT = 256 * 1024 * 1024;

export async function readRemote(where: Remote, read: ReadCommand, out: Output, ssh: SshOptions, series: string | null = null): Promise<number> {
  return withAgent(where, ssh, 'its output was cut short there', async (agent) => {
    const request = new FrameWriter(agent.output, false);
    const inSeries = series === null ? {} : { series };
    request.post(encodeReadRequest({ t: 'read', version: PROTOCOL_VERSION, repository: where.path, json: out.asJson, read, ...inSeries }));
    request.flush();
    return printReplies(agent.input, out);
  });
}

/** Prints the agent's replies until its last; returns the exit status it reports, or throws what it says went wrong. */
async function printReplies(input: AsyncIterable<Buffer>, out: Output): Promise<number> {
  const decoder = new FrameDecoder();
  let json = '';
  for await (const chunk of input) {
    for (const frame of decoder.push(chunk)) {
      if (frame.type !== FRAME_JSON) throw new ProtocolError('the agent sent file data');
      const reply = decodeReadReply(frame.message);
      switch (reply.t) {
        case 'line':
          out.line(printable(reply.text));
          break;
        case 'warn':
          out.warn(printable(reply.text));
          break;
        case 'json':
          if (json.length + reply.text.length > MAX_JSON_TEXT) throw new ProtocolError('the agent sent a JSON value larger than lb takes');
          json += reply.text;
          if (reply.last) {
            out.json(parsed(json));
            json = '';
          }
          break;
        case 'item':
          out.item(reply.value); // already parsed from the frame; written anew
          break;
        case 'items-end':
          out.endItems();
          break;
        case 'end':
          return reply.exit;
        case 'error': {
          const message = printable(reply.message);
          throw reply.usage ? new UsageError(message) : new Error(message);
        }
      }
    }
  }
  throw new RemoteEnded('the lb agent on the remote ended without saying how the command went');
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new ProtocolError('the agent sent a malformed JSON value');
  }
}
