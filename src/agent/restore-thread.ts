// The writer's side of a restore across a wire, in a thread of its own, as rsync's
// receiver is a process of its own: the thread that takes the bytes off the wire
// (over SSH, it also decrypts them) only copies them across, while this thread
// deframes, validates (RestoreStream), and writes (RestoreWriter, unchanged and
// synchronous: making files is most of a restore's time). The thread runs the
// agent's bundle (agent/main.ts starts it when it is not the main thread), so lb
// and a remote agent run the same code. A bounded number of bytes is in flight
// between the two: past it the taking side stops reading, and the wire's own
// backpressure (the SSH window, the pipe) slows the feed.
import type { Readable } from 'node:stream';
import { Worker, parentPort, workerData } from 'node:worker_threads';
import { FramePieces } from '../protocol/frame-pieces.js';
import { FRAME_JSON, ProtocolError, type Frame } from '../protocol/frames.js';
import { RestoreStream, decodeRestoreReply } from '../protocol/restore-messages.js';
import type { RestoreTally } from '../repo/restore-record.js';
import { RestoreWriter } from '../repo/restore-writer.js';
import { ownersFromElsewhere, writeStreamItem } from './restore-stream.js';

export interface WriterSetup {
  target: string;
  numericIds: boolean;
  /** Whether the agent's replies may come amid the stream (restore-from): its `error` ends the run. */
  replies: boolean;
}

/** Why the run ended before the stream's end: a peer breaking the protocol, the peer's own error, or this side's. */
export type WriterFailure = { kind: 'protocol' | 'said' | 'said-usage' | 'error'; message: string };

export interface WriterOutcome {
  tally: RestoreTally;
  /** The stream reached its end. */
  ended: boolean;
  failure?: WriterFailure;
}

type ToWriter = { t: 'bytes'; data: ArrayBuffer; length: number } | { t: 'input-ended' };
type FromWriter = { t: 'problem'; path: Uint8Array; text: string } | { t: 'taken'; bytes: number } | ({ t: 'done' } & WriterOutcome);

/** Bytes copied across in one message, at most: fewer messages than the wire's 32 KiB packets. */
const BATCH = 1 << 20;
/** Bytes given to the writer and not yet written, at most (beyond one batch). */
const IN_FLIGHT = 8 << 20;

export class WriterThread {
  private readonly worker: Worker;
  private batch = Buffer.allocUnsafe(BATCH);
  private batched = 0;
  private flushScheduled = false;
  private inFlight = 0;
  /** Lets the input flow again, once the writer has caught up. */
  private resume: (() => void) | null = null;
  private over = false;
  /** Settles once the writer is done: the stream's end, a failure, or the input's end. */
  readonly outcome: Promise<WriterOutcome>;

  /** `script`: the agent's bundle, which serves the thread (agent/main.ts). */
  constructor(script: string, setup: WriterSetup, problem: (path: Buffer, text: string) => void) {
    this.worker = new Worker(script, { workerData: { lbRestoreWriter: setup } });
    this.outcome = new Promise((resolve, reject) => {
      this.worker.on('message', (m: FromWriter) => {
        if (m.t === 'problem') problem(Buffer.from(m.path.buffer, m.path.byteOffset, m.path.byteLength), m.text);
        else if (m.t === 'taken') this.taken(m.bytes);
        else {
          this.finished();
          resolve(m);
          void this.worker.terminate();
        }
      });
      this.worker.once('error', (error) => {
        this.finished();
        reject(error);
      });
      this.worker.once('exit', () => {
        this.finished();
        reject(new Error('the restore writer ended before the restore did'));
      });
    });
    this.outcome.catch(() => {}); // a caller that stopped feeding early still awaits it
  }

