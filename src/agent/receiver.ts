// The repository side of a backup, as the protocol sees it. Entries arrive in
// canonical order; each is checked (order, safe path, parent is a directory
// already received: so nothing written can pass through a symlink), matched
// with the previous snapshot's record, and its content found in the store once:
// link, copy, or ask the source for it. Requests for hashes and data go back in
// batches, never one round trip per file. Entries are finalized in order into
// the backup session (repo/backup-session.ts), which keeps the manifest sorted
// and bounds memory by the window of unsettled entries.
import { fileAction, knownHash, type StoreFinding } from '../diff/plan.js';
import { ProtocolError } from '../protocol/frames.js';
import { isPreviousRun, type BackupOptions, type Entry, type EntryItem, type FileFacts, type ResumeOffer, type RunEvent, type RunResult, type SkipKind } from '../protocol/messages.js';
import { BackupSession, type Placement } from '../repo/backup-session.js';
import { IncomingFile, TransferMismatch, type KeptPrefix } from '../repo/incoming.js';
import type { ManifestRecord, PreviousRecord } from '../repo/manifest.js';
import type { ObjectMeta } from '../repo/object-files.js';
import { Accounts } from '../scan/accounts.js';
import { EntryOrder } from './entry-order.js';
import { PreviousRuns } from './previous-runs.js';
import { SettledReports } from './settled-reports.js';
import { ReceivedLinkGroups } from './received-links.js';

type SlotState = 'hash' | 'data' | 'wait' | 'ready';

interface Slot {
  index: number;
  entry: Entry;
  meta: ObjectMeta;
  previous: PreviousRecord | undefined;
  state: SlotState;
  hash?: string;
  /** Where the content is, once found or brought. */
  placement?: Placement;
  /** The source could not read it: left out of the snapshot with a warning. */
  dropped?: string;
  /** Left for the next run by the time budget. */
  deferred?: boolean;
  /** The earlier path of its source hard-link group, settled when it is finalized. */
  link?: Buffer;
  /** The facts its `hashed` announced: a data-end without facts means these. */
  announced?: FileFacts;
}

interface Receiving {
  slot: Slot;
  file: IncomingFile;
}

export interface ReceiverEvents {
  want(hash: number[], data: number[], resume: ResumeOffer[]): void;
  settled(upTo: number): void;
  event(event: RunEvent): void;
}

export class Receiver {
  private readonly session: BackupSession;
  private readonly slots: Slot[] = [];
  private slotBase = 0;
  private readonly settledReports: SettledReports;
  private nextIndex = 0;
  private readonly order = new EntryOrder();
  /** Hash -> entries waiting for another entry's transfer of that content. */
  private readonly inflight = new Map<string, Slot[]>();
  private readonly linkGroups = new ReceivedLinkGroups();
  private receiving: Receiving | null = null;
  /** Resume offers made, by entry index. */
  private readonly offers = new Map<number, KeptPrefix>();
  private ended = false;
  private wantHash: number[] = [];
  private wantData: number[] = [];
  private readonly previousRuns: PreviousRuns;

  constructor(
    repositoryPath: string,
    options: BackupOptions,
    private readonly events: ReceiverEvents,
  ) {
    this.session = new BackupSession(repositoryPath, options, (event) => events.event(event), new Accounts());
    this.settledReports = new SettledReports((upTo) => events.settled(upTo));
    this.previousRuns = new PreviousRuns(this.session);
  }

  /** At the source's hello: true when it may send runs of the latest snapshot, the stream its digest names. */
  acceptStream(offered: string | undefined, options: BackupOptions): boolean {
    return this.previousRuns.accept(offered, options);
  }

  get name(): string {
    return this.session.name;
  }

  // ---- entries ----

