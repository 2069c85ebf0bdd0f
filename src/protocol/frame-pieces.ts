// Frames as FrameDecoder gives them, except that a DATA frame's payload comes in
// the pieces it arrives in, each as a DATA frame of its own: FrameDecoder joins a
// frame that spans two chunks into a new buffer, and a restore's 1 MiB data frames
// nearly always do. For a consumer that takes file data as a stream of bytes (the
// restore writer's side, which bounds a file's data by its total). Every frame's
// length is held to the same limit; other frames go through FrameDecoder whole.
import { FRAME_DATA, FrameDecoder, MAX_FRAME, ProtocolError, type Frame } from './frames.js';

/** A frame's head: its length (type and payload), then its type. */
const HEAD = 5;

export class FramePieces {
  private readonly decoder = new FrameDecoder();
  /** The next frame's head, while it is incomplete. */
  private head: Buffer = Buffer.alloc(0);
  /** Bytes of the DATA frame in progress still to come. */
  private dataLeft = 0;
  /** The other frame in progress (head included), and the bytes it still needs. */
  private other: Buffer[] = [];
  private otherLeft = 0;

  push(chunk: Buffer): Frame[] {
    const frames: Frame[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.dataLeft > 0) {
        const n = Math.min(this.dataLeft, chunk.length - at);
        frames.push({ type: FRAME_DATA, data: chunk.subarray(at, at + n) });
        this.dataLeft -= n;
        at += n;
        continue;
      }
      if (this.otherLeft > 0) {
        const n = Math.min(this.otherLeft, chunk.length - at);
        this.other.push(chunk.subarray(at, at + n));
        this.otherLeft -= n;
        at += n;
        if (this.otherLeft === 0) frames.push(...this.decoder.push(Buffer.concat(this.other.splice(0))));
        continue;
      }
      const n = Math.min(HEAD - this.head.length, chunk.length - at);
      const head = this.head.length === 0 && n === HEAD ? chunk.subarray(at, at + HEAD) : Buffer.concat([this.head, chunk.subarray(at, at + n)]);
      at += n;
      if (head.length < HEAD) {
        this.head = head;
        break;
      }
      this.head = Buffer.alloc(0);
      const size = head.readUInt32BE(0);
      if (size < 1 || size > MAX_FRAME + 1) throw new ProtocolError(`peer sent a frame of ${size} bytes`);
      if (head[4] === FRAME_DATA) {
        this.dataLeft = size - 1;
        if (size === 1) frames.push({ type: FRAME_DATA, data: Buffer.alloc(0) });
      } else {
        this.other.push(head);
        this.otherLeft = size - 1;
        if (size === 1) frames.push(...this.decoder.push(Buffer.concat(this.other.splice(0))));
      }
    }
    return frames;
  }
}
