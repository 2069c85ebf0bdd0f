// The write side of a repository: one backup session. It owns the lock, the
// cleanup of what killed runs left, the new snapshot's name, the previous
// snapshot (its manifest read in step with the incoming entries), the object
// store, the tree builder, the log and publish/abort. Whoever feeds it (the
// receiver, speaking the protocol) gives it records in canonical order with
// each file's content already placed in the store; what to build follows the
// planner's rules (diff/plan.ts).
import { mkdirSync } from 'node:fs';
import { snapshotSource } from './layout.js';
import { join } from 'node:path';
import { IdenticalTree, arrival, ownerFor, type AccountLookup, type OwnerRule } from '../diff/plan.js';
import { comparePaths } from '../diff/order.js';
import type { BackupOptions, Entry, RunCounts, RunEvent, RunResult, SkipKind } from '../protocol/messages.js';
import { Skips, firstListed, oneLine } from './skips.js';
import { RepositoryLock } from './lock.js';
import { ManifestReader, recordBody, type How, type ManifestRecord, type PreviousRecord } from './manifest.js';
import { ObjectGuard, filesystemNow } from './object-guard.js';
import { ObjectStore } from './objects.js';
import { StagingFiles } from './staging-files.js';
import { Repository } from './repository.js';
import { SnapshotBuilder } from './snapshot.js';
import { WritePool } from './write-pool.js';

/** Where a file's content is in the store: an object to link, or one of the same content to copy with this file's metadata. */
export interface Placement {
  action: 'link' | 'copy';
  object: string;
  /** This file's own transfer in this run brought the content. */
  fresh: boolean;
}

/** A run's counts before it has done anything. */
export function noCounts(): RunCounts {
  return { newFiles: 0, copiedFiles: 0, linkedFiles: 0, directories: 0, symlinks: 0, bytesReceived: 0, bytesStored: 0, bytesResumed: 0 };
}

export class BackupSession {
  readonly repo: Repository;
  readonly store: ObjectStore;
  /** The writes of new objects and of the tree, in flight together. */
  private readonly pool = new WritePool();
  readonly name: string;
  /** The previous snapshot was taken from this very source, so its records may vouch for unchanged files. */
  readonly quickCheck: boolean;
  readonly counts = noCounts();
  readonly skips = new Skips();
  private readonly lock: RepositoryLock;
  private readonly guard: ObjectGuard;
  private readonly owners: OwnerRule;
  private readonly previousName: string | null;
  private previous: ManifestReader | null = null;
  private previousHead: PreviousRecord | null = null;
  private readonly tree: IdenticalTree;
  private builder: SnapshotBuilder | null = null;
  /** The time budget ran out: no snapshot this run, only objects. */
  private incomplete = false;
  private deferredCount = 0;
  private readonly warnings: string[] = [];
  /** Said to the user and written to the log, but the snapshot is complete: repairs of a damaged repository. */
  private readonly notices: string[] = [];

  constructor(
    repositoryPath: string,
    private readonly options: BackupOptions,
    private readonly say: (event: RunEvent) => void,
    /** This machine's ids for the source's owner names (root only maps them). */
    private readonly accounts: AccountLookup,
  ) {
    this.repo = Repository.open(repositoryPath, 'write', options.series ?? null);
    this.lock = RepositoryLock.acquire(this.repo.lbDir);
    const asRoot = process.getuid?.() === 0;
    this.owners = { asRoot, numericIds: options.numericIds, ownUid: process.getuid!(), ownGid: process.getgid!() };
    try {
      this.repo.clearLeftovers();
      mkdirSync(this.repo.partialDir, { recursive: true, mode: 0o700 });
      this.name = this.repo.nextSnapshotName(options.snapshotName);
      const incomingDir = join(this.repo.tmpDir, `incoming-${process.pid}`);
      mkdirSync(incomingDir, { mode: 0o700 });
      this.guard = new ObjectGuard(this.repo.lbDir, filesystemNow(incomingDir), (damage) =>
        this.notice(`${damage.reason}: moved to ${damage.quarantined}; this run stores that content anew`),
      );
      this.store = new ObjectStore(this.repo.objectsDir, new StagingFiles(incomingDir), asRoot, this.guard, this.pool);
      this.previousName = this.repo.baseSnapshot((line) => this.notice(line));
      if (this.previousName) {
        this.previous = new ManifestReader(join(this.repo.snapshotDir(this.previousName), 'manifest'));
        this.previousHead = this.previous.nextPrevious();
      }
      this.quickCheck = options.quickCheck && this.previousName !== null && snapshotSource(this.repo.snapshotDir(this.previousName)) === options.sourceLabel;
      this.tree = new IdenticalTree(this.previous !== null, options.always, (prefix) => this.replay(prefix));
      // --catalogonly: content goes to the store, no tree is built.
      if (this.catalogOnly) this.tree.abandon();
      else if (!this.tree.unchanged) this.builder = this.newBuilder();
    } catch (error) {
      this.lock.release();
      throw error;
    }
  }