  addEntries(first: number, entries: EntryItem[]): void {
    if (this.ended) throw new ProtocolError('peer sent entries after the end');
    if (first !== this.nextIndex) throw new ProtocolError('peer sent entries out of sequence');
    for (const item of entries) {
      if (!isPreviousRun(item)) this.addEntry(item);
      else for (const { entry, previous } of this.previousRuns.entries(item)) this.addEntry(entry, previous);
    }
    this.flushRequests();
    this.finalizeReady();
  }

  /** `referenced`: the entry is that record of the previous snapshot (null: of a moved run), its owner already this side's. */
  private addEntry(entry: Entry, referenced?: PreviousRecord | null): void {
    this.order.check(entry);
    this.linkGroups.arrived(this.nextIndex, entry);
    const owner = referenced !== undefined ? { uid: entry.uid, gid: entry.gid } : this.session.ownerOf(entry);
    const meta: ObjectMeta = { mode: entry.mode, ...owner, mtimeNs: entry.mtimeNs };
    const slot: Slot = { index: this.nextIndex++, entry, meta, previous: referenced ?? this.session.previousAt(entry.path), state: 'ready' };
    this.slots.push(slot);
    if (entry.type !== 'file') return;
    const quickCheck = this.session.quickCheck;
    const hash = knownHash(entry, quickCheck ? slot.previous?.record() : undefined, quickCheck);
    if (hash === undefined) {
      slot.state = 'hash';
      this.wantHash.push(slot.index);
    } else this.resolveContent(slot, hash);
  }

