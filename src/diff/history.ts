// The history of one path across snapshots, from its record (or its absence) in
// each snapshot, oldest first: when it appeared, changed, went and came back.
// Pure: the command finds the records and, for a path that went, where its
// content went (movedTo below picks among the candidates).
import type { ManifestRecord } from '../repo/manifest.js';
import { comparePaths } from './order.js';

export type HistoryEventKind = 'appeared' | 'changed' | 'metadata' | 'gone' | 'reappeared';

/** What can differ between two versions of a path; the first four are what it holds, the rest metadata. */
export type ChangedField = 'type' | 'size' | 'content' | 'target' | 'mode' | 'mtime' | 'owner';

const CONTENT_FIELDS: readonly ChangedField[] = ['type', 'size', 'content', 'target'];

export interface SnapshotState {
  snapshot: string;
  /** The path's record in that snapshot, or null when it is not there. */
  record: ManifestRecord | null;
}

export interface HistoryEvent {
  snapshot: string;
  event: HistoryEventKind;
  /** The version from this snapshot on; for `gone`, the version that went. */
  record: ManifestRecord;
  /** For `changed` and `metadata`: the version before, and what differs from it. */
  previous?: ManifestRecord;
  changes?: ChangedField[];
}

export interface PathHistory {
  events: HistoryEvent[];
  /** In how many snapshots the path exists. */
  present: number;
  /** How many different versions it had: one per appearance, change, and reappearance that differs from what went. */
  versions: number;
}

/** The fields in which two versions of a path differ, those about its content first. */
export function changedFields(before: ManifestRecord, after: ManifestRecord): ChangedField[] {
  const changed: ChangedField[] = [];
  if (before.type !== after.type) changed.push('type');
  if (before.type === 'file' && after.type === 'file') {
    if (before.size !== after.size) changed.push('size');
    if (before.hash !== after.hash) changed.push('content');
  }
  if (before.type === 'symlink' && after.type === 'symlink' && !before.target!.equals(after.target!)) changed.push('target');
  if (before.mode !== after.mode) changed.push('mode');
  if (before.mtimeNs !== after.mtimeNs) changed.push('mtime');
  if (before.uid !== after.uid || before.gid !== after.gid) changed.push('owner');
  return changed;
}

/** The events of one path, oldest first; unchanged snapshots make none. */
export function pathHistory(states: Iterable<SnapshotState>): PathHistory {
  const events: HistoryEvent[] = [];
  let present = 0;
  let versions = 0;
  let last: ManifestRecord | null = null; // the latest version seen, present or gone
  let there = false;
  for (const { snapshot, record } of states) {
    if (record === null) {
      if (there) events.push({ snapshot, event: 'gone', record: last! });
      there = false;
      continue;
    }
    present++;
    if (last === null) {
      events.push({ snapshot, event: 'appeared', record });
      versions++;
    } else if (!there) {
      events.push({ snapshot, event: 'reappeared', record });
      if (changedFields(last, record).length > 0) versions++;
    } else {
      const changes = changedFields(last, record);
      if (changes.length > 0) {
        const event = changes.some((field) => CONTENT_FIELDS.includes(field)) ? 'changed' : 'metadata';
        events.push({ snapshot, event, record, previous: last, changes });
        versions++;
      }
    }
    last = record;
    there = true;
  }
  return { events, present, versions };
}

/**
 * Where a file's content went when its path went: among the paths holding the
 * same content in the snapshot where it went that were not in the snapshot
 * before, one with the same name first, then the first in the snapshots' order.
 */
export function movedTo(gonePath: Buffer, candidates: Buffer[], before: (path: Buffer) => boolean): Buffer | null {
  const name = baseName(gonePath);
  const fresh = candidates.filter((path) => !before(path)).sort(comparePaths);
  return fresh.find((path) => baseName(path).equals(name)) ?? fresh[0] ?? null;
}

function baseName(path: Buffer): Buffer {
  return path.subarray(path.lastIndexOf(0x2f) + 1);
}
