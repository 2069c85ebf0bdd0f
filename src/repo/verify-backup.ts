// `lb backup --verify`: once a backup has published its snapshot (or found the
// source unchanged since `latest`), that snapshot is compared with the source.
// Repository side first: the snapshot's structure as `lb verify` checks it
// (verify-snapshot.ts), and the object of every file this run stored (`new` or
// `copied`) re-hashed against its record. Then the source side
// (verify-source.ts): every entry's metadata, and the content of every file the
// run read, read again.
import { join } from 'node:path';
import { atPath } from './deep-path.js';
import { sha256OfFile } from './hash-file.js';
import { ManifestReader, type ManifestRecord } from './manifest.js';
import type { RepositoryReader } from './reader.js';
import { SourceComparison, type SourceSide } from './verify-source.js';
import { SnapshotCheck } from './verify-snapshot.js';
import type { Problem } from './verify.js';

/** A problem in the snapshot itself, as `lb verify` names it, or a difference between the snapshot and the source. */
export type BackupDifference = { side: 'repository'; problem: Problem } | { side: 'source'; path: Buffer; detail: string };

export interface BackupChecked {
  /** Manifest records compared with the source. */
  entries: number;
  filesReread: number;
  objectsReread: number;
  /** From the source and from the objects together. */
  bytesRead: number;
}

export interface BackupVerifyOptions {
  /** The snapshot was published by this run: the objects of its `new` and `copied` files were written by it. */
  publishedNow: boolean;
  /** Called once per manifest record, in order: whether the run read that record's file. */
  wasRead: () => boolean;
  /** Paths the run already reported missing from its snapshot. */
  excused: (path: Buffer) => boolean;
}

/** The repository's part, run where the repository is: the snapshot's structure, then the objects this run stored. */
export class RepositoryCheck {
  readonly checked = { objectsReread: 0, bytesRead: 0 };

  constructor(
    private readonly reader: RepositoryReader,
    private readonly snapshot: string,
    /** The snapshot was published by this run: its `new` and `copied` files' objects are re-hashed. */
    private readonly publishedNow: boolean,
  ) {}

  *problems(): Generator<Problem> {
    const root = this.reader.root;
    yield* new SnapshotCheck(this.reader.snapshotRoot, this.snapshot, join(root, '.lb', 'objects'), new Map()).problems();
    if (!this.publishedNow) return;
    try {
      yield* this.storedObjects();
    } catch (error) {
      // The structure check named the fault already; the objects after it are not re-hashed.
      yield { kind: 'manifest', snapshot: this.snapshot, detail: `objects not re-hashed past a manifest fault: ${(error as Error).message}` };
    }
  }

  /** Each file this run stored is a hard link to its object: reading the tree file reads the object. */
  private *storedObjects(): Generator<Problem> {
    const tree = join(this.reader.snapshotDir(this.snapshot), 'tree');
    for (const record of this.reader.records(this.snapshot)) {
      if (record.type !== 'file' || (record.how !== 'new' && record.how !== 'copied')) continue;
      let found: string;
      try {
        found = atPath(Buffer.concat([Buffer.from(tree + '/'), record.path]), (path) => sha256OfFile(path, (n) => (this.checked.bytesRead += n)));
      } catch (error) {
        // Missing from the tree: the structure check said so already.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        yield { kind: 'unreadable', snapshot: this.snapshot, path: record.path, detail: `its object cannot be read: ${(error as Error).message}` };
        continue;
      }
      this.checked.objectsReread++;
      if (found !== record.hash) {
        yield { kind: 'rotten', snapshot: this.snapshot, path: record.path, detail: `its object, stored by this run, hashes to ${found}, not to its recorded ${record.hash}` };
      }
    }
  }
}

/**
 * The source's part, run where the source is, against the snapshot's records
 * however they arrive; adds its counts to `checked`. A failure to go on (a
 * manifest that does not read to its end, a source that cannot be walked any
 * more) is one difference, unless `fatal` says it must stop the run instead.
 */
export async function* sourceSideDifferences(
  records: AsyncIterator<ManifestRecord>,
  source: SourceSide,
  options: Pick<BackupVerifyOptions, 'wasRead' | 'excused'> & { fatal?: (error: unknown) => boolean },
  checked: BackupChecked,
): AsyncGenerator<BackupDifference> {
  const comparison = new SourceComparison(records, source, options.wasRead, options.excused);
  try {
    for await (const { path, detail } of comparison.differences()) yield { side: 'source', path, detail };
  } catch (error) {
    if (options.fatal?.(error)) throw error;
    yield { side: 'source', path: Buffer.alloc(0), detail: `the comparison with the source stopped: ${(error as Error).message}` };
  } finally {
    const c = comparison.checked;
    checked.entries = c.entries;
    checked.filesReread = c.filesReread;
    checked.bytesRead += c.bytesReread;
  }
}

/** Both parts, with the repository on this machine. */
export class BackupVerification {
  readonly checked: BackupChecked = { entries: 0, filesReread: 0, objectsReread: 0, bytesRead: 0 };

  constructor(
    private readonly reader: RepositoryReader,
    private readonly snapshot: string,
    private readonly source: SourceSide,
    private readonly options: BackupVerifyOptions,
  ) {}

  async *differences(): AsyncGenerator<BackupDifference> {
    const repository = new RepositoryCheck(this.reader, this.snapshot, this.options.publishedNow);
    for (const problem of repository.problems()) yield { side: 'repository', problem };
    this.checked.objectsReread = repository.checked.objectsReread;
    this.checked.bytesRead = repository.checked.bytesRead;
    yield* sourceSideDifferences(this.manifestRecords(), this.source, this.options, this.checked);
  }

  private async *manifestRecords(): AsyncGenerator<ManifestRecord> {
    const manifest = new ManifestReader(join(this.reader.snapshotDir(this.snapshot), 'manifest'));
    try {
      for (let record = manifest.next(); record !== null; record = manifest.next()) yield record;
    } finally {
      manifest.close();
    }
  }
}