  /**
   * With the hash known, the store is asked once: ready if it has the content, else wait for a transfer.
   * It is asked even when the previous snapshot holds this very entry: its object may have been removed
   * or damaged since, and is then taken from the source again.
   */
  private resolveContent(slot: Slot, hash: string): void {
    slot.hash = hash;
    const finding: StoreFinding = this.session.store.find(hash, slot.meta, slot.entry.size);
    const action = fileAction(finding);
    if (finding.kind !== 'absent') {
      slot.placement = { action: action as Placement['action'], object: finding.object, fresh: false };
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

  private slotAt(index: number, expected: SlotState[]): Slot {
    const slot = this.slots[index - this.slotBase];
    if (!slot || !expected.includes(slot.state)) throw new ProtocolError(`peer answered for entry ${index}, which asked nothing of it`);
    return slot;
  }

  private applyFacts(slot: Slot, facts: FileFacts): void {
    slot.entry.size = facts.size;
    slot.entry.mtimeNs = facts.mtimeNs;
    slot.meta.mtimeNs = facts.mtimeNs;
  }

  hashed(index: number, facts: FileFacts): void {
    const slot = this.slotAt(index, ['hash']);
    slot.announced = facts;
    this.applyFacts(slot, facts);
    this.resolveContent(slot, facts.hash);
    this.flushRequests();
    this.finalizeReady();
  }

  /** The source could not read this file: left out of the snapshot with a warning. */
  unreadable(index: number, reason: string): void {
    this.settleWithoutContent(index, false, (slot) => (slot.dropped = reason));
  }

  /** The source's walk left this path out (its path is checked by the decoder). */
  skipped(path: Buffer, kind: SkipKind, reason: string): void {
    this.session.skipped(path, kind, reason);
  }

  /** The source ran out of time for this entry: left for the next run, a partial transfer kept. */
  deferred(index: number): void {
    this.settleWithoutContent(index, true, (slot) => {
      slot.deferred = true;
      this.session.defer();
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

  // ---- file data ----

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
    const file = IncomingFile.begin(this.session.repo, this.session.store, slot.hash!, slot.entry.size, from ? offer! : null);
    this.receiving = { slot, file };
    this.session.counts.bytesResumed += from;
  }

  data(chunk: Buffer): void {
    const r = this.receiving;
    if (!r) throw new ProtocolError('peer sent file data outside a file');
    r.file.write(chunk);
    this.session.counts.bytesReceived += chunk.length;
  }

  /** A run of zeros in the file being received: hashed, not written (a hole). */
  zeros(length: number): void {
    const r = this.receiving;
    if (!r) throw new ProtocolError('peer sent a run of zeros outside a file');
    // Hashing costs this side time the peer does not spend: never more than the file it announced.
    if (r.file.received + length > r.slot.entry.size) throw new ProtocolError(`peer sent a run of zeros past the end of entry ${r.slot.index}`);
    r.file.zeros(length);
  }

  dataEnd(index: number, sentFacts: FileFacts | undefined): void {
    const r = this.receiving;
    if (!r || r.slot.index !== index) throw new ProtocolError('peer ended a file it did not begin');
    const facts = sentFacts ?? r.slot.announced;
    if (!facts) throw new ProtocolError(`peer ended entry ${index} without its facts, which it never announced`);
    this.receiving = null;
    const slot = r.slot;
    let object: string;
    try {
      // The store had no such content when asked, and only this transfer could have made it since.
      object = r.file.end(facts.hash, facts.size, { ...slot.meta, mtimeNs: facts.mtimeNs }, facts.hash === slot.hash);
    } catch (error) {
      if (error instanceof TransferMismatch) throw new ProtocolError(`data for entry ${index} does not match its hash: corrupted in transit`);
      throw error;
    }
    const expected = slot.hash!;
    this.applyFacts(slot, facts);
    slot.hash = facts.hash;
    slot.placement = { action: 'link', object, fresh: true };
    slot.state = 'ready';
    if (facts.hash === expected) {
      // Waiting entries find the new object (or, with other metadata, copy it).
      const waiting = this.inflight.get(expected) ?? [];
      this.inflight.delete(expected);
      for (const other of waiting) this.resolveContent(other, expected);
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
    r.file.close(keepPartial);
  }

  private flushRequests(): void {
    if (this.wantHash.length || this.wantData.length) {
      const resume: ResumeOffer[] = [];
      for (const index of this.wantData) {
        const slot = this.slots[index - this.slotBase]!;
        const kept = IncomingFile.keptPrefix(this.session.repo, slot.hash!, slot.entry.size);
        if (!kept) continue;
        this.offers.set(index, kept);
        resume.push({ index, from: kept.from, prefix: kept.hasher.copy().digest('hex') });
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
    this.settledReports.settled(this.slotBase, this.slots.length === 0);
  }

  private finalize(slot: Slot): void {
    if (slot.dropped !== undefined) return this.session.drop(slot.entry.path, slot.dropped, slot.previous !== undefined);
    if (slot.deferred) return;
    if (slot.entry.link !== undefined) slot.link = this.linkGroups.linkFor(slot.index, slot.entry, this.recordOf(slot));
    this.session.add(this.recordOf(slot), slot.previous, slot.placement);
  }

  // ---- the end ----

  /** The source has sent every entry; `incomplete` when its time budget stopped the walk. */
  end(incomplete: boolean): void {
    this.ended = true;
    if (incomplete) this.session.giveUpSnapshot();
  }

  /** True once the source said it has no more entries and every entry is settled. */
  get complete(): boolean {
    return this.ended && this.slots.length === 0 && this.receiving === null;
  }

  /** Publish the snapshot (unless identical to the previous one) and release the repository. */
  finish(): RunResult {
    if (!this.complete) throw new ProtocolError('the source ended before every entry was settled');
    this.previousRuns.close();
    return this.session.finish();
  }

  /** Give up: nothing published, objects already synced stay in the store for the next run. */
  async abort(): Promise<void> {
    try {
      this.previousRuns.close();
      if (this.receiving) this.closeIncoming(true);
    } finally {
      await this.session.abort();
    }
  }

  /** Between two pieces of input: let the repository side's writes catch up where they must. */
  pause(): Promise<void> {
    return this.session.pause();
  }

  /** Every write done, before finish(). */
  settle(): Promise<void> {
    return this.session.settle();
  }
}
