// `lb verify`: the whole repository checked against docs/FORMAT.md, as a stream
// of problems. In this order: `latest`, snapshot directories that are not
// complete snapshots, the object store (names, types, variants' metadata, and
// with --read-data the chosen objects re-hashed, each read once), then every
// complete snapshot, manifest against tree (verify-snapshot.ts), and last the
// damaged objects with every path that links to them, found on that walk.
// Without --series the top level and every series are checked (a series'
// snapshots are named SERIES/NAME), and the store they share once.
// Like every reader it takes no lock and writes nothing: a backup running
// meanwhile only adds complete objects and snapshots, which are not problems.
import { lstatSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { SNAPSHOT_NAME, hasManifest, snapshotNames } from './layout.js';
import { subsetTakes, type ObjectSubset } from './object-subset.js';
import type { RepositoryReader } from './reader.js';
import { SnapshotCheck } from './verify-snapshot.js';
import { StoreCheck } from './verify-store.js';

export type ProblemKind =
  | 'latest' // `latest` missing, not a symlink, or not pointing to a complete snapshot
  | 'snapshot' // a directory named as a snapshot that is not a complete one
  | 'manifest' // a manifest that cannot be read to its end
  | 'missing' // in the manifest, not in the tree
  | 'unlisted' // in the tree, not in the manifest
  | 'metadata' // type, mode, owner, mtime, size or link target other than the manifest says
  | 'link' // a tree file that is not a hard link to an object of its content, or not to its hard-link group's first
  | 'stray' // a name in the object store that is not an object's
  | 'object' // an object that is not a regular file, or a variant whose inode is not what its name says
  | 'rotten' // an object whose content no longer hashes to its name (--read-data)
  | 'unreadable'; // something that could not be listed, examined or read

/** A snapshot and a path in its tree. */
export interface Link {
  snapshot: string;
  path: Buffer;
}

export interface Problem {
  kind: ProblemKind;
  snapshot?: string;
  path?: Buffer;
  /** An object or other name in the store, relative to the repository (`.lb/objects/ab/ab12…`). */
  object?: string;
  detail: string;
  /** For a damaged object: every tree path that links to it. */
  links?: Link[];
}

export interface Checked {
  snapshots: number;
  /** Manifest records read. */
  entries: number;
  /** Objects in the store. */
  objects: number;
  objectsRead: number;
  bytesRead: number;
}

export interface VerifyOptions {
  /** The objects to re-hash; null reads none. */
  readData: ObjectSubset | null;
  random?: () => number;
}

export class Verification {
  readonly checked: Checked = { snapshots: 0, entries: 0, objects: 0, objectsRead: 0, bytesRead: 0 };

  constructor(
    private readonly reader: RepositoryReader,
    private readonly options: VerifyOptions,
  ) {}

  *problems(): Generator<Problem> {
    const root = this.reader.root;
    const parts = this.reader.scope().map((part) => ({ part, snapshots: part.snapshots() }));
    for (const { part, snapshots } of parts) {
      yield* latestProblems(part.snapshotRoot, part.label('latest'), snapshots.length > 0);
      for (const name of snapshotNames(part.snapshotRoot)) {
        // One published since the list was taken is complete: not a problem, only not checked this time.
        if (!snapshots.includes(name) && !hasManifest(part.snapshotRoot, name)) {
          yield { kind: 'snapshot', snapshot: part.label(name), detail: 'named as a snapshot but has no manifest (or one without its header line): not a complete snapshot' };
        }
      }
    }
    const objectsDir = join(root, '.lb', 'objects');
    const subset = this.options.readData;
    const takes = subset === null ? null : (hash: string) => subsetTakes(subset, hash, this.options.random);
    const store = new StoreCheck(objectsDir, takes, this.checked);
    yield* store.problems();
    for (const { part, snapshots } of parts) {
      for (const name of snapshots) {
        // A series' label is its path in the repository: SERIES/NAME.
        const check = new SnapshotCheck(root, part.label(name), objectsDir, store.damaged);
        yield* check.problems();
        this.checked.snapshots++;
        this.checked.entries += check.records;
      }
    }
    for (const damaged of store.damaged.values()) yield damaged;
  }
}

/** `shown`: the link as named to the user, `latest` or SERIES/latest. */
function* latestProblems(root: string, shown: string, anySnapshot: boolean): Generator<Problem> {
  const link = join(root, 'latest');
  let target: string;
  try {
    target = readlinkSync(link);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      if (anySnapshot) yield { kind: 'latest', detail: `${shown} is missing; it should point to the newest snapshot` };
    } else if (code === 'EINVAL') {
      yield { kind: 'latest', detail: `${shown} is a ${lstatSync(link).isDirectory() ? 'directory' : 'file'}, not a symbolic link to a snapshot` };
    } else yield { kind: 'unreadable', detail: `${shown} cannot be read: ${(error as Error).message}` };
    return;
  }
  if (!SNAPSHOT_NAME.test(target)) yield { kind: 'latest', detail: `${shown} points to ${JSON.stringify(target)}, which is not a snapshot name` };
  else if (!hasManifest(root, target)) yield { kind: 'latest', detail: `${shown} points to ${target}, which is not a complete snapshot` };
}
