// Replacing a duplicate by a hard link without a moment where its path is
// missing: link the kept file under a temporary name in the duplicate's
// directory, check that the link is the kept inode and the duplicate is still
// what was compared, then rename the link over the duplicate (atomic).
import { linkSync, lstatSync, renameSync, unlinkSync, type BigIntStats } from 'node:fs';
import { unchanged } from '../scan/fast-hash.js';

export type Replaced = 'linked' | 'link limit' | 'kept changed' | 'duplicate changed';

let counter = 0;

/** `.lb-dedupe-PID-N`: whose it is, so that a later run can tell a dead run's leftover (leftovers.ts). */
export const TEMPORARY_NAME = /^\.lb-dedupe-([0-9]+)-[0-9]+$/;

function temporaryBeside(path: Buffer): Buffer {
  const slash = path.lastIndexOf(0x2f);
  return Buffer.concat([path.subarray(0, slash + 1), Buffer.from(`.lb-dedupe-${process.pid}-${counter++}`)]);
}

export function replaceWithLink(kept: { path: Buffer; stat: BigIntStats }, duplicate: { path: Buffer; stat: BigIntStats }): Replaced {
  let temporary: Buffer;
  for (;;) {
    temporary = temporaryBeside(duplicate.path);
    try {
      linkSync(kept.path, temporary);
      break;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EMLINK') return 'link limit';
      if (code !== 'EEXIST') throw error; // else a killed run's leftover, of a run that had this pid: next name
    }
  }
  let done = false;
  try {
    const linked = lstatSync(temporary, { bigint: true });
    // Our own link moved the kept inode's ctime: compare everything else.
    if (linked.ino !== kept.stat.ino || linked.dev !== kept.stat.dev || linked.size !== kept.stat.size || linked.mtimeNs !== kept.stat.mtimeNs) {
      return 'kept changed';
    }
    if (!unchanged(lstatSync(duplicate.path, { bigint: true }), duplicate.stat)) return 'duplicate changed';
    renameSync(temporary, duplicate.path);
    done = true;
    return 'linked';
  } finally {
    if (!done) unlinkSync(temporary);
  }
}
