// Byte-for-byte comparison of two files before they are linked: a hash only
// proposes candidates, this decides. Both files are checked against the stat
// they were grouped by, before and after reading.
import { closeSync, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs';
import { READ_CHUNK } from '../scan/hash.js';
import { unchanged } from '../scan/fast-hash.js';

export type Comparison = 'same' | 'different' | 'first changed' | 'second changed';

const left = Buffer.allocUnsafe(READ_CHUNK);
const right = Buffer.allocUnsafe(READ_CHUNK);

export function compareFiles(
  a: { path: Buffer; stat: BigIntStats },
  b: { path: Buffer; stat: BigIntStats },
  onBytes: (n: number) => void,
): Comparison {
  const fa = openSync(a.path, 'r');
  try {
    const fb = openSync(b.path, 'r');
    try {
      const check = (): Comparison | null => {
        if (!unchanged(fstatSync(fa, { bigint: true }), a.stat)) return 'first changed';
        if (!unchanged(fstatSync(fb, { bigint: true }), b.stat)) return 'second changed';
        return null;
      };
      const before = check();
      if (before) return before;
      for (;;) {
        const n = readSync(fa, left, 0, READ_CHUNK, null);
        const m = readSync(fb, right, 0, READ_CHUNK, null);
        onBytes(n + m);
        if (n !== m || !left.subarray(0, n).equals(right.subarray(0, m))) return check() ?? 'different';
        if (n === 0) break;
      }
      return check() ?? 'same';
    } finally {
      closeSync(fb);
    }
  } finally {
    closeSync(fa);
  }
}
