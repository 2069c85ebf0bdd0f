// Putting one entry in place in a restore target, never through a symlink.
import { lstatSync, mkdirSync, renameSync, unlinkSync } from 'node:fs';

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