  private newBuilder(): SnapshotBuilder {
    return new SnapshotBuilder(this.repo, this.name, this.owners.asRoot, (object, tree) => this.store.linkInto(object, tree), this.pool);
  }

  /**
   * Between two pieces of input: completed directories get their metadata once written into, a due batch
   * of objects is published, and the input waits while too many writes are in flight.
   */
  async pause(): Promise<void> {
    this.builder?.settle();
    if (this.store.publishDue) await this.store.publish();
    await this.pool.room();
  }

  /** Before finish(): every write done (a failure among them stops the run here). */
  async settle(): Promise<void> {
    await this.pool.drain();
  }

  /** The owner an entry gets in the snapshot. */
  ownerOf(entry: Entry): { uid: number; gid: number } {
    return ownerFor(entry, this.owners, this.accounts);
  }

  /** The previous snapshot's record at `path` (paths asked in canonical order); records passed over mean the tree changed. */
  previousAt(path: Buffer): PreviousRecord | undefined {
    while (this.previousHead && comparePaths(this.previousHead.path, path) < 0) {
      this.tree.differ();
      this.previousHead = this.previous!.nextPrevious();
    }
    if (this.previousHead && comparePaths(this.previousHead.path, path) === 0) {
      const found = this.previousHead;
      this.previousHead = this.previous!.nextPrevious();
      return found;
    }
    return undefined;
  }

  /** The snapshot this run compares against (the latest), or null. */
  get previousDir(): string | null {
    return this.previousName === null ? null : this.repo.snapshotDir(this.previousName);
  }

  /**
   * A run of the previous snapshot (a source's reference): pass over `over` records, which this snapshot
   * will not hold, then take the next one. Undefined past the previous manifest's end.
   */
  takePrevious(over: number): PreviousRecord | undefined {
    for (let i = 0; i < over && this.previousHead; i++) {
      this.tree.differ();
      this.previousHead = this.previous!.nextPrevious();
    }
    const taken = this.previousHead ?? undefined;
    if (taken) this.previousHead = this.previous!.nextPrevious();
    return taken;
  }

  private get catalogOnly(): boolean {
    return this.options.purpose === 'catalogonly';
  }

  /** The next record of the snapshot, in canonical order; a file comes with where its content is. */
  add(record: ManifestRecord, previous: PreviousRecord | undefined, placement?: Placement): void {
    if (this.incomplete) return; // no snapshot this run: nothing to build
    // Content other metadata would copy is held already: no copy is made without a tree to hold it.
    if (this.catalogOnly) {
      const how = record.type !== 'file' ? 'made' : placement?.fresh ? 'new' : 'linked';
      this.count(record.type, how);
      return this.logEntry(how, record);
    }
    if (this.tree.same(previous?.body, () => recordBody(record))) {
      this.count(record.type, 'linked');
      return;
    }
    let objectPath: string | undefined;
    let how: How = 'made';
    if (record.type === 'file') {
      if (!placement) throw new Error(`no content placed for ${record.path.toString()}`);
      let object = placement.object;
      if (placement.action === 'copy') {
        // This run may have made that copy for an earlier file since the content was found.
        const made = this.store.locate(record.hash, record, record.size);
        objectPath = made ?? this.store.pathOf(this.store.copyFrom(object, record.hash, record, record.size));
      } else objectPath = this.store.pathOf(object);
      how = arrival(placement.action, placement.fresh);
    }
    record.how = how;
    this.builder!.add(record, objectPath);
    this.count(record.type, how);
    this.logEntry(how, record);
  }

  /** An entry the source could not read: left out of the snapshot with a warning. */
  drop(path: Buffer, reason: string, hadPrevious: boolean): void {
    this.warn(`${JSON.stringify(path.toString())}: ${reason}; not in this snapshot`);
    this.skips.add(path, 'unreadable', reason);
    // Missing from this snapshot: a change only if the previous one had it.
    if (hadPrevious) this.tree.differ();
  }

  /** A path the source's walk left out: unreadable ones are warned about, special files only counted. */
  skipped(path: Buffer, kind: SkipKind, reason: string): void {
    this.skips.add(path, kind, reason);
    if (kind === 'unreadable') this.warn(`${JSON.stringify(path.toString())}: ${reason}`);
    else if (this.options.verbose) this.say({ kind: 'skip', path, reason: oneLine(reason) });
  }

