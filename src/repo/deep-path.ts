// Paths longer than PATH_MAX. A source may hold a file whose path relative to
// its root is close to PATH_MAX; under `.lb/tmp/<name>/tree/` the same path is
// longer still, and every path-based system call fails with ENAMETOOLONG. Node
// has no openat()/mkdirat(), so such an operation is done from a working
// directory close to the target: chdir down in steps shorter than PATH_MAX, act
// on the short remainder, and come back. Everything here is synchronous, so no
// other code of this process sees the working directory change; the calls on
// libuv's thread pool (temporary files made ahead) use absolute paths.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
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
 * Remove a directory tree however deep it is: rmSync walks it by path and fails
 * past PATH_MAX, where coreutils' rm (which works relative to directory
 * descriptors) does not.
 */
export function removeTree(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true });
  } catch (error) {
    if (!tooLong(error)) throw error;
    const r = spawnSync('rm', ['-rf', '--', path], { stdio: 'ignore' });
    if (r.error || r.status !== 0) throw error;
  }
}
