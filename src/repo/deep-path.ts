// Paths longer than PATH_MAX. A source may hold a file whose path relative to
// its root is close to PATH_MAX; under `.lb/tmp/<name>/tree/` the same path is
// longer still, and every path-based system call fails with ENAMETOOLONG. Node
// has no openat()/mkdirat(), so such an operation is done from a working
// directory close to the target: chdir down in steps shorter than PATH_MAX, act
// on the short remainder, and come back. Everything here is synchronous, so no
// other code of this process sees the working directory change; the calls on
// libuv's thread pool (temporary files made ahead) use absolute paths.
import { spawnSync } from 'node:child_process';
import { chmodSync, lstatSync, readdirSync, rmdirSync, unlinkSync, type Dirent, type Stats } from 'node:fs';
import { dirname } from 'node:path';

/** Comfortably below Linux's PATH_MAX of 4096, so each chdir step is accepted. */
const STEP = 3072;
const SLASH = 0x2f;

function tooLong(error: unknown): boolean {
  return (error as NodeJS.ErrnoException).code === 'ENAMETOOLONG';
}

/**
 * Run `operation` on the absolute `path`; if the path is too long for the
 * kernel, run it instead on a short relative path from a working directory
 * inside the path's parent.
 */
export function atPath<T>(path: Buffer, operation: (path: Buffer) => T): T {
  try {
    return operation(path);
  } catch (error) {
    if (!tooLong(error)) throw error;
  }
  const home = process.cwd();
  const cut = path.lastIndexOf(SLASH);
  try {
    enter(path.subarray(0, cut));
    return operation(path.subarray(cut + 1));
  } finally {
    process.chdir(home);
  }
}

/** chdir into `dir` in steps, each a run of whole components shorter than STEP. */
function enter(dir: Buffer): void {
  let start = 0;
  while (start < dir.length) {
    let end = dir.length;
    if (end - start > STEP) {
      end = dir.lastIndexOf(SLASH, start + STEP);
      if (end <= start) throw Object.assign(new Error(`a path component is too long: ${dirname(dir.toString())}`), { code: 'ENAMETOOLONG' });
    }
    chdirBytes(dir.subarray(start, end));
    start = end + 1;
  }
}

/** process.chdir takes a string, which it encodes as UTF-8: a name that is not UTF-8 cannot be entered this way. */
function chdirBytes(part: Buffer): void {
  const text = part.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(part)) {
    throw Object.assign(new Error('a directory name that is not UTF-8 lies beyond PATH_MAX'), { code: 'ENAMETOOLONG' });
  }
  process.chdir(text === '' ? '/' : text);
}

/**
 * Remove a directory tree (or a file) however deep it is and whatever its directories' permission bits. A
 * snapshot of a read-only source directory (0555) holds one, which even its owner must make writable again
 * before it can empty it: as another user than root, rmSync (and rm) failed there, so a prune stopped, and
 * then every backup, emptying the trash first, stopped too. Past PATH_MAX, where calls by path fail,
 * coreutils' rm (which works relative to directory descriptors) removes the rest.
 */
export function removeTree(path: string): void {
  try {
    const top = Buffer.from(path);
    // lstat: a symlink is removed, never followed (below, readdir's entry types say the same).
    if (lstatOrNull(top)?.isDirectory()) removeWalking(top);
    else withinWritable(parentOf(top), () => unlinkSync(top));
  } catch (error) {
    if (!tooLong(error)) throw error;
    const r = spawnSync('rm', ['-rf', '--', path], { stdio: 'ignore' });
    if (r.error || r.status !== 0) throw error;
  }
}

function lstatOrNull(path: Buffer): Stats | null {
  try {
    return lstatSync(path);
  } catch (error) {
    if (code(error) === 'ENOENT') return null;
    throw error;
  }
}

function code(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

/** Each entry's type from readdir, so no lstat per file (what rm -rf does too); a missing path is nothing to do. */
function removeWalking(path: Buffer): void {
  let entries: Dirent<Buffer>[];
  try {
    entries = readdirSync(path, { withFileTypes: true, encoding: 'buffer' });
  } catch (error) {
    if (code(error) === 'ENOENT') return;
    if (code(error) !== 'EACCES') throw error;
    widen(path, error);
    entries = readdirSync(path, { withFileTypes: true, encoding: 'buffer' });
  }
  for (const entry of entries) {
    const child = Buffer.concat([path, Buffer.from('/'), entry.name]);
    if (entry.isDirectory()) removeWalking(child);
    else withinWritable(path, () => unlinkSync(child));
  }
  withinWritable(parentOf(path), () => rmdirSync(path));
}

function parentOf(path: Buffer): Buffer {
  return Buffer.from(dirname(path.toString('latin1')), 'latin1'); // latin1: every byte through unchanged
}

/** Runs `remove`, which needs write permission on `dir`; on EACCES, gives the owner that permission and tries again. */
function withinWritable(dir: Buffer, remove: () => void): void {
  try {
    remove();
  } catch (error) {
    if (code(error) === 'ENOENT') return;
    if (code(error) !== 'EACCES') throw error;
    widen(dir, error);
    remove();
  }
}

/** rwx for the owner on a directory of a tree being removed; the original error when that is not ours to change. */
function widen(dir: Buffer, original: unknown): void {
  try {
    chmodSync(dir, 0o700);
  } catch {
    throw original;
  }
}
