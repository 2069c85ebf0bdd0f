// The repository side of a backup. Entries arrive in canonical order; each is
// checked (order, safe path, parent is a directory already received: so nothing
// written can pass through a symlink), merged with the previous snapshot's
// manifest, and resolved to link / copy / transfer. Requests for hashes and data
// go back in batches, never one round trip per file. Entries are finalized in
// order, which keeps the manifest sorted and bounds memory by the window of
// unsettled entries. While the tree is identical to the previous snapshot
// nothing is built; at the first difference the identical prefix is replayed
// from the previous manifest, so an unchanged run writes nothing at all.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { arrival, fileAction, knownHash } from '../diff/decide.js';
import { comparePaths, isInside, parentPath } from '../diff/order.js';
import { ProtocolError } from '../protocol/frames.js';
import type { BackupOptions, Entry, FileFacts, ResumeOffer, RunCounts, RunResult, SkipKind } from '../protocol/messages.js';
import { ManifestReader, recordBody, type How, type ManifestRecord, type PreviousRecord } from '../repo/manifest.js';
import { ObjectGuard, filesystemNow } from '../repo/object-guard.js';
import { ObjectStore, type ObjectMeta } from '../repo/objects.js';
import { Repository } from '../repo/repository.js';
import { writeFully } from '../repo/write-fully.js';
import { RepositoryLock } from '../repo/lock.js';
import { SnapshotBuilder } from '../repo/snapshot.js';
import { Accounts } from '../scan/accounts.js';
import { ReceivedLinkGroups } from './received-links.js';
import { Skips, firstListed, oneLine } from './skips.js';

type SlotState = 'hash' | 'data' | 'wait' | 'ready';

/** Tell the source how far entries are settled after this many more (well below its window). */
const SETTLED_EVERY = 1024;
/** …or after this long, so progress on a terminal moves smoothly. */
const SETTLED_MS = 250;
/** Transfers this large are written where an interrupted run leaves them, to resume from. */
const RESUMABLE = 8 * 1024 * 1024;
/** Resume offers are whole MiB: the tail of an interrupted write is the least trustworthy part. */
const RESUME_ALIGN = 1024 * 1024;

interface Slot {
  index: number;
  entry: Entry;
  meta: ObjectMeta;
  previous: PreviousRecord | undefined;
  state: SlotState;
  hash?: string;
  /** This entry's own transfer brought the content (the object itself may since have been published). */
  fresh?: boolean;
  /** The source could not read it: left out of the snapshot with a warning. */
  dropped?: string;
  /** Left for the next run by the time budget. */
  deferred?: boolean;
  /** recordBody() of this entry once its hash is final; cached for the comparisons. */
  body?: string;
  /** The earlier path of its source hard-link group, settled when it is finalized. */
  link?: Buffer;
}

interface Incoming {
  slot: Slot;
  fd: number;
  path: string;
  hasher: Hash;
  size: number;
  /** Written to .lb/partial/, where it outlives an interrupted run. */
  partial: boolean;
}

export interface ReceiverEvents {
  want(hash: number[], data: number[], resume: ResumeOffer[]): void;
  settled(upTo: number): void;
  log(line: string): void;
}

export class Receiver {
  private readonly repo: Repository;
  private readonly lock: RepositoryLock;
  private readonly store: ObjectStore;
  private readonly guard: ObjectGuard;
  /** The previous snapshot was taken from this very source, so its records may vouch for unchanged files. */
  private readonly quickCheck: boolean;
  private readonly accounts = new Accounts();
  private readonly asRoot = process.getuid?.() === 0;
  readonly name: string;

  private builder: SnapshotBuilder | null = null;
  private readonly previousName: string | null;
  private previous: ManifestReader | null = null;
  private previousHead: PreviousRecord | null = null;
  /** Still identical to the previous snapshot, and how many records so far. */
  private identical: boolean;
  private identicalCount = 0;

