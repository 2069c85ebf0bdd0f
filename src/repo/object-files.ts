// An object's file and metadata: the names a variant gets, how its metadata is
// compared and set (by path, or on the open descriptor of a new object, whose
// calls then run on the write pool), and how files are made durable.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, closeSync, fchmodSync, fchownSync, fsyncSync, ftruncateSync, futimesSync, lstatSync, openSync, utimesSync, type BigIntStats } from 'node:fs';

export interface ObjectMeta {
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
}

/**
 * utimes takes seconds as a double and libuv keeps whole microseconds, so a set
 * mtime can differ from the wanted one by up to a microsecond and a rounding step.
 */
export const MTIME_TOLERANCE_NS = 2000n;

export function variantName(hash: string, meta: ObjectMeta): string {
  return `${hash}.${meta.mode.toString(8)}.${meta.uid}.${meta.gid}.${meta.mtimeNs}`;
}

/** Seconds as the double utimes wants, split so that large nanosecond counts lose no more than the double must. */
export function toSeconds(ns: bigint): number {
  return Number(ns / 1_000_000_000n) + Number(ns % 1_000_000_000n) / 1e9;
}

/** The inode has this mode, owner and mtime (within what utimes can set). */
export function hasMeta(stat: BigIntStats, meta: ObjectMeta): boolean {
  const drift = stat.mtimeNs - meta.mtimeNs;
  return (
    Number(stat.mode & 0o7777n) === meta.mode &&
    Number(stat.uid) === meta.uid &&
    Number(stat.gid) === meta.gid &&
    drift < MTIME_TOLERANCE_NS &&
    drift > -MTIME_TOLERANCE_NS
  );
}

/** Two wanted metadata are the same. */
export function sameMeta(a: ObjectMeta, b: ObjectMeta): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.mtimeNs === b.mtimeNs;
}

/** The lstat of `path`, or null when nothing is there. */
export function lstatOrNull(path: string): BigIntStats | null {
  // Without a throw for ENOENT: a first backup asks after thousands of absent objects, and each
  // thrown error costs more than the lstat itself.
  return lstatSync(path, { bigint: true, throwIfNoEntry: false }) ?? null;
}

/** A new object's file, still open, whose data writes are in flight. */
export interface OpenObjectFile {
  fd: number;
  /** Settles when every data write is done. */
  written: Promise<void>;
  /** A data write failed: the file is not the content. */
  failed(): boolean;
  /** The size to set at the end (it ends in a hole), or null when the writes made it. */
  sizeToSet: number | null;
}

/** Ours, asked once: metadata is chowned only to another owner. */
const OWN_UID = process.getuid?.() ?? -1;
const OWN_GID = process.getgid?.() ?? -1;

/** Only root may give an object another owner, and only another owner needs a chown. */
function needsChown(meta: ObjectMeta, setOwner: boolean): boolean {
  return setOwner && (meta.uid !== OWN_UID || meta.gid !== OWN_GID);
}

/** Give the file at `path` this owner, mode and mtime. */
export function applyMeta(path: string, meta: ObjectMeta, setOwner: boolean): void {
  if (needsChown(meta, setOwner)) chownSync(path, meta.uid, meta.gid);
  // After chown: changing the owner clears set-id bits.
  chmodSync(path, meta.mode);
  const seconds = toSeconds(meta.mtimeNs);
  utimesSync(path, seconds, seconds);
}

/** fsync a file or directory by path. */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * One syncfs(2) for the whole filesystem (through coreutils `sync -f`, as Node has
 * no binding) costs far less than an fsync per object; `fallback` runs where that
 * command is missing.
 */
export function syncFilesystem(dir: string, fallback: () => void): void {
  const result = spawnSync('sync', ['-f', dir], { stdio: 'ignore' });
  if (result.error || result.status !== 0) fallback();
}

/**
 * Size, owner, mode and mtime of a new object's open file, then close it: once its data writes are done,
 * at once rather than as four more trips through the thread pool, each of which cost the receiving loop
 * about what the call itself costs.
 */
export function finishOpenFile(open: OpenObjectFile, meta: ObjectMeta, setOwner: boolean): void {
  try {
    if (open.sizeToSet !== null) ftruncateSync(open.fd, open.sizeToSet);
    if (needsChown(meta, setOwner)) fchownSync(open.fd, meta.uid, meta.gid);
    // After chown: changing the owner clears set-id bits.
    fchmodSync(open.fd, meta.mode);
    const seconds = toSeconds(meta.mtimeNs);
    futimesSync(open.fd, seconds, seconds);
  } finally {
    closeSync(open.fd);
  }
}
