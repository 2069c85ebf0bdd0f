// Builds one snapshot in .lb/tmp/<name>/ and publishes it by renaming it into
// place (invariant 2: a snapshot under its final name is complete). Records
// arrive in canonical order, so a directory's subtree is complete as soon as a
// record outside it arrives: its metadata is set then, deepest first, keeping
// memory proportional to tree depth rather than to the number of entries.
import {
  chmodSync,
  chownSync,
  lchownSync,
  lutimesSync,
  mkdirSync,
  renameSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { isInside } from '../diff/order.js';
import { atPath, removeTree } from './deep-path.js';
import { ManifestWriter, type ManifestRecord } from './manifest.js';
import { fsyncPath, syncFilesystem, toSeconds } from './object-files.js';
import { StreamDigest, streamLineOfManifestLine } from './stream-digest.js';
import { SummaryTally, formatSummary, type SnapshotStatus } from './summary.js';
import type { Repository } from './repository.js';
import type { WritePool } from './write-pool.js';

export class SnapshotBuilder {
  readonly workDir: string;
  private readonly treeDir: Buffer;
  private readonly manifest: ManifestWriter;
  /** Directories whose subtree is still being filled, outermost first. */
  private readonly open: ManifestRecord[] = [];
  /** Directories whose subtree is complete, deepest first, waiting for the writes into them to end. */
  private closing: ManifestRecord[] = [];
  private readonly tally = new SummaryTally();
  /** Recorded in the summary: a source that remembers this stream may refer to its records next time. */
  private readonly stream = new StreamDigest();

  constructor(
    private readonly repo: Repository,
    readonly name: string,
    private readonly setOwner: boolean,
    /** Hard-links a tree path to a stored object (the store knows what to do at the link limit). */
    private readonly linkObject: (objectPath: string, treePath: Buffer) => void,
    /** Where the links are made: a directory's own metadata waits for them. */
    private readonly pool: WritePool,
  ) {
    this.workDir = join(repo.tmpDir, name);
    mkdirSync(this.workDir, { mode: 0o700 });
    this.treeDir = Buffer.from(join(this.workDir, 'tree'));
    this.manifest = new ManifestWriter(join(this.workDir, 'manifest'));
  }

  private treePath(path: Buffer): Buffer {
    return path.length === 0 ? this.treeDir : Buffer.concat([this.treeDir, Buffer.from('/'), path]);
  }

  /**
   * Add one record. `objectPath` is the stored object a file links to. The caller
   * guarantees canonical order and that every parent is a directory added before,
   * so no write here can pass through a symlink.
   */
  add(record: ManifestRecord, objectPath?: string): void {
    this.closeDirectoriesBefore(record.path);
    const path = this.treePath(record.path);
    switch (record.type) {
      case 'dir':
        // Owner-writable until its subtree is complete; the real mode is set on close.
        atPath(path, (p) => mkdirSync(p, { mode: 0o700 }));
        this.open.push(record);
        break;
      case 'file':
        atPath(path, (p) => this.linkObject(objectPath!, p));
        break;
      case 'symlink': {
        const seconds = toSeconds(record.mtimeNs);
        atPath(path, (p) => {
          symlinkSync(record.target!, p);
          if (this.setOwner) lchownSync(p, record.uid, record.gid);
          lutimesSync(p, seconds, seconds);
        });
        break;
      }
    }
    const line = this.manifest.write(record);
    this.stream.add(streamLineOfManifestLine(line.slice(0, -1)));
    this.tally.add(record);
  }

  private closeDirectoriesBefore(path: Buffer): void {
    while (this.open.length > 0 && !isInside(path, this.open[this.open.length - 1]!.path)) {
      this.closing.push(this.open.pop()!);
    }
  }

  /**
   * At a pause: the directories completed since the last one get their mode and mtime once every write
   * so far is done (a link made later would change the mtime; a read-only mode would refuse it).
   */
  settle(): void {
    if (this.closing.length === 0) return;
    const complete = this.closing;
    this.closing = [];
    this.pool.start(() => complete.forEach((dir) => this.closeDirectory(dir)), this.pool.barrier());
  }

  private closeDirectory(dir: ManifestRecord): void {
    const seconds = toSeconds(dir.mtimeNs);
    atPath(this.treePath(dir.path), (path) => {
      if (this.setOwner) chownSync(path, dir.uid, dir.gid);
      chmodSync(path, dir.mode);
      utimesSync(path, seconds, seconds);
    });
  }

  /**
   * Complete the tree, write the log, the source it was taken from and the summary,
   * and move the snapshot to its final name; `latest` follows.
   */
  publish(log: string, source: string, status: SnapshotStatus): void {
    if (!this.pool.idle) throw new Error('snapshot published with writes in flight');
    for (const dir of this.closing.splice(0)) this.closeDirectory(dir);
    while (this.open.length > 0) this.closeDirectory(this.open.pop()!);
    this.manifest.close();
    writeFileSync(join(this.workDir, 'log'), log, { mode: 0o644 });
    writeFileSync(join(this.workDir, 'source'), `${source}\n`, { mode: 0o644 });
    writeFileSync(join(this.workDir, 'summary'), formatSummary({ ...this.tally.result(status), stream: this.stream.hex() }), { mode: 0o644 });
    // Private while in .lb/tmp; readable like any directory once complete, so restores need no special rights.
    chmodSync(this.workDir, 0o755);
    // Everything under the tree on disk before it gets its final name: complete even after a power cut.
    syncFilesystem(this.workDir, () => fsyncPath(this.workDir)); // without syncfs, at least its own entries
    this.repo.upgradeFormat(); // its manifest is format 2
    this.repo.makeSnapshotRoot(); // a series' first snapshot makes its directory
    renameSync(this.workDir, this.repo.snapshotDir(this.name));
    this.repo.pointLatestAt(this.name);
  }

  abandon(): void {
    try {
      this.manifest.close();
    } catch {
      // already closed or never written; the directory goes anyway
    }
    // Once the writes into it are done, or they would land in a tree being removed.
    if (this.pool.idle) removeTree(this.workDir);
    else this.pool.start(() => removeTree(this.workDir), this.pool.barrier());
  }
}
