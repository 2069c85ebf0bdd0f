// Byte-for-byte comparison of two files before they are linked: a hash only
// proposes candidates, this decides. Both files are checked against the stat
// they were grouped by after reading (any change since moves the ctime).
// While reading, it computes the xxh64 of whichever file has none yet,
// finishing the read of that file past a difference, so each file is read
// whole at most once per comparison and its hash can be cached for the next
// run. A file with no prefix signature yet gets it from the first chunk; two
// told apart by it are not read further (as if their signatures had been read
// first). Reads are positional, the two files' at once (reads.ts): the caller
// may hand the same open file to several comparisons.
import { fstatSync, type BigIntStats } from 'node:fs';
import { READ_CHUNK } from '../scan/hash.js';
import { hex64, unchanged, type XxHash } from '../scan/fast-hash.js';
import { Buffers, PREFIX_BYTES, readAt } from './reads.js';

export type Verdict = 'same' | 'different' | 'first changed' | 'second changed';

export interface Compared {
  fd: number;
  stat: BigIntStats;
  /** Known xxh64 of the whole content; computed here when absent. */
  hash?: string;
  /** Known prefix signature; taken here from the first chunk when absent. */
  prefix?: string;
}

export interface Comparison {
  verdict: Verdict;
  hashes: [string?, string?];
  prefixes: [string?, string?];
}

const chunks = new Buffers(READ_CHUNK);

type Hashing = ReturnType<XxHash['create64']> | null;

export async function compareFiles(hasher: XxHash, a: Compared, b: Compared, onBytes: (n: number) => void): Promise<Comparison> {
  const left = chunks.take();
  const right = chunks.take();
  try {
    return await compareWith(left, right, hasher, a, b, onBytes);
  } finally {
    chunks.give(left);
    chunks.give(right);
  }
}

async function compareWith(left: Buffer, right: Buffer, hasher: XxHash, a: Compared, b: Compared, onBytes: (n: number) => void): Promise<Comparison> {
  let ha: Hashing = a.hash === undefined ? hasher.create64() : null;
  let hb: Hashing = b.hash === undefined ? hasher.create64() : null;
  // Both were grouped by size: read that much (one more byte is a change, which the check after reading sees).
  const size = Number(a.stat.size);
  let same = a.stat.size === b.stat.size;
  let ended = false;
  const prefixes: [string?, string?] = [a.prefix, b.prefix];
  for (let offset = 0; offset < size; ) {
    const want = Math.min(READ_CHUNK, size - offset);
    const readA = same || ha !== null;
    const readB = same || hb !== null;
    if (!readA && !readB) break; // both hashes known: nothing more to learn from either file
    const [n, m] = await Promise.all([readA ? readAt(a.fd, left, want, offset) : 0, readB ? readAt(b.fd, right, want, offset) : 0]);
    onBytes(n + m);
    if ((readA && n < want) || (readB && m < want)) {
      ended = true; // shorter than it was: changed, as the check below says
      break;
    }
    if (offset === 0) {
      prefixes[0] ??= hex64(hasher.h64Raw(left.subarray(0, Math.min(n, PREFIX_BYTES))));
      prefixes[1] ??= hex64(hasher.h64Raw(right.subarray(0, Math.min(m, PREFIX_BYTES))));
      if (prefixes[0] !== prefixes[1] && size > want) {
        // Told apart by their prefixes, as a signature would have: not worth reading the rest to hash it.
        same = false;
        ha = hb = null;
        break;
      }
    }
    if (readA) ha?.update(left.subarray(0, n));
    if (readB) hb?.update(right.subarray(0, m));
    if (same && !left.subarray(0, n).equals(right.subarray(0, m))) same = false;
    offset += want;
  }
  if (!unchanged(fstatSync(a.fd, { bigint: true }), a.stat)) return { verdict: 'first changed', hashes: [], prefixes: [] };
  if (!unchanged(fstatSync(b.fd, { bigint: true }), b.stat)) return { verdict: 'second changed', hashes: [], prefixes: [] };
  // A short read of an unchanged file: learn nothing from it.
  if (ended) return { verdict: 'different', hashes: [a.hash, b.hash], prefixes: [a.prefix, b.prefix] };
  const hashes: [string?, string?] = [ha ? hex64(ha.digest()) : a.hash, hb ? hex64(hb.digest()) : b.hash];
  return { verdict: same ? 'same' : 'different', hashes, prefixes };
}
