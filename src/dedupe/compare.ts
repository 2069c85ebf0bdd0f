// Byte-for-byte comparison of two files before they are linked: a hash only
// proposes candidates, this decides. Both files are checked against the stat
// they were grouped by after reading (any change since moves the ctime).
// While reading, it computes the xxh64 of whichever file has none yet,
// finishing the read of that file past a difference, so each file is read
// whole at most once per comparison and its hash can be cached for the next
// run. Reads are positional: the caller may hand the same open file to
// several comparisons.
import { fstatSync, readSync, type BigIntStats } from 'node:fs';
import { READ_CHUNK } from '../scan/hash.js';
import { hex64, unchanged, type XxHash } from '../scan/fast-hash.js';

export type Verdict = 'same' | 'different' | 'first changed' | 'second changed';

export interface Compared {
  fd: number;
  stat: BigIntStats;
  /** Known xxh64 of the whole content; computed here when absent. */
  hash?: string;
}

const left = Buffer.allocUnsafe(READ_CHUNK);
const right = Buffer.allocUnsafe(READ_CHUNK);

type Hashing = ReturnType<XxHash['create64']> | null;

export function compareFiles(hasher: XxHash, a: Compared, b: Compared, onBytes: (n: number) => void): { verdict: Verdict; hashes: [string?, string?] } {
  const ha: Hashing = a.hash === undefined ? hasher.create64() : null;
  const hb: Hashing = b.hash === undefined ? hasher.create64() : null;
  let same = true;
  for (let offsetA = 0, offsetB = 0; ; ) {
    const n = same || ha ? readSync(a.fd, left, 0, READ_CHUNK, offsetA) : 0;
    const m = same || hb ? readSync(b.fd, right, 0, READ_CHUNK, offsetB) : 0;
    onBytes(n + m);
    if (n === 0 && m === 0) break;
    ha?.update(left.subarray(0, n));
    hb?.update(right.subarray(0, m));
    if (same && (n !== m || !left.subarray(0, n).equals(right.subarray(0, m)))) {
      same = false;
      if (!ha && !hb) break; // both hashes known: nothing more to learn from either file
    }
    offsetA += n;
    offsetB += m;
  }
  if (!unchanged(fstatSync(a.fd, { bigint: true }), a.stat)) return { verdict: 'first changed', hashes: [] };
  if (!unchanged(fstatSync(b.fd, { bigint: true }), b.stat)) return { verdict: 'second changed', hashes: [] };
  const hashes: [string?, string?] = [ha ? hex64(ha.digest()) : a.hash, hb ? hex64(hb.digest()) : b.hash];
  return { verdict: same ? 'same' : 'different', hashes };
}
