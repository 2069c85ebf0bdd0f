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
import { isPreviousRun, type BackupOptions, type Entry, type EntryItem, type PreviousRun } from '../protocol/messages.js';
import type { BackupSession } from '../repo/backup-session.js';
import type { PreviousRecord } from '../repo/manifest.js';
import { manifestStreamDigest, recordedStreamDigest } from '../repo/stream-digest.js';

export interface ReferencedEntry {
  /** As the previous snapshot recorded it: its owner already mapped for this side. */
  entry: Entry;
  previous: PreviousRecord;
}

export class PreviousRuns {
  private accepted = false;

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
    for (let i = 0; i < run.count; i++) {
      const previous = this.session.takePrevious(i === 0 ? run.over : 0);
      if (!previous) throw new ProtocolError('peer sent a run past the end of the previous snapshot');
      const r = previous.record();
      // The group's first path would have to be in this snapshot, which only whole entries can say.
      if (r.link) throw new ProtocolError(`peer sent a run over ${JSON.stringify(r.path.toString())}, a source hard link`);
      const entry: Entry = { path: r.path, type: r.type, size: r.size, mtimeNs: r.mtimeNs, mode: r.mode, uid: r.uid, gid: r.gid };
      if (r.type === 'file') entry.hash = r.hash;
      if (r.target) entry.target = r.target;
      yield { entry, previous };
    }
  }
}

/** For a side that takes no runs (--showfiles): whole entries only. */
export function wholeEntries(items: EntryItem[]): Entry[] {
  if (items.some(isPreviousRun)) throw new ProtocolError('peer sent a run of the previous snapshot, which this side did not accept');
  return items as Entry[];
}