  private readonly slots: Slot[] = [];
  private slotBase = 0;
  private reportedSettled = 0;
  private reportedAt = 0;
  private nextIndex = 0;
  private lastPath: Buffer | null = null;
  /** Directories received whose subtrees may still receive entries. */
  private readonly dirStack: Buffer[] = [];
  /** Hash -> entries waiting for another entry's transfer of that content. */
  private readonly inflight = new Map<string, Slot[]>();
  private readonly linkGroups = new ReceivedLinkGroups();
  private receiving: Incoming | null = null;
  /** Resume offers made, by entry index: where the stored prefix ends and its running hash. */
  private readonly offers = new Map<number, { from: number; hasher: Hash }>();
  private ended = false;
  /** The time budget ran out: no snapshot this run, only objects. */
  private incomplete = false;
  private deferredCount = 0;

  private wantHash: number[] = [];
  private wantData: number[] = [];
  readonly counts: RunCounts = {
    newFiles: 0,
    copiedFiles: 0,
    linkedFiles: 0,
    directories: 0,
    symlinks: 0,
    bytesReceived: 0,
    bytesStored: 0,
    bytesResumed: 0,
  };
  readonly warnings: string[] = [];
  /** Said to the user and written to the log, but the snapshot is complete: repairs of a damaged repository. */
  private readonly notices: string[] = [];
  readonly skips = new Skips();

  constructor(
    repositoryPath: string,
    private readonly options: BackupOptions,
    private readonly events: ReceiverEvents,
  ) {
    this.repo = Repository.open(repositoryPath, 'write');
    this.lock = RepositoryLock.acquire(this.repo.lbDir);
    try {
      this.repo.clearLeftovers();
      mkdirSync(this.repo.partialDir, { recursive: true, mode: 0o700 });
      this.name = this.repo.nextSnapshotName(options.snapshotName);
      const incomingDir = join(this.repo.tmpDir, `incoming-${process.pid}`);
      mkdirSync(incomingDir, { mode: 0o700 });
      this.guard = new ObjectGuard(this.repo.lbDir, filesystemNow(incomingDir), (damage) =>
        this.notice(`${damage.reason}: moved to ${damage.quarantined}; this run stores that content anew`),
      );
      this.store = new ObjectStore(this.repo.objectsDir, incomingDir, this.asRoot, this.guard);
      this.previousName = this.repo.baseSnapshot((line) => this.notice(line));
      if (this.previousName) {
        this.previous = new ManifestReader(join(this.repo.snapshotDir(this.previousName), 'manifest'));
        this.previousHead = this.previous.nextPrevious();
      }
      this.quickCheck = options.quickCheck && this.previousName !== null && this.sourceOf(this.previousName) === options.sourceLabel;
      this.identical = this.previous !== null && !options.always;
      if (!this.identical) this.builder = this.newBuilder();
    } catch (error) {
      this.lock.release();
      throw error;
    }
  }

  /** The source a snapshot was taken from, as recorded in it; null for snapshots that predate the record. */
  private sourceOf(name: string): string | null {
    try {
      return readFileSync(join(this.repo.snapshotDir(name), 'source'), 'utf8').replace(/\n$/, '');
    } catch {
      return null;
    }
  }

  private newBuilder(): SnapshotBuilder {
    return new SnapshotBuilder(this.repo, this.name, this.asRoot, (object, tree) => this.store.linkInto(object, tree));
  }

  // ---- entries ----

  addEntries(first: number, entries: Entry[]): void {
    if (this.ended) throw new ProtocolError('peer sent entries after the end');
    if (first !== this.nextIndex) throw new ProtocolError('peer sent entries out of sequence');
    for (const entry of entries) this.addEntry(entry);
    this.flushRequests();
    this.finalizeReady();
  }

