// The space accounting of `lb du`, without I/O: given, for each snapshot, the
// inodes its tree files are (every regular file of a tree is a hard link to an
// object), and the inodes of the object store, what each snapshot alone holds,
// what it added, and what the repository stores against what it shows.
//
// "Alone holds": an inode is freed by deleting snapshot S (and then collecting
// store objects that nothing links any more, as prune will) when every one of its
// links but the store's own name lies in S: the number of S's paths linking it
// equals nlink - 1. A tree file that is its inode's only link (count == nlink: a
// hand-edited repository, no store name) is freed by the deletion itself.
// "Added": the inodes S links that no older snapshot links, i.e. the objects
// first linked by S. Chosen over the manifest's `how = new` because it counts
// space, not transfers: a variant `copied` from another object is a new inode
// too, and an object stored by an interrupted run (no snapshot) and linked by the
// next one is space that next snapshot added although its manifest says `linked`.
// The added figures then sum, over all snapshots, to the bytes of every object
// some snapshot links, which with the unreferenced objects makes the stored total.

/** One regular file of a snapshot's tree, as lstat sees it. */
export interface TreeFile {
  inode: number;
  /** st_size: bytes are apparent sizes. */
  size: number;
  /** st_blocks * 512: what `du` counts. */
  diskBytes: number;
  nlink: number;
}

export interface SnapshotFiles {
  name: string;
  /** The snapshot's series; absent at the repository's top level. */
  series?: string;
  files: TreeFile[];
}

/** One inode of `.lb/objects/`. */
export interface StoreObject {
  inode: number;
  size: number;
  diskBytes: number;
  nlink: number;
}

export interface SnapshotUsage {
  name: string;
  series?: string;
  /** What deleting this snapshot (and collecting the objects left unlinked) frees. */
  exclusiveBytes: number;
  /** The objects this snapshot links first, oldest snapshot first. */
  addedBytes: number;
  files: number;
}

export interface UsageTotals {
  /** Every distinct inode of the store and of the trees, each counted once however many links it has. */
  storedBytes: number;
  storedDiskBytes: number;
  /** Every tree file of every snapshot, each link counted. */
  apparentBytes: number;
  /** apparentBytes / storedBytes: how many times the snapshots would take their stored space without hard links; 0 when nothing is stored. */
  ratio: number;
  /** Store objects no snapshot links: what a prune would collect. */
  unreferencedObjects: number;
  unreferencedBytes: number;
}

export interface Usage {
  snapshots: SnapshotUsage[];
  totals: UsageTotals;
}

/**
 * The accounting. `snapshots` is iterated once, oldest first, one snapshot at a
 * time (the caller may produce them lazily), and `store` after it: memory holds
 * one snapshot's files and the set of inodes linked so far.
 */
export function accountUsage(snapshots: Iterable<SnapshotFiles>, store: Iterable<StoreObject>): Usage {
  const linked = new Set<number>();
  const rows: SnapshotUsage[] = [];
  let apparentBytes = 0;
  let linkedBytes = 0;
  let linkedDiskBytes = 0;
  for (const snapshot of snapshots) {
    const inodes = new Map<number, { links: number; file: TreeFile }>();
    for (const file of snapshot.files) {
      apparentBytes += file.size;
      const seen = inodes.get(file.inode);
      if (seen) {
        seen.links++;
        seen.file = file; // the latest lstat has the latest link count
      } else inodes.set(file.inode, { links: 1, file });
    }
    let exclusiveBytes = 0;
    let addedBytes = 0;
    for (const [inode, { links, file }] of inodes) {
      if (links >= file.nlink - 1) exclusiveBytes += file.size;
      if (!linked.has(inode)) {
        linked.add(inode);
        addedBytes += file.size;
        linkedDiskBytes += file.diskBytes;
      }
    }
    linkedBytes += addedBytes;
    rows.push({ name: snapshot.name, ...(snapshot.series === undefined ? {} : { series: snapshot.series }), exclusiveBytes, addedBytes, files: snapshot.files.length });
  }
  let unreferencedObjects = 0;
  let unreferencedBytes = 0;
  let unreferencedDiskBytes = 0;
  const counted = new Set<number>(); // a store inode with two names (a hand-made link) counts once
  for (const object of store) {
    if (linked.has(object.inode) || counted.has(object.inode)) continue;
    counted.add(object.inode);
    unreferencedObjects++;
    unreferencedBytes += object.size;
    unreferencedDiskBytes += object.diskBytes;
  }
  const storedBytes = linkedBytes + unreferencedBytes;
  return {
    snapshots: rows,
    totals: {
      storedBytes,
      storedDiskBytes: linkedDiskBytes + unreferencedDiskBytes,
      apparentBytes,
      ratio: storedBytes === 0 ? 0 : apparentBytes / storedBytes,
      unreferencedObjects,
      unreferencedBytes,
    },
  };
}

export interface RemovalEstimate {
  objects: number;
  bytes: number;
}

/**
 * What deleting a set of snapshots, then collecting the objects nothing links any more, frees: each inode all of
 * whose links but the store's own lie in the set, once, and every store object already linked by no snapshot.
 */
export function exclusiveOfSet(snapshots: Iterable<SnapshotFiles>, store: Iterable<StoreObject>): RemovalEstimate {
  const links = new Map<number, { links: number; file: TreeFile }>();
  for (const snapshot of snapshots) {
    for (const file of snapshot.files) {
      const seen = links.get(file.inode);
      if (seen) {
        seen.links++;
        seen.file = file;
      } else links.set(file.inode, { links: 1, file });
    }
  }
  let objects = 0;
  let bytes = 0;
  for (const { links: count, file } of links.values()) {
    if (count < file.nlink - 1) continue;
    objects++;
    bytes += file.size;
  }
  for (const object of store) {
    if (object.nlink !== 1) continue;
    objects++;
    bytes += object.size;
  }
  return { objects, bytes };
}
