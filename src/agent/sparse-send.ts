// The source side's half of protocol 6's zero runs: a file's content goes out in
// DATA frames, except runs of whole aligned zero blocks, which go as a `zeros`
// message carrying their length. The repository side hashes the zeros and leaves
// a hole, so a sparse disk image crosses the wire at the size of its data.
import { HOLE_BLOCK, ZEROS, zeroBlockRuns } from '../repo/sparse-write.js';

export interface ContentOutput {
  data(bytes: Buffer): Promise<void>;
  zeros(length: number): Promise<void>;
}

/** One file's content, chunk by chunk in order from byte `from`; end() before its data-end. */
export class SparseSender {
  private position: number;
  /** A run of zeros not sent yet: the next chunk may carry it on. */
  private zeroStart = 0;
  private zeroLength = 0;

  constructor(
    private readonly out: ContentOutput,
    from: number,
    /** The size the repository side was told: it refuses zero runs beyond it. */
    private readonly announced: number,
  ) {
    this.position = from;
  }

  /** `chunk` stays referenced until it is written: its own buffer, not a reused one. */
  async chunk(chunk: Buffer): Promise<void> {
    for (const run of zeroBlockRuns(chunk, this.position)) {
      if (run.zero) {
        if (this.zeroLength === 0) this.zeroStart = this.position + run.start;
        this.zeroLength += run.end - run.start;
      } else {
        await this.flushZeros();
        await this.out.data(chunk.subarray(run.start, run.end));
      }
    }
    this.position += chunk.length;
  }

  async end(): Promise<void> {
    await this.flushZeros();
  }

  /**
   * A run shorter than a block (the zero end of a file's last block) is not worth a
   * message; zeros past the announced size (the file grew since) must go as data.
   */
  private async flushZeros(): Promise<void> {
    const length = this.zeroLength;
    if (length === 0) return;
    this.zeroLength = 0;
    const counted = length < HOLE_BLOCK ? 0 : Math.max(0, Math.min(length, this.announced - this.zeroStart));
    if (counted > 0) await this.out.zeros(counted);
    for (let left = length - counted; left > 0; left -= ZEROS.length) await this.out.data(ZEROS.subarray(0, Math.min(left, ZEROS.length)));
  }
}
