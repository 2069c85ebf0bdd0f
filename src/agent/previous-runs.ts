// The repository side of references (protocol 8): a source that remembers the
// stream it sent for this repository's latest snapshot names that stream's digest
// in its hello; when the latest snapshot is exactly that stream (the digest its
// summary recorded, and its manifest read again now, so a manifest damaged since
// lends nothing), the source may send runs of unchanged entries as counts. Each
// entry of a run is this side's own previous record, taken in order as the
// manifest streams: the source can only point at what this repository wrote, in
// canonical order with the entries around it, never at content of its choosing.
import { join } from 'node:path';
import { ProtocolError } from '../protocol/frames.js';
import { isPreviousRun, type BackupOptions, type Entry, type EntryItem, type MovedFrom, type PreviousRun } from '../protocol/messages.js';
import { isSafeRelativePath } from '../protocol/validate.js';
import type { BackupSession } from '../repo/backup-session.js';
import type { ManifestRecord, PreviousRecord } from '../repo/manifest.js';
import { MovedSubtree } from '../repo/moved-subtree.js';
import { manifestStreamDigest, recordedStreamDigest } from '../repo/stream-digest.js';

export interface ReferencedEntry {
  /** As the previous snapshot recorded it: its owner already mapped for this side. */
  entry: Entry;
  /** The record it is, in place; null for a moved run's (its previous record is the one at its new path, if any). */
  previous: PreviousRecord | null;
}

/** The group's first path would have to be in this snapshot, which only whole entries can say. */
function refuseLink(r: ManifestRecord): void {
  if (r.link) throw new ProtocolError(`peer sent a run over ${JSON.stringify(r.path.toString())}, a source hard link`);
}

function entryOf(r: ManifestRecord, path: Buffer): Entry {
  const entry: Entry = { path, type: r.type, size: r.size, mtimeNs: r.mtimeNs, mode: r.mode, uid: r.uid, gid: r.gid };
  if (r.type === 'file') entry.hash = r.hash;
  if (r.target) entry.target = r.target;
  return entry;
}

export class PreviousRuns {
  private accepted = false;
  /** The moved subtree the last moved run read, kept for the next run of it. */
  private moved: MovedSubtree | null = null;

  constructor(private readonly session: BackupSession) {}

  /** At the source's hello: whether it may send runs of the latest snapshot (anything else means full entries). */
  accept(offered: string | undefined, options: BackupOptions): boolean {
    const dir = this.session.previousDir;
    if (offered === undefined || options.purpose !== 'backup' || dir === null) return false;
    if (recordedStreamDigest(dir) !== offered) return false;
    this.accepted = manifestStreamDigest(join(dir, 'manifest')) === offered;
    return this.accepted;
  }

  /** The entries a run stands for, in order. */
  *entries(run: PreviousRun): Generator<ReferencedEntry> {
    if (!this.accepted) throw new ProtocolError('peer sent a run of the previous snapshot, which this side did not accept');
    if (run.moved) return yield* this.movedEntries(run.count, run.moved);
    for (let i = 0; i < run.count; i++) {
      const previous = this.session.takePrevious(i === 0 ? run.over : 0);
      if (!previous) throw new ProtocolError('peer sent a run past the end of the previous snapshot');
      const r = previous.record();
      refuseLink(r);
      yield { entry: entryOf(r, r.path), previous };
    }
  }

  /** A moved run's entries: records of a directory's subtree in the previous snapshot, re-rooted. */
  private *movedEntries(count: number, moved: MovedFrom): Generator<ReferencedEntry> {
    const name = JSON.stringify(moved.from.toString());
    let subtree = this.moved;
    // Runs of one moved directory follow on; another directory, or going back, reads it anew.
    if (!subtree || !subtree.from.equals(moved.from) || !subtree.to.equals(moved.to) || subtree.next > moved.at) {
      this.close();
      subtree = this.moved = MovedSubtree.open(join(this.session.previousDir!, 'manifest'), moved.from, moved.to);
      if (!subtree) throw new ProtocolError(`peer sent a moved run of ${name}, which is no directory of the previous snapshot`);
    }
    for (let i = 0; i < count; i++) {
      const taken = subtree.take(moved.at + i);
      if (!taken) throw new ProtocolError(`peer sent a moved run past the end of ${name}`);
      const r = taken.record.record();
      refuseLink(r);
      if (!isSafeRelativePath(taken.path)) throw new ProtocolError(`peer sent a moved run to an unsafe path ${JSON.stringify(taken.path.toString('latin1'))}`);
      yield { entry: entryOf(r, taken.path), previous: null };
    }
  }

  /** The run is over (or failed). */
  close(): void {
    this.moved?.close();
    this.moved = null;
  }
}

/** For a side that takes no runs (--showfiles): whole entries only. */
export function wholeEntries(items: EntryItem[]): Entry[] {
  if (items.some(isPreviousRun)) throw new ProtocolError('peer sent a run of the previous snapshot, which this side did not accept');
  return items as Entry[];
}
