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
 * Yields entries one at a time, each directory's subtree right after it. Memory
 * holds, per level of depth, the sorted names of one directory (one compact
 * string each) and its cached hashes; never a stat per entry of a directory.
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

/**
 * The names in directory `absolute` to examine, in raw byte order, as latin1 text: one character a
 * byte, so a name survives whatever its bytes, costs a small string rather than a Buffer, and
 * sorts in byte order by plain string comparison.
 */
function sortedNames(absolute: Buffer, dirKey: string, whole: boolean, selection: Selection | undefined): string[] {
  let names = readdirSync(absolute, { encoding: 'latin1' });
  if (selection) names = selection.namesToExamine(absolute, dirKey, whole, names);
  return names.sort();
}

async function* walkDir(
  rootBytes: Buffer,
  relative: Buffer,
  directory: BigIntStats,
  options: DirOptions,
  /** False while the file list narrows what is taken here. */
  whole: boolean,
): AsyncGenerator<ScanEntry> {
  const absolute = relative.length === 0 ? rootBytes : Buffer.concat([rootBytes, SLASH, relative]);
  const dirKey = relative.toString('latin1');
  let names: string[];
  try {
    names = sortedNames(absolute, dirKey, whole, options.selection);
  } catch (error) {
    if (relative.length === 0) throw new Error(`cannot list ${rootBytes.toString()}: ${errnoText(error)}`);
    // The directory itself is kept (empty, with its own metadata, as rsync does); what it holds is missing.
    options.onSkip?.({ path: relative, kind: 'unreadable', reason: `cannot list its contents: ${errnoText(error)}` });
    return;
  }
  const hashes = options.cache?.directory(directory);
  for (const text of names) {
    const name = Buffer.from(text, 'latin1');
    const child = examine(absolute, relative, name, directory.ino, options);
    if (child === null) continue;
    if (child.type === 'file' && hashes) child.cachedHash = hashes.lookup(child.stat);
    yield child;
    if (child.type === 'dir' && !child.mountPoint) {
      const narrowed = !whole && options.selection!.wanted(dirKey, name) === 'through';
      yield* walkDir(rootBytes, child.path, child.stat, options, !narrowed);
    }
  }
  hashes?.finish();
}

/** The entry for `name` in directory `absolute`, or null for what is left out (told to onSkip where it must be). */
function examine(absolute: Buffer, relative: Buffer, name: Buffer, directoryInode: bigint, options: DirOptions): ScanEntry | null {
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
    return null;
  }
  if (options.selection?.excluded(path, stat.isDirectory())) return null;
  if (options.device !== undefined && stat.dev !== options.device) {
    if (stat.isDirectory()) return { path, type: 'dir', stat, directoryInode, mountPoint: true };
    options.onSkip?.({ path, kind: 'special', reason: 'on another filesystem: not entered' });
    return null;
  }
  if (stat.isDirectory()) return options.prune?.(stat) ? null : { path, type: 'dir', stat, directoryInode };
  if (stat.isFile()) return { path, type: 'file', stat, directoryInode };
  if (stat.isSymbolicLink()) {
    try {
      return { path, type: 'symlink', stat, directoryInode, target: readlinkSync(full, { encoding: 'buffer' }) };
    } catch (error) {
      options.onSkip?.({ path, kind: 'unreadable', reason: `unreadable link target: ${errnoText(error)}` });
      return null;
    }
  }
  options.onSkip?.({ path, kind: 'special', reason: `${describe(stat)} skipped` });
  return null;
}
