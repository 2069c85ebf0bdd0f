// Length-prefixed frames: u32 big-endian length of (type + payload), u8 type, payload.
// JSON frames carry control messages; DATA frames carry raw file bytes.
import type { Writable } from 'node:stream';

export const FRAME_JSON = 1;
export const FRAME_DATA = 2;

/** Largest frame either side accepts; a peer announcing more is broken or hostile. */
export const MAX_FRAME = 8 * 1024 * 1024;
/** File bytes are cut into chunks this size; big enough to amortise framing, small enough to interleave. */
export const DATA_CHUNK = 1024 * 1024;

export type Frame = { type: typeof FRAME_JSON; message: unknown } | { type: typeof FRAME_DATA; data: Buffer };

export class ProtocolError extends Error {}

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
      else if (type === FRAME_JSON) {
        let message: unknown;
        try {
          message = JSON.parse(payload.toString('utf8'));
        } catch {
          throw new ProtocolError('peer sent a malformed message');
        }
        frames.push({ type: FRAME_JSON, message });
      } else throw new ProtocolError(`peer sent an unknown frame type ${type}`);
    }
    return frames;
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

function header(type: number, payloadLength: number): Buffer {
  const head = Buffer.allocUnsafe(5);
  head.writeUInt32BE(payloadLength + 1, 0);
  head[4] = type;
  return head;
}

/** Writes frames to a stream, waiting for 'drain' so a slow peer slows us down instead of filling memory. */
export class FrameWriter {
  private waiting: Promise<void> | null = null;
  private failure: Error | null = null;
  bytesWritten = 0;

  constructor(private readonly out: Writable) {
    out.on('error', (error: Error) => {
      this.failure = error;
    });
  }

  async send(message: object): Promise<void> {
    const payload = Buffer.from(JSON.stringify(message), 'utf8');
    if (payload.length > MAX_FRAME) throw new ProtocolError('message too large for one frame');
    await this.write(header(FRAME_JSON, payload.length), payload);
  }

  async sendData(data: Buffer): Promise<void> {
    await this.write(header(FRAME_DATA, data.length), data);
  }

  /** Queue a message without waiting for the peer; for small replies from a loop that must not stall. */
  post(message: object): void {
    const payload = Buffer.from(JSON.stringify(message), 'utf8');
    this.out.cork();
    this.out.write(header(FRAME_JSON, payload.length));
    this.out.write(payload);
    this.out.uncork();
    this.bytesWritten += payload.length + 5;
  }

  private async write(head: Buffer, payload: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    while (this.waiting) await this.waiting;
    // Corked, header and payload leave in one writev.
    this.out.cork();
    this.out.write(head);
    const more = this.out.write(payload);
    this.out.uncork();
    this.bytesWritten += head.length + payload.length;
    if (!more) {
      this.waiting = new Promise<void>((resolve) => {
        const done = () => {
          this.out.off('drain', done);
          this.out.off('close', done);
          this.waiting = null;
          resolve();
        };
        this.out.on('drain', done);
        this.out.on('close', done);
      });
      await this.waiting;
    }
    if (this.failure) throw this.failure;
  }
}
