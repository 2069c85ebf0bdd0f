// Putting one entry in place in a restore target, never through a symlink.
import { chmodSync, chownSync, lchownSync, lstatSync, lutimesSync, mkdirSync, renameSync, symlinkSync, unlinkSync, utimesSync } from 'node:fs';
import { toSeconds } from './object-files.js';
import type { OwnerMapping, RestoreRecord } from './restore-record.js';

export function makeDirectoryAt(path: Buffer): void {
  try {
    // Owner-writable until its subtree is complete; the recorded mode is set on close.
    mkdirSync(path, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // The target itself was checked before; anything else is already there only under --overwrite.
    const existing = lstatSync(path);
    if (!existing.isDirectory()) {
      throw new Error(`${existing.isSymbolicLink() ? 'a symlink' : 'a file'} is in the way of this directory; left alone, with everything the snapshot holds beneath it`);
    }
  }
}

/** `name` in the directory of `path` ('' for a bare name: atPath went into its directory). */
export function beside(path: Buffer, name: Buffer): Buffer {
  return Buffer.concat([path.subarray(0, path.lastIndexOf(0x2f) + 1), name]);
}

/** rename(2) replaces a file or symlink at `path` itself, never what it points to. */
export function replace(temporary: Buffer, path: Buffer): void {
  try {
    renameSync(temporary, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') throw new Error('a directory is in the way; left alone');
    throw error;
  }
}

export function unlinkOrNone(path: Buffer): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Makes the symlink under the name `temporary` beside `path`, with its metadata, and renames it over `path`. */
export function placeSymlink(record: RestoreRecord, path: Buffer, temporary: Buffer, owners: OwnerMapping | null): void {
  symlinkSync(record.target!, temporary);
  try {
    if (owners) lchownSync(temporary, owners.uid(record), owners.gid(record));
    const seconds = toSeconds(record.mtimeNs);
    lutimesSync(temporary, seconds, seconds);
    replace(temporary, path);
  } catch (error) {
    unlinkSync(temporary);
    throw error;
  }
}

/** A directory's recorded owner, mode and mtime, once its subtree is complete. */
export function setDirectoryMetadata(dir: RestoreRecord, path: Buffer, owners: OwnerMapping | null): void {
  // Owner before mode: chown clears the setuid and setgid bits.
  if (owners) chownSync(path, owners.uid(dir), owners.gid(dir));
  chmodSync(path, dir.mode);
  const seconds = toSeconds(dir.mtimeNs);
  utimesSync(path, seconds, seconds);
}
