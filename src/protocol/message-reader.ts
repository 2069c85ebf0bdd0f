// A peer's messages one at a time, each read from the stream only when asked
// for: while the reader is busy (re-reading a file, say), nothing more is read,
// so the stream's window (a pipe's, an SSH channel's) holds the peer back and
// memory stays flat. Every message passes through the role's decode function.
import { FRAME_JSON, FrameDecoder, ProtocolError, type Frame } from './frames.js';

export class MessageReader<T> {
  private readonly chunks: AsyncIterator<Buffer>;
  private readonly decoder = new FrameDecoder();
  private frames: Frame[] = [];

  constructor(
    input: AsyncIterable<Buffer>,
    private readonly decode: (raw: unknown) => T,
    /** Said when the stream ends before the role does, e.g. 'the lb agent on the remote ended before the comparison did'. */
    private readonly endedEarly: string,
  ) {
    this.chunks = input[Symbol.asyncIterator]();
  }

  async next(): Promise<T> {
    while (this.frames.length === 0) {
      const chunk = await this.chunks.next();
      if (chunk.done) throw new Error(this.endedEarly);
      this.frames = this.decoder.push(chunk.value);
    }
    const frame = this.frames.shift()!;
    if (frame.type !== FRAME_JSON) throw new ProtocolError('the peer sent file data where a message belongs');
    return this.decode(frame.message);
  }
}