  private checkPlacement(entry: Entry): void {
    const path = entry.path;
    if (this.lastPath === null) {
      if (path.length !== 0 || entry.type !== 'dir') throw new ProtocolError('the first entry must be the source root directory');
    } else {
      if (comparePaths(this.lastPath, path) >= 0) throw new ProtocolError('peer sent entries out of order or twice');
      while (this.dirStack.length > 0 && !isInside(path, this.dirStack[this.dirStack.length - 1]!)) this.dirStack.pop();
      const parent = parentPath(path)!;
      const top = this.dirStack[this.dirStack.length - 1];
      if (top === undefined || !top.equals(parent)) {
        throw new ProtocolError(`peer sent ${JSON.stringify(path.toString())} whose parent is not a directory it sent`);
      }
    }
    if (entry.type === 'dir') this.dirStack.push(path);
    this.lastPath = path;
  }

  /** The previous snapshot's record at this path, if any; records passed over mean the tree changed. */
  private matchPrevious(path: Buffer): PreviousRecord | undefined {
    while (this.previousHead && comparePaths(this.previousHead.path, path) < 0) {
      this.identical && this.diverge();
      this.previousHead = this.previous!.nextPrevious();
    }
    if (this.previousHead && comparePaths(this.previousHead.path, path) === 0) {
      const found = this.previousHead;
      this.previousHead = this.previous!.nextPrevious();
      return found;
    }
    return undefined;
  }

  private addEntry(entry: Entry): void {
    this.checkPlacement(entry);
    this.linkGroups.arrived(this.nextIndex, entry);
    const meta: ObjectMeta = {
      mode: entry.mode,
      uid: this.asRoot ? (this.options.numericIds ? entry.uid : this.accounts.uidFor(entry.uid, entry.user)) : process.getuid!(),
      gid: this.asRoot ? (this.options.numericIds ? entry.gid : this.accounts.gidFor(entry.gid, entry.group)) : process.getgid!(),
      mtimeNs: entry.mtimeNs,
    };
    const slot: Slot = { index: this.nextIndex++, entry, meta, previous: this.matchPrevious(entry.path), state: 'ready' };
    this.slots.push(slot);
    if (entry.type !== 'file') return;
    const hash = knownHash(entry, this.quickCheck ? slot.previous?.record() : undefined, this.quickCheck);
    if (hash === undefined) {
      slot.state = 'hash';
      this.wantHash.push(slot.index);
    } else this.resolveContent(slot, hash);
  }

  /**
   * With the hash known: ready if the repository has the content, else wait for a transfer.
   * The store is asked even when the previous snapshot holds this very entry: its object
   * may have been removed or damaged since, and is then taken from the source again.
   */
  private resolveContent(slot: Slot, hash: string): void {
    slot.hash = hash;
    if (fileAction(this.store.state(hash, slot.meta, slot.entry.size)) !== 'transfer') {
      slot.state = 'ready';
      return;
    }
    const waiting = this.inflight.get(hash);
    if (waiting) {
      slot.state = 'wait';
      waiting.push(slot);
    } else {
      this.inflight.set(hash, []);
      slot.state = 'data';
      this.wantData.push(slot.index);
    }
  }

  private recordOf(slot: Slot): ManifestRecord {
    const e = slot.entry;
    return {
      how: 'made',
      type: e.type,
      path: e.path,
      hash: slot.hash ?? '',
      size: e.type === 'file' ? e.size : 0,
      mtimeNs: e.mtimeNs,
      mode: e.mode,
      uid: slot.meta.uid,
      gid: slot.meta.gid,
      target: e.target ?? null,
      ...(slot.link ? { link: slot.link } : {}),
    };
  }

  private bodyOf(slot: Slot): string {
    return (slot.body ??= recordBody(this.recordOf(slot)));
  }

  private slotAt(index: number, expected: SlotState[]): Slot {
    const slot = this.slots[index - this.slotBase];
    if (!slot || !expected.includes(slot.state)) throw new ProtocolError(`peer answered for entry ${index}, which asked nothing of it`);
    return slot;
  }

