// xxh64 of a file's content, for grouping dedupe candidates: fast, and never
// trusted alone (candidates are compared byte by byte before any link). The
// read is checked against the stat the caller saw, before and after: a file
// that changed is reported as such, not hashed.
import { closeSync, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs';
import xxhash from 'xxhash-wasm';
import { READ_CHUNK } from './hash.js';

type XxHash = Awaited<ReturnType<typeof xxhash>>;
let api: Promise<XxHash> | undefined;

/** Instantiates the WebAssembly module once; call (and await) before fastHashFile. */
export function loadFastHash(): Promise<XxHash> {
  return (api ??= xxhash());
}

/** Same inode, size, mtime and ctime: nothing happened to the file in between. */
export function unchanged(a: BigIntStats, b: BigIntStats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

const buffer = Buffer.allocUnsafe(READ_CHUNK);

/** The file's xxh64 as 16 hex digits, or null if it is not (or no longer) the file `expected` describes. */
export function fastHashFile(hasher: XxHash, path: Buffer, expected: BigIntStats, onBytes: (n: number) => void): string | null {
  const fd = openSync(path, 'r');
  try {
    if (!unchanged(fstatSync(fd, { bigint: true }), expected)) return null;
    const state = hasher.create64();
    for (;;) {
      const n = readSync(fd, buffer, 0, READ_CHUNK, null);
      if (n === 0) break;
      state.update(buffer.subarray(0, n));
      onBytes(n);
    }
    if (!unchanged(fstatSync(fd, { bigint: true }), expected)) return null;
    return state.digest().toString(16).padStart(16, '0');
  } finally {
    closeSync(fd);
  }
}
