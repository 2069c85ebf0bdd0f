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
import { ManifestReader } from './manifest.js';
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

export class BackupVerification {
  readonly checked: BackupChecked = { entries: 0, filesReread: 0, objectsReread: 0, bytesRead: 0 };

  constructor(
    private readonly reader: RepositoryReader,
    private readonly snapshot: string,
    private readonly source: SourceSide,
    private readonly options: BackupVerifyOptions,
  ) {}

  async *differences(): AsyncGenerator<BackupDifference> {
    const root = this.reader.root;
    for (const problem of new SnapshotCheck(root, this.snapshot, join(root, '.lb', 'objects'), new Map()).problems()) yield { side: 'repository', problem };
    if (this.options.publishedNow) {
      try {
        for (const problem of this.storedObjects()) yield { side: 'repository', problem };
      } catch (error) {
        // The structure check named the fault already; the objects after it are not re-hashed.
        yield { side: 'repository', problem: { kind: 'manifest', snapshot: this.snapshot, detail: `objects not re-hashed past a manifest fault: ${(error as Error).message}` } };
      }
    }
    yield* this.sourceDifferences();
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

  private async *sourceDifferences(): AsyncGenerator<BackupDifference> {
    const manifest = new ManifestReader(join(this.reader.snapshotDir(this.snapshot), 'manifest'));
    const comparison = new SourceComparison(manifest, this.source, this.options.wasRead, this.options.excused);
    try {
      for await (const { path, detail } of comparison.differences()) yield { side: 'source', path, detail };
    } catch (error) {
      // A manifest that does not read to its end (the structure check named it), a source that cannot be walked any more.
      yield { side: 'source', path: Buffer.alloc(0), detail: `the comparison with the source stopped: ${(error as Error).message}` };
    } finally {
      manifest.close();
      const c = comparison.checked;
      this.checked.entries = c.entries;
      this.checked.filesReread = c.filesReread;
      this.checked.bytesRead += c.bytesReread;
    }
  }
}
