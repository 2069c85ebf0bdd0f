// Reading source files: SHA-256 while reading, with a check that the file did
// not change underneath (a torn read is retried, never reported as content).
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';

export const READ_CHUNK = 1024 * 1024;

/** What the hash cache needs of a file's stat; keyed so a moved file is still found. */
export interface HashCache {
  lookup(stat: BigIntStats): string | undefined;
  remember(stat: BigIntStats, hash: string): void;
}

export interface ReadFacts {
  hash: string;
  size: number;
  mtimeNs: bigint;
  /** The stat the facts belong to, taken on the open file before and checked after reading. */
  stat: BigIntStats;
}

export class FileChangedError extends Error {}

/**
 * A file changed within the timestamp granularity of when it was read could be
 * changed again without its stat changing ("racily clean", as git calls it):
 * such a hash is not cached. ctime always comes from the clock, so a non-zero
 * nanosecond part shows a filesystem with fine timestamps (ext4, xfs, btrfs:
 * a clock tick of a few ms); otherwise assume whole seconds, or FAT's two.
 */
const FINE_WINDOW_NS = 100_000_000n;
const COARSE_WINDOW_NS = 2_000_000_000n;

export function cacheable(stat: BigIntStats, readStartedNs: bigint): boolean {
  const window = stat.ctimeNs % 1_000_000_000n !== 0n ? FINE_WINDOW_NS : COARSE_WINDOW_NS;
  return stat.mtimeNs < readStartedNs - window && stat.ctimeNs < readStartedNs - window;
}

function sameFile(a: BigIntStats, b: BigIntStats): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;
}

/**
 * Read a file once from start to end, hashing it and handing each chunk to
 * `onChunk` (which may apply backpressure by returning a promise).
 * Throws FileChangedError if the file changed while being read.
 */
export async function readThrough(
  path: Buffer,
  onChunk?: (chunk: Buffer) => Promise<void> | void,
  onBytes?: (n: number) => void,
): Promise<ReadFacts> {
  const handle = await open(path, 'r');
  try {
    const before = await handle.stat({ bigint: true });
    if (!before.isFile()) throw new FileChangedError('is no longer a regular file');
    const hasher = createHash('sha256');
    let size = 0;
    for (;;) {
      // A fresh buffer per chunk: the consumer may still hold the previous one.
      const buffer = Buffer.allocUnsafe(READ_CHUNK);
      const { bytesRead } = await handle.read(buffer, 0, READ_CHUNK, null);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      hasher.update(chunk);
      size += bytesRead;
      onBytes?.(bytesRead);
      if (onChunk) await onChunk(chunk);
    }
    const after = await handle.stat({ bigint: true });
    if (!sameFile(before, after) || BigInt(size) !== after.size) throw new FileChangedError('changed while being read');
    return { hash: hasher.digest('hex'), size, mtimeNs: after.mtimeNs, stat: after };
  } finally {
    await handle.close();
  }
}
