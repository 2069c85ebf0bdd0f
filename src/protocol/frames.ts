// Length-prefixed frames: u32 big-endian length of (type + payload), u8 type, payload.
// JSON frames carry control messages (deflated when large: batches of entries
// compress several times over); DATA frames carry raw file bytes.
import type { Readable, Writable } from 'node:stream';
import { deflateRawSync, inflateRawSync } from 'node:zlib';

export const FRAME_JSON = 1;
export const FRAME_DATA = 2;
const FRAME_DEFLATED_JSON = 3;

/** JSON this long or longer is deflated: below it, the saving is a few bytes. */
const DEFLATE_FROM = 512;

/** Largest frame either side accepts; a peer announcing more is broken or hostile. */
export const MAX_FRAME = 8 * 1024 * 1024;
/** File bytes are cut into chunks this size; big enough to amortise framing, small enough to interleave. */
export const DATA_CHUNK = 1024 * 1024;

export type Frame = { type: typeof FRAME_JSON; message: unknown } | { type: typeof FRAME_DATA; data: Buffer };

export class ProtocolError extends Error {}

/**
 * The first frame on `input`, leaving every byte after it in the stream for the
 * reader that takes over (with `peek`, the frame's own bytes too, so that it reads
 * the frame again). Without `peek` the peer must wait for an answer after it: a
 * second whole frame already there is refused. The stream is left paused, so that no byte
 * is lost: an async iterator takes over as is, a 'data' listener must call resume().
 */
export function readFirstFrame(input: Readable, peek = false): Promise<Frame> {
  return new Promise((resolve, reject) => {
    const decoder = new FrameDecoder();
    const received: Buffer[] = [];
    const finish = (error: Error | null, frame?: Frame) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
      if (error) reject(error);
      else resolve(frame!);
    };
    const onData = (chunk: Buffer) => {
      if (peek) received.push(chunk);
      let frames: Frame[];
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        return finish(error as Error);
      }
      if (frames.length === 0) return;
      // A peek gives every byte back: the role that reads on judges what follows (a source may send entries right after hello).
      if (frames.length > 1 && !peek) return finish(new ProtocolError('peer sent more than its first message before an answer'));
      const rest = peek ? Buffer.concat(received) : decoder.takeRest();
      finish(null, frames[0]);
      // Once this listener is off and the stream paused: on a flowing stream, unshift hands the bytes straight back to it.
      if (rest.length > 0) input.unshift(rest);
    };
    const onEnd = () => finish(new ProtocolError('peer closed the connection before its first message'));
    const onError = (error: Error) => finish(error);
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    input.resume(); // a stream paused by an earlier peek flows again
  });
}

/** Turns a byte stream back into frames; feed it chunks as they arrive. */
export class FrameDecoder {
  private buffered: Buffer[] = [];
  private length = 0;

  push(chunk: Buffer): Frame[] {
    this.buffered.push(chunk);
    this.length += chunk.length;
    const frames: Frame[] = [];
    while (this.length >= 4) {
      const head = this.peek(4);
      const size = head.readUInt32BE(0);
      if (size < 1 || size > MAX_FRAME + 1) throw new ProtocolError(`peer sent a frame of ${size} bytes`);
      if (this.length < 4 + size) break;
      const body = this.take(4 + size).subarray(4);
      const type = body[0];
      const payload = body.subarray(1);
      if (type === FRAME_DATA) frames.push({ type: FRAME_DATA, data: payload });
      else if (type === FRAME_JSON || type === FRAME_DEFLATED_JSON) {
        frames.push({ type: FRAME_JSON, message: parseMessage(type === FRAME_JSON ? payload : inflate(payload)) });
      } else throw new ProtocolError(`peer sent an unknown frame type ${type}`);
    }
    return frames;
  }

  /** The bytes received beyond the frames returned so far, handed back (to a reader that takes over the stream). */
  takeRest(): Buffer {
    const rest = Buffer.concat(this.buffered);
    this.buffered = [];
    this.length = 0;
    return rest;
  }

  /** Bytes received but not yet a whole frame (a peer that stops mid-frame died or lied). */
  get pending(): number {
    return this.length;
  }