  private applyFacts(slot: Slot, facts: FileFacts): void {
    slot.body = undefined;
    slot.entry.size = facts.size;
    slot.entry.mtimeNs = facts.mtimeNs;
    slot.meta.mtimeNs = facts.mtimeNs;
  }

  hashed(index: number, facts: FileFacts): void {
    const slot = this.slotAt(index, ['hash']);
    this.applyFacts(slot, facts);
    this.resolveContent(slot, facts.hash);
    this.flushRequests();
    this.finalizeReady();
  }

  /** The source could not read this file: left out of the snapshot with a warning. */
  unreadable(index: number, reason: string): void {
    this.settleWithoutContent(index, false, (slot) => (slot.dropped = reason));
  }

  /** The source's walk left this path out (its path is checked by the decoder): unreadable ones are warned about, special files only counted. */
  skipped(path: Buffer, kind: SkipKind, reason: string): void {
    this.skips.add(path, kind, reason);
    if (kind === 'unreadable') this.warn(`${JSON.stringify(path.toString())}: ${reason}`);
    else if (this.options.verbose) this.events.log(`${'skip'.padEnd(6)} ${path.toString()}: ${reason}`);
  }

  /** The source ran out of time for this entry: left for the next run, a partial transfer kept. */
  deferred(index: number): void {
    this.settleWithoutContent(index, true, (slot) => {
      slot.deferred = true;
      this.giveUpSnapshot();
    });
  }

  private settleWithoutContent(index: number, keepPartial: boolean, mark: (slot: Slot) => void): void {
    const slot = this.slotAt(index, ['hash', 'data']);
    if (this.receiving?.slot === slot) this.closeIncoming(keepPartial);
    this.offers.delete(index);
    mark(slot);
    if (slot.state === 'data') this.releaseDependents(slot.hash!);
    slot.state = 'ready';
    this.flushRequests();
    this.finalizeReady();
  }

  private giveUpSnapshot(): void {
    if (this.incomplete) return;
    this.incomplete = true;
    this.identical = false;
    this.builder?.abandon();
    this.builder = null;
  }

  // ---- file data ----

