// `lb verify` on a member of a source hard-link group (format 2): the earlier path
// its record names must be a file of the tree, and the two must share one inode,
// as they share content and metadata and so one object. Checked by one lstat of
// that path, so memory does not grow with the number of groups.
import { lstatSync, type BigIntStats } from 'node:fs';
import { atPath } from './deep-path.js';

/** What is wrong with the tree file `stat` as a member of the group whose first is `link`, or null. */
export function linkGroupFault(treeDir: string, link: Buffer, stat: BigIntStats): string | null {
  const shown = JSON.stringify(link.toString());
  let first: BigIntStats;
  try {
    first = atPath(Buffer.concat([Buffer.from(treeDir + '/'), link]), (path) => lstatSync(path, { bigint: true }));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return `names ${shown} as its hard-link group's first, which is not in the tree`;
    return `its hard-link group's first ${shown} cannot be examined: ${(error as Error).message}`;
  }
  if (!first.isFile()) return `names ${shown} as its hard-link group's first, which is not a file`;
  if (first.dev !== stat.dev || first.ino !== stat.ino) return `not the same inode as ${shown}, the first of its hard-link group`;
  return null;
}