  /** A file left for the next run by the time budget: there is no snapshot this run. */
  defer(): void {
    this.deferredCount++;
    this.giveUpSnapshot();
  }

  giveUpSnapshot(): void {
    if (this.incomplete) return;
    this.incomplete = true;
    this.tree.abandon();
    this.builder?.abandon();
    this.builder = null;
  }

  /** Build the identical prefix from the previous manifest, then build from here on. */
  private replay(prefix: number): void {
    this.builder = this.newBuilder();
    const replay = new ManifestReader(join(this.repo.snapshotDir(this.previousName!), 'manifest'));
    try {
      for (let i = 0; i < prefix; i++) {
        const record = replay.next()!;
        const objectPath = record.type === 'file' ? this.store.locate(record.hash, record, record.size) : undefined;
        if (record.type === 'file' && !objectPath) throw new Error(`object for ${record.path.toString()} is missing from the store`);
        const how = record.type === 'file' ? 'linked' : 'made';
        this.builder.add({ ...record, how }, objectPath ?? undefined);
        this.logEntry(how, record); // -v lists every entry, those before the first difference too
      }
    } finally {
      replay.close();
    }
  }

  private logEntry(how: How, record: ManifestRecord): void {
    if (this.options.verbose) this.say({ kind: 'entry', how, type: record.type, path: record.path });
  }

  private count(type: ManifestRecord['type'], how: How): void {
    if (type === 'dir') this.counts.directories++;
    else if (type === 'symlink') this.counts.symlinks++;
    else if (how === 'new') this.counts.newFiles++;
    else if (how === 'copied') this.counts.copiedFiles++;
    else this.counts.linkedFiles++;
  }

  warn(message: string): void {
    const text = oneLine(message);
    this.warnings.push(text);
    this.say({ kind: 'warning', text });
  }

  private notice(message: string): void {
    const text = oneLine(message);
    this.notices.push(text);
    this.say({ kind: 'warning', text });
  }

  /** Publish the snapshot (unless identical to the previous one) and release the repository. */
  finish(): RunResult {
    try {
      if (this.previousHead) this.tree.differ(); // entries were removed at the end
      this.previous?.close();
      this.store.publishNow();
      this.counts.bytesStored = this.store.bytesStored;
      const outcome = {
        counts: this.counts,
        // All of them are in the log and were said as they came; the result carries what fits its frame.
        warnings: firstListed(this.warnings, (w) => w.length),
        incomplete: this.incomplete,
        deferred: this.deferredCount,
        skipped: this.skips.reported(),
        skipCounts: this.skips.counts,
      };
      if (this.incomplete) return { snapshot: null, created: false, ...outcome };
      if (this.catalogOnly) {
        this.repo.clearPartials();
        return { snapshot: null, created: false, ...outcome };
      }
      let created = false;
      if (this.builder) {
        this.builder.publish(this.logText(), this.options.sourceLabel, this.skips.counts.unreadable > 0 ? 'partial' : 'ok');
        created = true;
      }
      this.repo.clearPartials();
      return { snapshot: created ? this.name : null, created, ...outcome };
    } finally {
      this.release();
    }
  }

  private logText(): string {
    const c = this.counts;
    return [
      `lb snapshot ${this.name} of ${this.options.sourceLabel}`,
      `previous: ${this.previousName ?? 'none'}`,
      `files: ${c.newFiles} new, ${c.copiedFiles} copied, ${c.linkedFiles} linked`,
      `directories: ${c.directories}, symlinks: ${c.symlinks}`,
      `bytes received: ${c.bytesReceived}, bytes stored: ${this.store.bytesStored}`,
      ...this.notices.map((n) => `repaired: ${n}`),
      ...this.skips.logLines(),
      ...this.warnings.map((w) => `warning: ${w}`),
      '',
    ].join('\n');
  }

  /**
   * Give up: nothing published, objects already synced stay in the store for the next run. The writes in
   * flight end first; an object whose writes failed stays out.
   */
  async abort(): Promise<void> {
    try {
      await this.pool.quiesce();
      this.builder?.abandon();
      this.previous?.close();
      this.store.publishNow();
    } finally {
      this.release();
    }
  }

  private release(): void {
    try {
      this.store.staging.close();
      this.repo.clearLeftovers();
      // Every change to the objects so far (links made by the trees included) was this run's.
      this.guard.markWritten();
    } finally {
      this.lock.release();
    }
  }
}
