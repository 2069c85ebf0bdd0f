// Byte-for-byte comparison of two files before they are linked: a hash only
// proposes candidates, this decides. Both files are checked against the stat
// they were grouped by, before and after reading. While reading, it computes
// the xxh64 of whichever file has none yet, finishing the read of that file
// past a difference, so each file is read whole at most once per comparison
// and its hash can be cached for the next run.
import { closeSync, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs';
import { READ_CHUNK } from '../scan/hash.js';
import { hex64, unchanged, type XxHash } from '../scan/fast-hash.js';

export type Verdict = 'same' | 'different' | 'first changed' | 'second changed';

export interface Compared {
  path: Buffer;
  stat: BigIntStats;
  /** Known xxh64 of the whole content; computed here when absent. */
  hash?: string;
}

const left = Buffer.allocUnsafe(READ_CHUNK);
const right = Buffer.allocUnsafe(READ_CHUNK);

type Hashing = ReturnType<XxHash['create64']> | null;

export function compareFiles(hasher: XxHash, a: Compared, b: Compared, onBytes: (n: number) => void): { verdict: Verdict; hashes: [string?, string?] } {
  const fa = openSync(a.path, 'r');
  try {
    const fb = openSync(b.path, 'r');
    try {
      const changed = (): Verdict | null => {
        if (!unchanged(fstatSync(fa, { bigint: true }), a.stat)) return 'first changed';
        if (!unchanged(fstatSync(fb, { bigint: true }), b.stat)) return 'second changed';
        return null;
      };
      const early = changed();
      if (early) return { verdict: early, hashes: [] };
      const ha: Hashing = a.hash === undefined ? hasher.create64() : null;
      const hb: Hashing = b.hash === undefined ? hasher.create64() : null;
      let same = true;
      for (;;) {
        const n = same || ha ? readSync(fa, left, 0, READ_CHUNK, null) : 0;
        const m = same || hb ? readSync(fb, right, 0, READ_CHUNK, null) : 0;
        onBytes(n + m);
        if (n === 0 && m === 0) break;
        ha?.update(left.subarray(0, n));
        hb?.update(right.subarray(0, m));
        if (same && (n !== m || !left.subarray(0, n).equals(right.subarray(0, m)))) {
          same = false;
          if (!ha && !hb) break; // both hashes known: nothing more to learn from either file
        }
      }
      const late = changed();
      if (late) return { verdict: late, hashes: [] };
      const hashes: [string?, string?] = [ha ? hex64(ha.digest()) : a.hash, hb ? hex64(hb.digest()) : b.hash];
      return { verdict: same ? 'same' : 'different', hashes };
    } finally {
      closeSync(fb);
    }
  } finally {
    closeSync(fa);
  }
}
