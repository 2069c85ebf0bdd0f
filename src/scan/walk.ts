// Walks the source depth-first, siblings in raw byte order of their names, so
// entries come out in the canonical order the repository side merges against.
// Names are handled as Buffers throughout: a name that is not UTF-8 survives.
import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import type { HashCache } from './hash.js';

export type ScanType = 'file' | 'dir' | 'symlink';

export interface ScanEntry {
  /** Relative to the source root, raw bytes; '' is the root. */
  path: Buffer;
  type: ScanType;
  stat: BigIntStats;
  target?: Buffer;
  /** The content hash, when the hash cache vouches for this inode. */
  cachedHash?: string;
  /** The inode of the directory holding it: the hash cache's key with the file's own. */
  directoryInode: bigint;
}

export interface Skipped {
  path: Buffer;
  reason: string;
}

export interface WalkOptions {
  /** Absolute paths never to descend into (e.g. the repository when it lies inside the source). */
  prune?: (absolute: Buffer) => boolean;
  onSkip?: (skipped: Skipped) => void;
  /** Asked once per directory for all its regular files. */
  cache?: HashCache;
  /** Enter no mount point: what lies on another filesystem is skipped (hard links cannot cross one). */
  oneFileSystem?: boolean;
}

const SLASH = Buffer.from('/');

function join(a: Buffer, b: Buffer): Buffer {
  return a.length === 0 ? b : Buffer.concat([a, SLASH, b]);
}

function describe(stat: BigIntStats): string {
  if (stat.isFIFO()) return 'FIFO';
  if (stat.isSocket()) return 'socket';
  if (stat.isCharacterDevice()) return 'character device';
  if (stat.isBlockDevice()) return 'block device';
  return 'special file';
}

/**
 * Yields entries one directory at a time (an `await` between directories lets the
 * caller's other work run). Memory holds one sibling list per level of depth.
 */
export async function* walk(root: string, options: WalkOptions = {}): AsyncGenerator<ScanEntry> {
  const rootBytes = Buffer.from(root);
  const rootStat = lstatSync(rootBytes, { bigint: true });
  if (!rootStat.isDirectory()) throw new Error(`${root} is not a directory`);
  yield { path: Buffer.alloc(0), type: 'dir', stat: rootStat, directoryInode: 0n };
  yield* walkDir(rootBytes, Buffer.alloc(0), rootStat, options.oneFileSystem ? { ...options, device: rootStat.dev } : options);
}

type DirOptions = WalkOptions & { device?: bigint };

async function* walkDir(
  rootBytes: Buffer,
  relative: Buffer,
  directory: BigIntStats,
  options: DirOptions,
): AsyncGenerator<ScanEntry> {
  const directoryInode = directory.ino;
  const absolute = relative.length === 0 ? rootBytes : Buffer.concat([rootBytes, SLASH, relative]);
  let names: Buffer[];
  try {
    names = readdirSync(absolute, { encoding: 'buffer' });
  } catch (error) {
    options.onSkip?.({ path: relative, reason: `cannot list: ${(error as Error).message}` });
    return;
  }
  names.sort(Buffer.compare);
  const children: ScanEntry[] = [];
  for (const name of names) {
    const path = join(relative, name);
    const full = Buffer.concat([absolute, SLASH, name]);
    let stat: BigIntStats;
    try {
      stat = lstatSync(full, { bigint: true });
    } catch (error) {
      // Vanished between readdir and lstat: nothing to back up.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        options.onSkip?.({ path, reason: (error as Error).message });
      }
      continue;
    }
    if (options.device !== undefined && stat.dev !== options.device) {
      options.onSkip?.({ path, reason: 'on another filesystem: not entered' });
      continue;
    }
    if (stat.isDirectory()) {
      if (options.prune?.(full)) continue;
      children.push({ path, type: 'dir', stat, directoryInode });
    } else if (stat.isFile()) {
      children.push({ path, type: 'file', stat, directoryInode });
    } else if (stat.isSymbolicLink()) {
      try {
        children.push({ path, type: 'symlink', stat, directoryInode, target: readlinkSync(full, { encoding: 'buffer' }) });
      } catch (error) {
        options.onSkip?.({ path, reason: (error as Error).message });
      }
    } else {
      options.onSkip?.({ path, reason: `${describe(stat)} skipped` });
    }
  }
  if (options.cache) {
    const files = children.filter((c) => c.type === 'file');
    const hashes = options.cache.lookupDirectory(directory, files.map((f) => f.stat));
    files.forEach((f, i) => (f.cachedHash = hashes[i]));
  }
  for (const child of children) {
    yield child;
    if (child.type === 'dir') yield* walkDir(rootBytes, child.path, child.stat, options);
  }
}
