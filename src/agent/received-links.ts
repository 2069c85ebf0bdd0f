// The repository side's view of source hard-link groups. An entry marked 'first'
// opens a group; a later entry naming a group's first joins it, and its manifest
// record names the path of the group's first member kept in the snapshot. Nothing
// from the peer is trusted: a member must name an earlier entry that opened a group
// (the decoder already refused itself and later entries), and is linked only when its
// content and metadata are those of that first member (a file rewritten between two
// reads is kept as a file of its own). When the first could not be read, the next
// member kept takes its place. One small record per group of this run is held.
import { ProtocolError } from '../protocol/frames.js';
import type { Entry } from '../protocol/messages.js';
import type { ManifestRecord } from '../repo/manifest.js';

interface Group {
  /** The group's first member in the snapshot, once finalized: its path and what it must share with the others. */
  first: { path: Buffer; identity: string } | null;
}

function identity(r: ManifestRecord): string {
  return [r.hash, r.size, r.mtimeNs, r.mode, r.uid, r.gid].join(' ');
}

export class ReceivedLinkGroups {
  private readonly groups = new Map<number, Group>();

  /** On arrival of entry `index`, in order. */
  arrived(index: number, entry: Entry): void {
    if (entry.link === 'first') this.groups.set(index, { first: null });
    else if (entry.link !== undefined && !this.groups.has(entry.link)) {
      throw new ProtocolError(`peer linked entry ${index} to entry ${entry.link}, which begins no hard-link group`);
    }
  }

  /** When file entry `index` goes into the snapshot, in order: the earlier path its record names, if any. */
  linkFor(index: number, entry: Entry, record: ManifestRecord): Buffer | undefined {
    if (entry.link === undefined) return undefined;
    const group = this.groups.get(entry.link === 'first' ? index : entry.link)!;
    if (group.first === null) {
      group.first = { path: record.path, identity: identity(record) };
      return undefined;
    }
    return group.first.identity === identity(record) ? group.first.path : undefined;
  }
}
