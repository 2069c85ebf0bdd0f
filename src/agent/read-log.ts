// What the source side of a backup read in this run, for `lb backup --verify`:
// which entries it read (hashed, or sent from disk) and which it reported as
// left out. One bit per entry, so memory stays small however many files a
// first backup reads. The snapshot's manifest lists every entry the source sent
// except the files it could not read, in the same order, so the bits map onto
// the manifest's records by counting (recordReads).
import { isInside } from '../diff/order.js';

export class ReadLog {
  private bits = new Uint8Array(4096);
  private readonly unreadableIndexes: number[] = [];
  /** Paths (relative to the source) this run reported missing from its snapshot: unreadable files and listings. */
  readonly excused: Buffer[] = [];

  /** The source read entry `index` whole, and its hash is the one the snapshot records. */
  read(index: number): void {
    const byte = index >> 3;
    if (byte >= this.bits.length) {
      const grown = new Uint8Array(Math.max(this.bits.length * 2, byte + 1));
      grown.set(this.bits);
      this.bits = grown;
    }
    this.bits[byte]! |= 1 << (index & 7);
  }

  /** Entry `index` could not be read: it is not in the snapshot, and the run said so. */
  unreadable(index: number, path: Buffer): void {
    this.unreadableIndexes.push(index);
    this.excused.push(path);
  }

  /** The walk left this path (or what a directory holds) out as unreadable, and the run said so. */
  skipped(path: Buffer): void {
    this.excused.push(path);
  }

  /** The run already reported this path, or a directory holding it, missing from its snapshot. */
  isExcused(path: Buffer): boolean {
    return this.excused.some((left) => left.equals(path) || isInside(path, left));
  }

  private wasRead(index: number): boolean {
    const byte = index >> 3;
    return byte < this.bits.length && (this.bits[byte]! & (1 << (index & 7))) !== 0;
  }

  /**
   * A function to call once per manifest record, in the manifest's order: whether
   * that record's file was read in this run. Entries the source could not read
   * have no record and are passed over.
   */
  recordReads(): () => boolean {
    // Each once: the repository side settles an entry the source could not read and asks nothing more of it.
    const gaps = [...this.unreadableIndexes].sort((a, b) => a - b);
    let index = 0;
    let gap = 0;
    return () => {
      while (gap < gaps.length && gaps[gap] === index) {
        gap++;
        index++;
      }
      return this.wasRead(index++);
    };
  }
}
