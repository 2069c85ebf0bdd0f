// One directory's rows of a hash cache, held while the walk goes through that
// directory. Packed in typed arrays and one byte buffer: a directory of 200,000
// files costs about 60 bytes a row here, where row objects with BigInt fields
// would cost several hundred.

import type { StatKey } from './catalog.js';

export class DirectoryRows {
  private count = 0;
  private inos: BigInt64Array;
  private sizes: BigInt64Array;
  private mtimes: BigInt64Array;
  private ctimes: BigInt64Array;
  /** Row i's hash is hashBytes[hashEnds[i - 1] .. hashEnds[i]] (hashes of any length: SHA-256 and xxh64 alike). */
  private hashEnds: Uint32Array;
  private hashBytes: Buffer;
  /** Rows whose inode the walk met in the directory; the others belong to files gone from it. */
  private seen: Uint8Array | null = null;

  /** Room for `expected` rows of SHA-256 hashes; more may come (another run may add rows meanwhile). */
  constructor(expected: number) {
    const n = Math.max(expected, 1);
    this.inos = new BigInt64Array(n);
    this.sizes = new BigInt64Array(n);
    this.mtimes = new BigInt64Array(n);
    this.ctimes = new BigInt64Array(n);
    this.hashEnds = new Uint32Array(n);
    this.hashBytes = Buffer.allocUnsafeSlow(n * 32);
  }

  /** Rows must come in ascending inode order (the table's key order). */
  add(ino: bigint, size: bigint, mtimeNs: bigint, ctimeNs: bigint, hash: Buffer): void {
    if (this.count === this.inos.length) this.grow();
    const i = this.count++;
    this.inos[i] = ino;
    this.sizes[i] = size;
    this.mtimes[i] = mtimeNs;
    this.ctimes[i] = ctimeNs;
    const start = i === 0 ? 0 : this.hashEnds[i - 1]!;
    if (start + hash.length > this.hashBytes.length) {
      const bytes = Buffer.allocUnsafeSlow(Math.max(this.hashBytes.length * 2, start + hash.length));
      this.hashBytes.copy(bytes, 0, 0, start);
      this.hashBytes = bytes;
    }
    hash.copy(this.hashBytes, start);
    this.hashEnds[i] = start + hash.length;
  }

  private grow(): void {
    const n = this.inos.length * 2;
    this.inos = wider(this.inos, new BigInt64Array(n));
    this.sizes = wider(this.sizes, new BigInt64Array(n));
    this.mtimes = wider(this.mtimes, new BigInt64Array(n));
    this.ctimes = wider(this.ctimes, new BigInt64Array(n));
    const ends = new Uint32Array(n);
    ends.set(this.hashEnds);
    this.hashEnds = ends;
  }

  /** The hash (hex) of `file` when its row's stat still matches; its row counts as met either way. */
  lookup(file: StatKey): string | undefined {
    const i = this.find(file.ino);
    if (i < 0) return undefined;
    (this.seen ??= new Uint8Array(this.count))[i] = 1;
    if (this.sizes[i] !== file.size || this.mtimes[i] !== file.mtimeNs || this.ctimes[i] !== file.ctimeNs) return undefined;
    return this.hashBytes.toString('hex', i === 0 ? 0 : this.hashEnds[i - 1]!, this.hashEnds[i]!);
  }

  /** Inodes of the rows no lookup met. */
  *unmet(): Generator<bigint> {
    for (let i = 0; i < this.count; i++) if (this.seen?.[i] !== 1) yield this.inos[i]!;
  }

  private find(ino: bigint): number {
    let low = 0;
    let high = this.count - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const at = this.inos[middle]!;
      if (at === ino) return middle;
      if (at < ino) low = middle + 1;
      else high = middle - 1;
    }
    return -1;
  }
}

function wider(from: BigInt64Array, to: BigInt64Array): BigInt64Array {
  to.set(from);
  return to;
}
