// xxh64 of file contents, for grouping dedupe candidates: fast, and never
// trusted alone (candidates are compared byte by byte before any link).
import type { BigIntStats } from 'node:fs';
import xxhash from 'xxhash-wasm';

export type XxHash = Awaited<ReturnType<typeof xxhash>>;
let api: Promise<XxHash> | undefined;

/** Instantiates the WebAssembly module once; await it before hashing. */
export function loadFastHash(): Promise<XxHash> {
  return (api ??= xxhash());
}

/** Same inode, size, mtime and ctime: nothing happened to the file in between. */
export function unchanged(a: BigIntStats, b: BigIntStats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

export function hex64(value: bigint): string {
  return value.toString(16).padStart(16, '0');
}
