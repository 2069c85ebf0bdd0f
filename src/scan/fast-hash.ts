// xxh64 of file contents, for grouping dedupe candidates: fast, and never
// trusted alone (candidates are compared byte by byte before any link). Reads
// are checked against the stat the caller saw: a file that changed is
// reported as such, not hashed.
import { fstatSync, readSync, type BigIntStats } from 'node:fs';
import xxhash from 'xxhash-wasm';

export type XxHash = Awaited<ReturnType<typeof xxhash>>;
let api: Promise<XxHash> | undefined;

/** Instantiates the WebAssembly module once; await it before hashing. */
export function loadFastHash(): Promise<XxHash> {
  return (api ??= xxhash());
}

/** How much of a file its prefix signature covers: enough to tell most same-size files apart at one small read. */
export const PREFIX_BYTES = 4096;

/** Same inode, size, mtime and ctime: nothing happened to the file in between. */
export function unchanged(a: BigIntStats, b: BigIntStats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

export function hex64(value: bigint): string {
  return value.toString(16).padStart(16, '0');
}

const prefixBuffer = Buffer.allocUnsafe(PREFIX_BYTES);

/**
 * xxh64 of the first PREFIX_BYTES (all of it if smaller) of the open file, or
 * null if it is not the file `expected` describes. One check after reading
 * covers the time since the scan as well: any change moves the ctime.
 */
export function prefixSignature(hasher: XxHash, fd: number, expected: BigIntStats, onBytes: (n: number) => void): string | null {
  let n = 0;
  for (let got = -1; got !== 0 && n < PREFIX_BYTES; n += got) got = readSync(fd, prefixBuffer, n, PREFIX_BYTES - n, n);
  onBytes(n);
  if (!unchanged(fstatSync(fd, { bigint: true }), expected)) return null;
  return hex64(hasher.h64Raw(prefixBuffer.subarray(0, n)));
}
