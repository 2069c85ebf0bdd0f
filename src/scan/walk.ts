// Walks the source depth-first, siblings in raw byte order of their names, so
// entries come out in the canonical order the repository side merges against.
// Names are handled as Buffers throughout: a name that is not UTF-8 survives.
import { accessSync, constants, lstatSync, opendirSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import type { HashCache } from './hash.js';
import type { Selection } from './selection.js';

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
  /** A directory on another filesystem under `oneFileSystem`: kept, empty (as `rsync -x` keeps it), not entered. */
  mountPoint?: boolean;
}

/**
 * `unreadable`: could not be listed, stat'ed or read (the tree is missing it: a partial run);
 * `special`: left out by design (FIFO, socket, device; a mount point under `oneFileSystem`).
 */
export type SkipKind = 'unreadable' | 'special';

export interface Skipped {
  path: Buffer;
  kind: SkipKind;
  reason: string;
}

export interface WalkOptions {
  /** Directories never to enter, told by their lstat: the repository itself, however it is reached (a bind mount too). */
  prune?: (stat: BigIntStats) => boolean;
  onSkip?: (skipped: Skipped) => void;
  /** Asked once per directory for all its regular files. */
  cache?: HashCache;
  /**
   * Enter no mount point: a directory on another filesystem is kept empty; anything else there (a file
   * bind-mounted in) is skipped, since hard links cannot cross filesystems.
   */
  oneFileSystem?: boolean;
  /** Excludes, tags and the file list: what is left out is never stat'ed below. */
  selection?: Selection;
}

const SLASH = Buffer.from('/');

function join(a: Buffer, b: Buffer): Buffer {
  return a.length === 0 ? b : Buffer.concat([a, SLASH, b]);
}

/** "permission denied (EACCES)", not "EACCES: permission denied, scandir '/a/very/long/path'": the path is named already. */
function errnoText(error: unknown): string {
  const e = error as NodeJS.ErrnoException;
  if (!e.code || !e.syscall || !e.message.startsWith(`${e.code}: `)) return e.message;
  const text = e.message.slice(e.code.length + 2);
  const end = text.indexOf(`, ${e.syscall}`);
  return `${end >= 0 ? text.slice(0, end) : text} (${e.code})`;
}

/** A backup source this process cannot list or enter is refused: that is not a partial snapshot, it is none. */
export function checkListable(root: string): void {
  try {
    opendirSync(root).closeSync();
    accessSync(root, constants.X_OK);
  } catch (error) {
    throw new Error(`cannot list the source ${root}: ${errnoText(error)}; nothing was backed up`);
  }
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
  const oneFileSystem = options.oneFileSystem || options.selection?.oneFileSystem;
  const whole = !options.selection?.fileList || options.selection.fileList.everything;
  yield* walkDir(rootBytes, Buffer.alloc(0), rootStat, oneFileSystem ? { ...options, device: rootStat.dev } : options, whole);
}

type DirOptions = WalkOptions & { device?: bigint };

async function* walkDir(
  rootBytes: Buffer,
  relative: Buffer,
  directory: BigIntStats,
  options: DirOptions,
  /** False while the file list narrows what is taken here. */
  whole: boolean,
): AsyncGenerator<ScanEntry> {
  const directoryInode = directory.ino;
  const absolute = relative.length === 0 ? rootBytes : Buffer.concat([rootBytes, SLASH, relative]);
  let names: Buffer[];
  try {
    names = readdirSync(absolute, { encoding: 'buffer' });
  } catch (error) {
    if (relative.length === 0) throw new Error(`cannot list ${rootBytes.toString()}: ${errnoText(error)}`);
    // The directory itself is kept (empty, with its own metadata, as rsync does); what it holds is missing.
    options.onSkip?.({ path: relative, kind: 'unreadable', reason: `cannot list its contents: ${errnoText(error)}` });
    return;
  }
  const selection = options.selection;
  const dirKey = relative.toString('latin1');
  if (selection) names = selection.namesToExamine(absolute, dirKey, whole, names);
  names.sort(Buffer.compare);
  const children: ScanEntry[] = [];
  const narrowed = new Set<ScanEntry>();
  for (const name of names) {
    const path = join(relative, name);
    const full = Buffer.concat([absolute, SLASH, name]);
    let stat: BigIntStats;
    try {
      stat = lstatSync(full, { bigint: true });
    } catch (error) {
      // Vanished between readdir and lstat: nothing to back up.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        options.onSkip?.({ path, kind: 'unreadable', reason: `cannot stat: ${errnoText(error)}` });
      }
      continue;
    }
    if (selection?.excluded(path, stat.isDirectory())) continue;
    if (options.device !== undefined && stat.dev !== options.device) {
      if (stat.isDirectory()) children.push({ path, type: 'dir', stat, directoryInode, mountPoint: true });
      else options.onSkip?.({ path, kind: 'special', reason: 'on another filesystem: not entered' });
      continue;
    }
    if (stat.isDirectory()) {
      if (options.prune?.(stat)) continue;
      const child: ScanEntry = { path, type: 'dir', stat, directoryInode };
      if (!whole && selection!.wanted(dirKey, name) === 'through') narrowed.add(child);
      children.push(child);
    } else if (stat.isFile()) {
      children.push({ path, type: 'file', stat, directoryInode });
    } else if (stat.isSymbolicLink()) {
      try {
        children.push({ path, type: 'symlink', stat, directoryInode, target: readlinkSync(full, { encoding: 'buffer' }) });
      } catch (error) {
        options.onSkip?.({ path, kind: 'unreadable', reason: `unreadable link target: ${errnoText(error)}` });
      }
    } else {
      options.onSkip?.({ path, kind: 'special', reason: `${describe(stat)} skipped` });
    }
  }
  if (options.cache) {
    const files = children.filter((c) => c.type === 'file');
    const hashes = options.cache.lookupDirectory(directory, files.map((f) => f.stat));
    files.forEach((f, i) => (f.cachedHash = hashes[i]));
  }
  for (const child of children) {
    yield child;
    if (child.type === 'dir' && !child.mountPoint) yield* walkDir(rootBytes, child.path, child.stat, options, whole || !narrowed.has(child));
  }
}
