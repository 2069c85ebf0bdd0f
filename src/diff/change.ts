// One difference between two snapshots, and when two entries are the same:
// the vocabulary of `lb diff` (compare.ts merges, moves.ts pairs moves).

import type { EntryRecord, EntryType } from './record.js';

export type { EntryType };

/** What a comparison looks at: a snapshot entry (a ManifestRecord is one). */
export type DiffRecord = EntryRecord;

export type ChangeOp = 'added' | 'removed' | 'changed' | 'metadata' | 'typeChanged' | 'moved';

export interface Change {
  op: ChangeOp;
  /** The path in the older snapshot for removed and moved entries, else in the newer one. */
  path: Buffer;
  /** The entry's type (in the newer snapshot when it changed). */
  type: EntryType;
  /** typeChanged: the type it had. */
  oldType?: EntryType;
  /** moved: where it went. */
  to?: Buffer;
  /** added and removed files: their size in bytes. */
  size?: number;
  /** A moved directory: how many entries beneath it moved along unchanged. */
  entries?: number;
  /** moved: mode, owner or mtime differ too. */
  metadataChanged?: boolean;
}

export interface DiffTotals {
  added: number;
  removed: number;
  changed: number;
  metadata: number;
  typeChanged: number;
  moved: number;
  /** The size of the files added (changed files are not counted). */
  bytesAdded: number;
  /** The size of the files removed. */
  bytesRemoved: number;
}

export interface Comparison {
  /** In canonical order of `path`. */
  changes: Change[];
  totals: DiffTotals;
}

/** Same bytes: a file's content hash, a symlink's target; a directory has no content of its own. */
export function sameContent(a: DiffRecord, b: DiffRecord): boolean {
  if (a.type !== b.type) return false;
  if (a.type === 'file') return a.hash === b.hash && a.size === b.size;
  if (a.type === 'symlink') return a.target !== null && b.target !== null && a.target.equals(b.target);
  return true;
}

/** The same source hard link at one path: both outside any group, or both naming the same first. */
export function sameHardLink(a: DiffRecord, b: DiffRecord): boolean {
  return a.link === undefined ? b.link === undefined : b.link !== undefined && a.link.equals(b.link);
}

export function sameMetadata(a: DiffRecord, b: DiffRecord): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid && a.mtimeNs === b.mtimeNs;
}