  private peek(n: number): Buffer {
    const first = this.buffered[0]!;
    if (first.length >= n) return first.subarray(0, n);
    this.buffered = [Buffer.concat(this.buffered)];
    return this.buffered[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    let out: Buffer;
    const first = this.buffered[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.buffered.shift();
      else this.buffered[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.buffered);
      out = all.subarray(0, n);
      this.buffered = all.length > n ? [all.subarray(n)] : [];
    }
    this.length -= n;
    return out;
  }
}

function parseMessage(json: Buffer): unknown {
  try {
    return JSON.parse(json.toString('utf8'));
  } catch {
    throw new ProtocolError('peer sent a malformed message');
  }
}

/** A deflated message may not inflate past the frame limit: no zip bombs. */
function inflate(payload: Buffer): Buffer {
  try {
    return inflateRawSync(payload, { maxOutputLength: MAX_FRAME });
  } catch {
    throw new ProtocolError('peer sent a message that does not inflate within the frame limit');
  }
}

function header(type: number, payloadLength: number): Buffer {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32BE(payloadLength + 1, 0);
  head[4] = type;
  return head;
}

/** Small frames queued within one turn of the event loop leave together, up to this many bytes per write. */
const COALESCE_BYTES = 256 * 1024;

/**
 * Writes frames to a stream. Small frames are gathered and written together once the current turn of the
 * event loop ends (over SSH each write becomes at least one encrypted packet, so a 5-byte header alone costs
 * as much as a small file). Waits for 'drain', so a slow peer slows us down instead of filling memory.
 */
export class FrameWriter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Called once the queued pieces are written: their buffers may then be reused. */
  private pendingCallbacks: (() => void)[] = [];
  private flushScheduled = false;
  private waiting: Promise<void> | null = null;
  private failure: Error | null = null;
  bytesWritten = 0;
  /** The stream writes several buffers in one call (a socket or pipe); an SSH channel would make a packet of each. */
  private readonly gathers: boolean;

  /** `deflate`: compress large control messages; worth it over a network, wasted CPU over a local pipe. */
  constructor(
    private readonly out: Writable,
    private readonly deflate = true,
  ) {
    this.gathers = typeof (out as { _writev?: unknown })._writev === 'function';
    out.on('error', (error: Error) => {
      this.failure = error;
    });
  }

  /** The stream failed (the peer went away): nothing more can be sent. */
  get broken(): boolean {
    return this.failure !== null || this.out.destroyed;
  }

  async send(message: object): Promise<void> {
    this.post(message);
    await this.backpressure();
  }

  async sendData(data: Buffer): Promise<void> {
    const head = header(FRAME_DATA, data.length);
    if (data.length < COALESCE_BYTES / 4) this.queue(head, data);
    else {
      // Big enough to leave on its own: no copy into the queue.
      this.flush();
      this.out.cork();
      this.out.write(head);
      const more = this.out.write(data);
      this.out.uncork();
      this.bytesWritten += head.length + data.length;
      if (!more) this.waitForDrain();
    }
    await this.backpressure();
  }

  /** Queue a message without waiting for the peer; for small replies from a loop that must not stall. */
  post(message: object): void {
    const json = Buffer.from(JSON.stringify(message), 'utf8');
    if (json.length > MAX_FRAME) throw new ProtocolError('message too large for one frame');
    if (!this.deflate || json.length < DEFLATE_FROM) this.queue(header(FRAME_JSON, json.length), json);
    else {
      const deflated = deflateRawSync(json);
      this.queue(header(FRAME_DEFLATED_JSON, deflated.length), deflated);
    }
  }

  /** Write what is queued now rather than at the end of this turn (before a final message, say). */
  flush(): void {
    if (this.pendingBytes === 0) return;
    const pieces = this.pending;
    const bytes = this.pendingBytes;
    const callbacks = this.pendingCallbacks;
    this.pending = [];
    this.pendingBytes = 0;
    this.pendingCallbacks = [];
    const written = callbacks.length === 0 ? undefined : () => callbacks.forEach((callback) => callback());
    let more = true;
    if (pieces.length > 1 && this.gathers) {
      // One writev of the pieces: no copy of every byte sent into a new buffer, which a backup's data
      // would otherwise pay for, in copying and in garbage collections of that much external memory.
      this.out.cork();
      pieces.forEach((piece, i) => (more = this.out.write(piece, i === pieces.length - 1 ? written : undefined)));
      this.out.uncork();
    } else more = this.out.write(pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, bytes), written);
    if (!more) this.waitForDrain();
  }

  /** Call `done` once everything sent so far has been written to the stream's descriptor (or the stream failed). */
  afterWritten(done: () => void): void {
    if (this.pendingBytes > 0) this.pendingCallbacks.push(done);
    else this.out.write(Buffer.alloc(0), () => done());
  }

  /** Write what is queued, then end the stream. */
  end(): void {
    this.flush();
    this.out.end();
  }

  private queue(head: Buffer, payload: Buffer): void {
    this.pending.push(head, payload);
    this.pendingBytes += head.length + payload.length;
    this.bytesWritten += head.length + payload.length;
    if (this.pendingBytes >= COALESCE_BYTES) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  private waitForDrain(): void {
    this.waiting ??= new Promise<void>((resolve) => {
      const done = () => {
        this.out.off('drain', done);
        this.out.off('close', done);
        this.waiting = null;
        resolve();
      };
      this.out.on('drain', done);
      this.out.on('close', done);
    });
  }

  private async backpressure(): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.waiting) await this.waiting;
    if (this.failure) throw this.failure;
  }
}
