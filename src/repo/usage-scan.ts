// What `lb du` measures on disk, for the accounting in usage.ts: each
// snapshot's tree files lstat'ed through its manifest (a tree file is its
// object's inode), and the inodes of the object store. Reads only.
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { atPath } from './deep-path.js';
import type { RepositoryReader } from './reader.js';
import type { SnapshotFiles, StoreObject, TreeFile } from './usage.js';

/** A hand-edited tree: manifest files that are not where, or not what, lb left them. */
export interface TreeDamage {
  snapshot: string;
  /** In the manifest, not in the tree. */
  missing: number;
  /** In the tree as something else than a regular file: left out of the figures. */
  notRegular: number;
  /** Regular files with no other link, so no object in the store: counted, as deleting the snapshot frees them. */
  unlinked: number;
}

function lstatOrNull(path: Buffer): Stats | null {
  try {
    return atPath(path, (p) => lstatSync(p));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw error;
  }
}

function treeFile(stat: Stats): TreeFile {
  return { inode: stat.ino, size: stat.size, diskBytes: stat.blocks * 512, nlink: stat.nlink };
}

/** One snapshot's regular tree files, found through its manifest's file records. */
function snapshotFiles(reader: RepositoryReader, name: string): { files: SnapshotFiles; damage: TreeDamage } {
  const tree = Buffer.from(join(reader.snapshotDir(name), 'tree') + '/');
  const files: TreeFile[] = [];
  const damage: TreeDamage = { snapshot: reader.label(name), missing: 0, notRegular: 0, unlinked: 0 };
  for (const record of reader.records(name)) {
    if (record.type !== 'file') continue;
    const stat = lstatOrNull(Buffer.concat([tree, record.path]));
    if (stat === null) damage.missing++;
    else if (!stat.isFile()) damage.notRegular++;
    else {
      if (stat.nlink === 1) damage.unlinked++;
      files.push(treeFile(stat));
    }
  }
  return { files: { name, ...(reader.series === null ? {} : { series: reader.series }), files }, damage };
}

/** One snapshot's regular tree files (a damaged tree's missing files are simply not there). */
export function snapshotFilesOf(reader: RepositoryReader, name: string): SnapshotFiles {
  return snapshotFiles(reader, name).files;
}

/**
 * Every snapshot's files, one snapshot at a time; `onDamage` hears of each damaged tree. All of the
 * repository unless the reader is of one series: the top level's and every series' snapshots together,
 * oldest first (by name, then the top level before the series), so what each added is what it linked first.
 */
export function* allSnapshotFiles(reader: RepositoryReader, onDamage: (damage: TreeDamage) => void): Generator<SnapshotFiles> {
  const all = reader.scope().flatMap((part) => part.snapshots().map((name) => ({ part, name })));
  all.sort((a, b) => (a.name !== b.name ? (a.name < b.name ? -1 : 1) : (a.part.series ?? '') < (b.part.series ?? '') ? -1 : 1));
  for (const { part, name } of all) {
    const { files, damage } = snapshotFiles(part, name);
    if (damage.missing + damage.notRegular + damage.unlinked > 0) onDamage(damage);
    yield files;
  }
}

/** The store's objects no tree links (link count 1): what a prune collects, whichever series are looked at. */
export function* unlinkedObjects(root: string): Generator<StoreObject> {
  for (const object of storeObjects(root)) if (object.nlink === 1) yield object;
}

/** The regular files of `.lb/objects/<fan-out>/`: primaries, variants and twins. Quarantined objects are elsewhere. */
export function* storeObjects(root: string): Generator<StoreObject> {
  const objects = join(root, '.lb', 'objects');
  for (const fanout of readdirOrEmpty(objects)) {
    const dir = join(objects, fanout);
    for (const name of readdirOrEmpty(dir)) {
      const stat = lstatOrNull(Buffer.from(join(dir, name))); // null: quarantined by a backup meanwhile
      if (stat?.isFile()) yield { inode: stat.ino, size: stat.size, diskBytes: stat.blocks * 512, nlink: stat.nlink };
    }
  }
}

/** A directory's names; none when it is missing or not a directory (a store not made yet, a stray file). */
function readdirOrEmpty(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw error;
  }
}
