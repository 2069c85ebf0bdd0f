// The repository side of `lb --showfiles`: entries arrive as for a backup, and
// each file whose content the repository does not hold is named (a `missing`
// event), in canonical order. A file the latest snapshot of the same source
// vouches for is not read at the source; any other is hashed there. No data is
// ever asked for, no lock taken, nothing written (repo/held-content.ts).
import { knownHash } from '../diff/plan.js';
import { ProtocolError } from '../protocol/frames.js';
import type { BackupOptions, Entry, EntryItem, FileFacts, RunResult, SkipKind } from '../protocol/messages.js';
import { wholeEntries } from './previous-runs.js';
import { HeldContent } from '../repo/held-content.js';
import { Skips, firstListed, oneLine } from '../repo/skips.js';
import { noCounts } from '../repo/backup-session.js';
import { EntryOrder } from './entry-order.js';
import { SettledReports } from './settled-reports.js';
import type { ReceiverEvents } from './receiver.js';

interface Pending {
  index: number;
  entry: Entry;
  /** Waiting for the source's hash. */
  hashing: boolean;
  missing: boolean;
}

export class MissingContent {
  private readonly held: HeldContent;
  private readonly order = new EntryOrder();
  private readonly pending: Pending[] = [];
  private base = 0;
  private nextIndex = 0;
  private readonly settledReports: SettledReports;
  private ended = false;
  private wantHash: number[] = [];
  private readonly skips = new Skips();
  private readonly warnings: string[] = [];
  private readonly counts = noCounts();

  constructor(
    repositoryPath: string,
    options: BackupOptions,
    private readonly events: ReceiverEvents,
  ) {
    this.held = new HeldContent(repositoryPath, options);
    this.settledReports = new SettledReports((upTo) => events.settled(upTo));
  }

  addEntries(first: number, items: EntryItem[]): void {
    if (this.ended) throw new ProtocolError('peer sent entries after the end');
    if (first !== this.nextIndex) throw new ProtocolError('peer sent entries out of sequence');
    for (const entry of wholeEntries(items)) {
      this.order.check(entry);
      const item: Pending = { index: this.nextIndex++, entry, hashing: false, missing: false };
      this.pending.push(item);
      if (entry.type === 'dir') this.counts.directories++;
      else if (entry.type === 'symlink') this.counts.symlinks++;
      if (entry.type !== 'file') continue;
      const previous = this.held.quickCheck ? this.held.previousAt(entry.path)?.record() : undefined;
      const hash = knownHash(entry, previous, this.held.quickCheck);
      if (hash === undefined) {
        item.hashing = true;
        this.wantHash.push(item.index);
      } else this.judge(item, hash, entry.size);
    }
    if (this.wantHash.length) {
      this.events.want(this.wantHash, [], []);
      this.wantHash = [];
    }
    this.settle();
  }

  private judge(item: Pending, hash: string, size: number): void {
    item.entry.size = size;
    item.missing = !this.held.holds(hash, size);
    if (item.missing) this.counts.newFiles++;
    else this.counts.linkedFiles++;
  }

  private awaitingHash(index: number): Pending {
    const item = this.pending[index - this.base];
    if (!item?.hashing) throw new ProtocolError(`peer answered for entry ${index}, which asked nothing of it`);
    item.hashing = false;
    return item;
  }

  hashed(index: number, facts: FileFacts): void {
    this.judge(this.awaitingHash(index), facts.hash, facts.size);
    this.settle();
  }

  /** The source could not read it: whether the repository holds it is unknown, so it is not listed. */
  unreadable(index: number, reason: string): void {
    const item = this.awaitingHash(index);
    this.skipped(item.entry.path, 'unreadable', reason);
    this.settle();
  }

  skipped(path: Buffer, kind: SkipKind, reason: string): void {
    this.skips.add(path, kind, reason);
    if (kind !== 'unreadable') return;
    const text = oneLine(`${JSON.stringify(path.toString())}: ${reason}; not listed`);
    this.warnings.push(text);
    this.events.event({ kind: 'warning', text });
  }

  private noData(): never {
    throw new ProtocolError('peer sent file data, which --showfiles never asks for');
  }

  dataBegin(): void {
    this.noData();
  }

  data(): void {
    this.noData();
  }

  zeros(): void {
    this.noData();
  }

  dataEnd(): void {
    this.noData();
  }

  deferred(): void {
    throw new ProtocolError('peer deferred a file, though --showfiles has no time budget');
  }

  /** Names the settled entries' missing files, in order, and tells the source how far entries are settled. */
  private settle(): void {
    let i = 0;
    for (; i < this.pending.length && !this.pending[i]!.hashing; i++) {
      const { entry, missing } = this.pending[i]!;
      if (missing) this.events.event({ kind: 'missing', path: entry.path, size: entry.size });
    }
    this.pending.splice(0, i);
    this.base += i;
    this.settledReports.settled(this.base, this.pending.length === 0);
  }

  end(): void {
    this.ended = true;
  }

  get complete(): boolean {
    return this.ended && this.pending.length === 0;
  }

  finish(): RunResult {
    if (!this.complete) throw new ProtocolError('the source ended before every entry was settled');
    this.held.close();
    return {
      snapshot: null,
      created: false,
      counts: this.counts,
      warnings: firstListed(this.warnings, (w) => w.length),
      incomplete: false,
      deferred: 0,
      skipped: this.skips.reported(),
      skipCounts: this.skips.counts,
    };
  }

  abort(): void {
    this.held.close();
  }
}