  /**
   * Takes `input` (the stream after the feeding side's first answer, unread) until the writer is done; the
   * feeding side may keep its end open after the stream's end, waiting for the tally. Chunks are taken as
   * they come ('data'), not read() from the stream's buffer, which joins what it holds into a new buffer.
   */
  take(input: Readable): Promise<WriterOutcome> {
    let broken: Error | null = null;
    const onData = (chunk: Buffer) => {
      this.feed(chunk);
      if (this.inFlight > IN_FLIGHT) input.pause();
    };
    const onEnd = () => this.inputEnded();
    // The input broke (the connection was lost, say): the writer still sets directory metadata and removes its temporaries.
    const onError = (error: Error) => {
      broken = error;
      this.inputEnded();
    };
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    this.resume = () => input.resume();
    input.resume();
    const stop = () => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
    };
    return this.outcome.then(
      (outcome) => {
        stop();
        if (broken) throw broken;
        return outcome;
      },
      (error: unknown) => {
        stop();
        throw broken ?? error;
      },
    );
  }

  private inputEnded(): void {
    this.flush();
    this.worker.postMessage({ t: 'input-ended' } satisfies ToWriter);
  }

  private feed(chunk: Buffer): void {
    for (let at = 0; at < chunk.length; ) {
      const n = chunk.copy(this.batch, this.batched, at);
      this.batched += n;
      at += n;
      if (this.batched === BATCH) this.flush();
    }
    if (this.batched > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  private flush(): void {
    if (this.batched === 0 || this.over) return;
    // The batch's memory is handed over, not copied (a buffer this size has its own); a fresh one takes the next bytes.
    const data = this.batch.buffer;
    const length = this.batched;
    this.inFlight += length;
    this.batch = Buffer.allocUnsafe(BATCH);
    this.batched = 0;
    this.worker.postMessage({ t: 'bytes', data, length } satisfies ToWriter, [data]);
  }

  private taken(bytes: number): void {
    this.inFlight -= bytes;
    if (this.inFlight <= IN_FLIGHT && !this.over) this.resume?.();
  }

  private finished(): void {
    this.over = true;
  }
}

/** The thread itself: true when this is one (agent/main.ts then runs nothing else). */
export function serveWriterThread(): boolean {
  const setup = (workerData as { lbRestoreWriter?: WriterSetup } | null)?.lbRestoreWriter;
  const port = parentPort;
  if (setup === undefined || port === null) return false;
  const post = (m: FromWriter) => port.postMessage(m);
  // A copy of its own: the writer's path may be a view on a larger buffer, all of which would be cloned.
  const writer = new RestoreWriter(setup.target, ownersFromElsewhere(setup.numericIds), (path, text) => post({ t: 'problem', path: new Uint8Array(path), text }));
  const stream = new RestoreStream();
  const decoder = new FramePieces();
  let over = false;
  const end = (outcome: WriterOutcome) => {
    over = true;
    post({ t: 'done', ...outcome });
  };
  port.on('message', (m: ToWriter) => {
    if (over) return;
    try {
      if (m.t === 'input-ended') return end({ tally: writer.finish(true), ended: false });
      for (const frame of decoder.push(Buffer.from(m.data, 0, m.length))) {
        if (setup.replies) refuseReply(frame);
        if (writeStreamItem(writer, stream.decode(frame))) return end({ tally: writer.finish(), ended: true });
      }
      post({ t: 'taken', bytes: m.length });
    } catch (error) {
      // Directory metadata set, held contents and the temporary in progress removed.
      end({ tally: writer.finish(true), ended: false, failure: failureOf(error) });
    }
  });
  return true;
}

class PeerSaid extends Error {
  constructor(
    message: string,
    readonly usage: boolean,
  ) {
    super(message);
  }
}

/** A reply is never taken for a stream message: an `error` ends the run, anything else is out of place. */
function refuseReply(frame: Frame): void {
  if (frame.type !== FRAME_JSON) return;
  const reply = decodeRestoreReply(frame.message);
  if (reply === null) return;
  if (reply.t === 'error') throw new PeerSaid(reply.message, reply.usage);
  throw new ProtocolError('the agent sent a message out of place');
}

function failureOf(error: unknown): WriterFailure {
  if (error instanceof PeerSaid) return { kind: error.usage ? 'said-usage' : 'said', message: error.message };
  return { kind: error instanceof ProtocolError ? 'protocol' : 'error', message: error instanceof Error ? error.message : String(error) };
}