  /**
   * A large file with a partial transfer from an interrupted run is offered for
   * resuming: the source checks the prefix's SHA-256 against its own file and
   * sends only the rest. The running hash carries on from the prefix, so the
   * object is still verified whole.
   */
  private resumeOffer(index: number): ResumeOffer | null {
    const slot = this.slots[index - this.slotBase]!;
    if (slot.entry.size < RESUMABLE) return null;
    let fd: number;
    try {
      fd = openSync(this.repo.partialPath(slot.hash!), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return null; // none kept
    }
    try {
      const buffer = Buffer.allocUnsafe(RESUME_ALIGN);
      const hasher = createHash('sha256');
      let from = 0;
      while (from + RESUME_ALIGN < slot.entry.size && readSync(fd, buffer, 0, RESUME_ALIGN, from) === RESUME_ALIGN) {
        hasher.update(buffer);
        from += RESUME_ALIGN;
      }
      if (from === 0) return null;
      this.offers.set(index, { from, hasher });
      return { index, from, prefix: hasher.copy().digest('hex') };
    } finally {
      closeSync(fd);
    }
  }

  dataBegin(index: number, from: number): void {
    const slot = this.slotAt(index, ['data']);
    // A second begin for the same entry restarts it (the source re-reads a file that changed).
    if (this.receiving) {
      if (this.receiving.slot !== slot) throw new ProtocolError('peer began a file inside another');
      this.closeIncoming(false);
    }
    const offer = this.offers.get(index);
    this.offers.delete(index);
    if (from !== 0 && from !== offer?.from) throw new ProtocolError(`peer resumed entry ${index} from a point never offered`);
    if (slot.entry.size < RESUMABLE) {
      const { path, fd } = this.store.tempFile();
      this.receiving = { slot, fd, path, hasher: createHash('sha256'), size: 0, partial: false };
      return;
    }
    const path = this.repo.partialPath(slot.hash!);
    // Never through a symlink, even inside our own repository.
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    ftruncateSync(fd, from);
    this.receiving = { slot, fd, path, hasher: from ? offer!.hasher : createHash('sha256'), size: from, partial: true };
    this.counts.bytesResumed += from;
  }

  data(chunk: Buffer): void {
    const r = this.receiving;
    if (!r) throw new ProtocolError('peer sent file data outside a file');
    writeFully(r.fd, chunk, r.size);
    r.hasher.update(chunk);
    r.size += chunk.length;
    this.counts.bytesReceived += chunk.length;
  }

  dataEnd(index: number, facts: FileFacts): void {
    const r = this.receiving;
    if (!r || r.slot.index !== index) throw new ProtocolError('peer ended a file it did not begin');
    this.receiving = null;
    closeSync(r.fd);
    const hash = r.hasher.digest('hex');
    if (hash !== facts.hash || r.size !== facts.size) {
      unlinkSync(r.path);
      throw new ProtocolError(`data for entry ${index} does not match its hash: corrupted in transit`);
    }
    const slot = r.slot;
    const expected = slot.hash!;
    this.applyFacts(slot, facts);
    slot.hash = hash;
    slot.body = undefined;
    this.store.adopt(r.partial ? this.store.stage(r.path) : r.path, hash, slot.meta, r.size);
    slot.fresh = true;
    slot.state = 'ready';
    if (hash === expected) {
      for (const waiting of this.inflight.get(expected) ?? []) waiting.state = 'ready';
      this.inflight.delete(expected);
    } else this.releaseDependents(expected);
    this.flushRequests();
    this.finalizeReady();
  }

  /** The transfer of `hash` failed or brought other content: entries waiting on it resolve again. */
  private releaseDependents(hash: string): void {
    const waiting = this.inflight.get(hash) ?? [];
    this.inflight.delete(hash);
    for (const slot of waiting) this.resolveContent(slot, hash);
  }

  /** Stop receiving the current file; a partial transfer is kept when `keepPartial`. */
  private closeIncoming(keepPartial: boolean): void {
    const r = this.receiving!;
    this.receiving = null;
    closeSync(r.fd);
    if (!r.partial) this.store.discardTemp(r.path);
    else if (!keepPartial) unlinkSync(r.path);
  }

  private flushRequests(): void {
    if (this.wantHash.length || this.wantData.length) {
      const resume: ResumeOffer[] = [];
      for (const index of this.wantData) {
        const offer = this.resumeOffer(index);
        if (offer) resume.push(offer);
      }
      this.events.want(this.wantHash, this.wantData, resume);
      this.wantHash = [];
      this.wantData = [];
    }
  }

  // ---- finalizing, in order ----

  private finalizeReady(): void {
    let i = 0;
    while (i < this.slots.length && this.slots[i]!.state === 'ready') this.finalize(this.slots[i++]!);
    if (i > 0) {
      this.slots.splice(0, i);
      this.slotBase += i;
    }
    // The source needs these only to keep its window open; one message per file would cost a write each.
    const unreported = this.slotBase - this.reportedSettled;
    if (unreported > 0 && (unreported >= SETTLED_EVERY || this.slots.length === 0 || Date.now() - this.reportedAt > SETTLED_MS)) {
      this.reportedSettled = this.slotBase;
      this.reportedAt = Date.now();
      this.events.settled(this.slotBase);
    }
  }

  private finalize(slot: Slot): void {
    const e = slot.entry;
    if (slot.dropped !== undefined) {
      this.warn(`${JSON.stringify(e.path.toString())}: ${slot.dropped}; not in this snapshot`);
      this.skips.add(e.path, 'unreadable', slot.dropped);
      // Missing from this snapshot: a change only if the previous one had it.
      if (slot.previous) this.identical && this.diverge();
      return;
    }
    if (slot.deferred) {
      this.deferredCount++;
      return;
    }
    if (this.incomplete) return; // no snapshot this run: nothing to build
    if (e.link !== undefined) slot.link = this.linkGroups.linkFor(slot.index, e, this.recordOf(slot));
    const record = this.recordOf(slot);
    if (this.identical) {
      if (slot.previous && slot.previous.body === this.bodyOf(slot)) {
        this.identicalCount++;
        this.count(record.type, 'linked');
        return;
      }
      this.diverge();
    }
    this.materialize(record, slot.fresh === true);
  }

  /** Build the identical prefix from the previous manifest, then build from here on. */
  private diverge(): void {
    this.identical = false;
    this.builder = this.newBuilder();
    const replay = new ManifestReader(join(this.repo.snapshotDir(this.previousName!), 'manifest'));
    try {
      for (let i = 0; i < this.identicalCount; i++) {
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

  private materialize(record: ManifestRecord, fresh: boolean): void {
    let objectPath: string | undefined;
    let how: How = 'made';
    if (record.type === 'file') {
      const meta: ObjectMeta = record;
      objectPath = this.store.locate(record.hash, meta, record.size) ?? undefined;
      how = fresh ? 'new' : arrival(fileAction('exact'));
      if (!objectPath) {
        const source = this.store.anyWithContent(record.hash, record.size);
        if (!source) throw new Error(`content ${record.hash} vanished from the store`);
        objectPath = this.store.copyFrom(source, record.hash, meta, record.size);
        how = fresh ? 'new' : arrival(fileAction('content'));
      }
    }
    record.how = how;
    this.builder!.add(record, objectPath);
    this.count(record.type, how);
    this.logEntry(how, record);
  }

  private logEntry(how: How, record: ManifestRecord): void {
    if (this.options.verbose) this.events.log(`${how.padEnd(6)} ${record.type === 'dir' ? record.path.toString() + '/' : record.path.toString()}`);
  }

  private count(type: ManifestRecord['type'], how: How): void {
    if (type === 'dir') this.counts.directories++;
    else if (type === 'symlink') this.counts.symlinks++;
    else if (how === 'new') this.counts.newFiles++;
    else if (how === 'copied') this.counts.copiedFiles++;
    else this.counts.linkedFiles++;
  }

  private warn(message: string): void {
    const line = oneLine(message);
    this.warnings.push(line);
    this.events.log(`warning: ${line}`);
  }

  private notice(message: string): void {
    const line = oneLine(message);
    this.notices.push(line);
    this.events.log(`warning: ${line}`);
  }

  // ---- the end ----

  /** The source has sent every entry; `incomplete` when its time budget stopped the walk. */
  end(incomplete: boolean): void {
    this.ended = true;
    if (incomplete) this.giveUpSnapshot();
  }

  /** True once the source said it has no more entries and every entry is settled. */
  get complete(): boolean {
    return this.ended && this.slots.length === 0 && this.receiving === null;
  }

  /** Publish the snapshot (unless identical to the previous one) and release the repository. */
  finish(): RunResult {
    if (!this.complete) throw new ProtocolError('the source ended before every entry was settled');
    try {
      if (this.identical && this.previousHead) this.diverge(); // entries were removed at the end
      this.previous?.close();
      this.store.publish();
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

  /** Give up: nothing published, objects already synced stay in the store for the next run. */
  abort(): void {
    try {
      if (this.receiving) this.closeIncoming(true);
      this.builder?.abandon();
      this.previous?.close();
      this.store.publish();
    } finally {
      this.release();
    }
  }

  private release(): void {
    try {
      this.store.close();
      this.repo.clearLeftovers();
      // Every change to the objects so far (links made by the trees included) was this run's.
      this.guard.markWritten();
    } finally {
      this.lock.release();
    }
  }
}
