// What a killed prune left in `.lb/trash/`: snapshot trees partly deleted, their manifests perhaps gone
// first, so walked rather than read through a manifest. The next prune empties the trash before it
// collects objects, so what these files alone hold is freed with the snapshots it removes, and counts
// in its prediction. Reads only.
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { atPath } from './deep-path.js';
import type { SnapshotFiles, TreeFile } from './usage.js';

/** Null once gone: a prune running meanwhile may be emptying the trash. */
function orNull<T>(operation: () => T): T | null {
  try {
    return operation();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw error;
  }
}

/** Every regular file of the trees in `.lb/trash/`, as one pseudo-snapshot for the accounting of usage.ts. */
export function trashFiles(root: string): SnapshotFiles {
  const files: TreeFile[] = [];
  // Names as bytes (a tree's names need not be UTF-8), paths of any length (atPath).
  const visit = (dir: Buffer): void => {
    for (const name of orNull(() => atPath(dir, (p) => readdirSync(p, { encoding: 'buffer' }))) ?? []) {
      const path = Buffer.concat([dir, Buffer.from('/'), name]);
      const stat: Stats | null = orNull(() => atPath(path, (p) => lstatSync(p)));
      if (stat?.isDirectory()) visit(path);
      else if (stat?.isFile()) files.push({ inode: stat.ino, size: stat.size, diskBytes: stat.blocks * 512, nlink: stat.nlink });
    }
  };
  // Only trees' files are objects' links: a snapshot's manifest and log are its own, as for `lb du`.
  const trash = join(root, '.lb', 'trash');
  for (const snapshot of orNull(() => readdirSync(trash)) ?? []) visit(Buffer.from(join(trash, snapshot, 'tree')));
  return { name: '.lb/trash', files };
}
