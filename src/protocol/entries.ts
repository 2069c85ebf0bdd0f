// The entries of a backup as the source sends them: whole entries, and (version 8)
// runs of the repository's previous snapshot, in place or moved. Decoding checks
// every path before any other code sees it.
import { ProtocolError } from './frames.js';
import { fail, getBytes, hash, int, isSafeRelativePath, nanoseconds, obj, putBytes, str } from './validate.js';

export type EntryType = 'file' | 'dir' | 'symlink';

/** One source entry. Paths are raw bytes relative to the source root; the root itself is the empty path. */
export interface Entry {
  path: Buffer;
  type: EntryType;
  size: number;
  mtimeNs: bigint;
  /** Permission bits only (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  /** SHA-256, lowercase hex; present when the source already knows it. */
  hash?: string;
  target?: Buffer;
  /**
   * A file with more than one link in the source: 'first' on the first of its (dev, ino) group sent
   * this run, and on each later one the index of that first entry (always lower than its own).
   */
  link?: 'first' | number;
}

/**
 * In an `entries` batch (version 8), in place of `count` entries: the next records of the repository's
 * latest snapshot, unchanged, after passing over `over` of its records (gone from the source, or sent in
 * full). Only after the repository side's hello accepted the stream the source's hello named.
 */
export interface PreviousRun {
  count: number;
  over: number;
  /** A moved run: records of the previous snapshot's subtree of `from`, re-rooted at `to` (`over` is then 0). */
  moved?: MovedFrom;
}

/**
 * Where a moved run's records are (version 8): the subtree of directory `from` in the latest snapshot (its
 * own record first, then everything inside it, in manifest order), from its record `at` on, each record's
 * path with `from` replaced by `to`.
 */
export interface MovedFrom {
  from: Buffer;
  to: Buffer;
  at: number;
}

export type EntryItem = Entry | PreviousRun;

export function isPreviousRun(item: EntryItem): item is PreviousRun {
  return (item as PreviousRun).count !== undefined && (item as Entry).path === undefined;
}

/** Entries an item stands for. */
export function itemCount(item: EntryItem): number {
  return isPreviousRun(item) ? item.count : 1;
}

/** At most this many entries in one `entries` message, whether sent whole or as runs of the previous snapshot. */
export const MAX_BATCH_ENTRIES = 100000;

export function encodeEntry(e: Entry): object {
  const wire: Record<string, unknown> = {
    k: e.type === 'file' ? 'f' : e.type === 'dir' ? 'd' : 'l',
    s: e.size,
    m: e.mtimeNs.toString(),
    mo: e.mode,
    u: e.uid,
    g: e.gid,
  };
  putBytes(wire, 'p', e.path);
  if (e.user !== undefined) wire.un = e.user;
  if (e.group !== undefined) wire.gn = e.group;
  if (e.hash !== undefined) wire.h = e.hash;
  if (e.target !== undefined) putBytes(wire, 't', e.target);
  if (e.link !== undefined) wire.ln = e.link;
  return wire;
}

/** A run of the previous snapshot: `r` records, after passing over `o` (omitted when 0). */
export function encodeRun(run: PreviousRun): object {
  if (run.moved) return encodeMovedRun(run.count, run.moved);
  return run.over === 0 ? { r: run.count } : { r: run.count, o: run.over };
}

/** A moved run: `r` records of the subtree of `mv`, from its record `at` (omitted when 0), re-rooted at `to`. */
function encodeMovedRun(count: number, moved: MovedFrom): object {
  const wire: Record<string, unknown> = { r: count };
  putBytes(wire, 'mv', moved.from);
  putBytes(wire, 'to', moved.to);
  if (moved.at !== 0) wire.at = moved.at;
  return wire;
}

export function decodeEntry(raw: unknown): Entry {
  const w = obj(raw, 'entry');
  const path = getBytes(w, 'p', 'entry path');
  if (!isSafeRelativePath(path)) throw new ProtocolError(`peer sent an unsafe path ${JSON.stringify(path.toString('latin1'))}`);
  const type = w.k === 'f' ? 'file' : w.k === 'd' ? 'dir' : w.k === 'l' ? 'symlink' : fail('entry type');
  const entry: Entry = {
    path,
    type,
    size: int(w.s, 'entry size'),
    mtimeNs: nanoseconds(w.m, 'entry mtime'),
    mode: int(w.mo, 'entry mode', 0o7777),
    uid: int(w.u, 'entry uid', 0xffffffff),
    gid: int(w.g, 'entry gid', 0xffffffff),
  };
  if (w.un !== undefined) entry.user = str(w.un, 'user name', 256);
  if (w.gn !== undefined) entry.group = str(w.gn, 'group name', 256);
  if (w.h !== undefined) {
    if (type !== 'file') fail('hash on a non-file');
    entry.hash = hash(w.h, 'entry hash');
  }
  if (type === 'symlink') {
    const target = getBytes(w, 't', 'symlink target');
    if (target.length === 0 || target.includes(0)) fail('symlink target');
    entry.target = target;
  } else if (w.t !== undefined || w.tb !== undefined) fail('target on a non-symlink');
  if (w.ln !== undefined) {
    if (type !== 'file') fail('hard link on a non-file');
    entry.link = w.ln === 'first' ? 'first' : int(w.ln, 'hard link');
  }
  return entry;
}

export function decodeItem(raw: unknown): EntryItem {
  const w = obj(raw, 'entry');
  if (w.r === undefined) return decodeEntry(w);
  const count = int(w.r, 'run of the previous snapshot', MAX_BATCH_ENTRIES);
  if (count === 0) fail('run of the previous snapshot');
  if (w.mv !== undefined || w.mvb !== undefined) return { count, over: 0, moved: decodeMovedFrom(w) };
  return { count, over: w.o === undefined ? 0 : int(w.o, 'records passed over') };
}

function decodeMovedFrom(w: Record<string, unknown>): MovedFrom {
  if (w.o !== undefined) fail('moved run');
  const from = getBytes(w, 'mv', 'moved run path');
  const to = getBytes(w, 'to', 'moved run path');
  for (const path of [from, to]) if (!isSafeRelativePath(path)) throw new ProtocolError(`peer sent an unsafe path ${JSON.stringify(path.toString('latin1'))}`);
  // Neither is the root: re-rooting replaces a directory's path, the root has none.
  if (from.length === 0 || to.length === 0) fail('moved run');
  return { from, to, at: w.at === undefined ? 0 : int(w.at, 'moved run start') };
}
