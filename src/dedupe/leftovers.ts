// A run killed between linking the kept file under a temporary name and
// renaming that link over the duplicate (replace.ts) leaves the temporary name
// behind. That name is always one more link to an inode that keeps its own
// (the kept file's path, which the replacement never touches): removing it
// loses nothing. A later run removes such names when the run that made them is
// gone, and only while the inode still has another name, should something else
// have removed that one since.
import { lstatSync, unlinkSync, type BigIntStats } from 'node:fs';
import type { Skipped } from '../scan/walk.js';
import { TEMPORARY_NAME } from './replace.js';

/**
 * For a file named as lb dedupe names its temporary links (never a candidate for linking): 'leftover'
 * when the run that made it is gone, 'maybe in use' when that run may be running (its pid is alive, or
 * is this run's); null for any other file.
 */
export function temporaryLink(relative: Buffer): 'leftover' | 'maybe in use' | null {
  const owner = TEMPORARY_NAME.exec(relative.subarray(relative.lastIndexOf(0x2f) + 1).toString('latin1'));
  if (!owner) return null;
  const pid = Number(owner[1]);
  return pid !== process.pid && !isRunning(pid) ? 'leftover' : 'maybe in use';
}

/** Removes a leftover; true if it was. One that is (now) its file's only name is kept, and said so. */
export function removeLeftover(path: Buffer, stat: BigIntStats, skip: (skipped: Skipped) => void): boolean {
  const now = lstatSync(path, { bigint: true, throwIfNoEntry: false });
  if (!now) return false;
  if (now.ino !== stat.ino || now.dev !== stat.dev || now.nlink < 2n) {
    skip({ path, kind: 'special', reason: 'named as a temporary link of an interrupted lb dedupe, but the only name of its file: left alone' });
    return false;
  }
  try {
    unlinkSync(path);
    return true;
  } catch (error) {
    skip({ path, kind: 'special', reason: `cannot remove this temporary link left by an interrupted lb dedupe: ${(error as Error).message}` });
    return false;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // someone else's process
  }
}
