// Reading source files: SHA-256 while reading, with a check that the file did
// not change underneath (a torn read is retried, never reported as content).
// Synchronous calls: per small file they cost a fraction of the thread-pool
// round trips of fs/promises, and the source side has nothing else to block.
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs';

export const READ_CHUNK = 1024 * 1024;

/**
 * The hash cache, asked one directory at a time: entries are keyed by device,
 * directory inode and file inode (a moved or renamed directory keeps its inode,
 * so its files are still found) and valid while size, mtime and ctime match.
 */
export interface HashCache {
  /** One directory's cached hashes, read at once; its files are then looked up one at a time. */
  directory(directory: BigIntStats): DirectoryHashes;
  remember(directoryInode: bigint, stat: BigIntStats, hash: string): void;
}

export interface DirectoryHashes {
  /** The hash of a regular file of the directory, undefined where not cached or stale. */
  lookup(file: BigIntStats): string | undefined;
  /** Every file of the directory was looked up: entries of files gone from it are dropped. */
  finish(): void;
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
 * The file open has another mode or owner than the one listed (say, a save that
 * replaced it), so its content does not belong to the listed entry; reading it
 * again cannot help.
 */
export class ListingChangedError extends FileChangedError {}

/**
 * A file changed within the timestamp granularity of when it was read could be
 * changed again without its stat changing ("racily clean", as git calls it):
 * such a hash is not cached. ctime always comes from the clock, so a non-zero
 * nanosecond part shows a filesystem with fine timestamps (ext4, xfs, btrfs:
 * a clock tick of a few ms); otherwise assume whole seconds, or FAT's two.
 */
const FINE_WINDOW_NS = 100_000_000n;
const COARSE_WINDOW_NS = 2_000_000_000n;

export function timestampWindow(stat: BigIntStats): bigint {
  return stat.ctimeNs % 1_000_000_000n !== 0n ? FINE_WINDOW_NS : COARSE_WINDOW_NS;
}

export function cacheable(stat: BigIntStats, readStartedNs: bigint): boolean {
  const window = timestampWindow(stat);
  return stat.mtimeNs < readStartedNs - window && stat.ctimeNs < readStartedNs - window;
}

function sameFile(a: BigIntStats, b: BigIntStats): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;
}

/** Reused for reads whose bytes are only hashed; safe because those reads never yield mid-file. */
const scratch = Buffer.allocUnsafe(READ_CHUNK);

export interface ReadOptions {
  /** Receives each chunk (its own buffer, safe to keep); may apply backpressure. */
  onChunk?: (chunk: Buffer) => Promise<void> | void;
  onBytes?: (n: number) => void;
  /** Return the whole content when the file is at most this large (and onChunk is absent). */
  keepUpTo?: number;
  /** Where kept content's first read goes (a reused region), instead of a new buffer. */
  allocate?: (size: number) => Buffer;
  /**
   * The first `length` bytes are hashed but not passed to onChunk; on reaching
   * them, `reached` gets their SHA-256 and may throw to give up (resuming a
   * transfer whose prefix the other side holds).
   */
  prefix?: { length: number; reached(digest: string): Promise<void> };
  /** Permission bits and owner as listed: the file read must still have them. */
  listed?: { mode: number; uid: number; gid: number };
}

/**
 * Read a file once from start to end, hashing it. Throws FileChangedError if
 * the file changed while being read.
 */
export async function readThrough(path: Buffer, options: ReadOptions = {}): Promise<ReadFacts & { content?: Buffer }> {
  const fd = openSync(path, 'r');
  try {
    const before = fstatSync(fd, { bigint: true });
    if (!before.isFile()) throw new FileChangedError('is no longer a regular file');
    const listed = options.listed;
    if (listed && (Number(before.mode & 0o7777n) !== listed.mode || Number(before.uid) !== listed.uid || Number(before.gid) !== listed.gid)) {
      throw new ListingChangedError('its mode or owner changed after it was listed');
    }
    const expected = Number(before.size);
    const keep = !options.onChunk && options.keepUpTo !== undefined && expected <= options.keepUpTo;
    const hasher = createHash('sha256');
    let size = 0;
    let content: Buffer | undefined;
    let skip = options.prefix?.length ?? 0;
    for (;;) {
      // One byte beyond the expected size, so a small file is read (and EOF seen) in a single call.
      const want = Math.min(READ_CHUNK, Math.max(expected - size + 1, 1));
      const buffer = keep && size === 0 && options.allocate ? options.allocate(want) : keep || options.onChunk ? Buffer.allocUnsafe(want) : scratch;
      const n = readSync(fd, buffer, 0, want, null);
      if (n === 0) break;
      // Past the size it had when opened: it grew, so this read is lost anyway. Give up at once
      // rather than read on (one byte a time, as `want` is sized) for as long as it keeps growing.
      if (size + n > expected) throw new FileChangedError('grew while being read');
      let chunk = buffer.subarray(0, n);
      if (skip > 0) {
        const held = chunk.subarray(0, Math.min(skip, n));
        hasher.update(held);
        skip -= held.length;
        if (skip === 0) await options.prefix!.reached(hasher.copy().digest('hex'));
        chunk = chunk.subarray(held.length);
      }
      hasher.update(chunk);
      size += n;
      options.onBytes?.(n);
      if (keep) content = content ? Buffer.concat([content, chunk]) : chunk;
      if (options.onChunk && chunk.length > 0) await options.onChunk(chunk);
      // A regular file returns less than asked only at its end.
      if (n < want) break;
    }
    if (skip > 0) throw new FileChangedError('is shorter than the part of it already stored');
    const after = fstatSync(fd, { bigint: true });
    if (!sameFile(before, after) || BigInt(size) !== after.size) throw new FileChangedError('changed while being read');
    return { hash: hasher.digest('hex'), size, mtimeNs: after.mtimeNs, stat: after, content };
  } finally {
    closeSync(fd);
  }
}
