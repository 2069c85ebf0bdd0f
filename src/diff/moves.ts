// Moves among the entries that only one snapshot has. A manifest names every
// file's content, so a path gone from the older snapshot and a path new in the
// newer one with the same content are one move, not a deletion and an addition.
// First whole directories: a removed directory whose every entry re-appears,
// unchanged and at the same relative path, under one added directory (and
// nothing else there) is one move. Then single files and symlinks, paired by
// content: a same-named partner first (a renamed directory whose contents
// changed keeps its files paired to their own names), then in canonical order,
// so duplicates pair the same way on every run; those left over are additions
// and removals.
import { sameContent, sameMetadata, type Change, type DiffRecord } from './change.js';
import { comparePaths, isInside } from './order.js';

/** Both lists in canonical order. Returns the moves, additions and removals among them. */
export function foldMoves(removed: DiffRecord[], added: DiffRecord[]): Change[] {
  const pairing = new Pairing(removed, added);
  pairing.moveDirectories();
  pairing.moveByContent(true);
  pairing.moveByContent(false);
  return pairing.result();
}

/** What identifies an entry's content across paths: a file's hash, a symlink's target; none for a directory. */
function contentKey(record: DiffRecord): string | null {
  if (record.type === 'file') return `f${record.hash}:${record.size}`;
  if (record.type === 'symlink') return `l${record.target?.toString('hex') ?? ''}`;
  return null;
}

function baseName(path: Buffer): Buffer {
  return path.subarray(path.lastIndexOf(0x2f) + 1);
}

/** The index just past the entries inside records[at] (they follow it in canonical order). */
function subtreeEnd(records: DiffRecord[], at: number): number {
  let end = at + 1;
  while (end < records.length && isInside(records[end]!.path, records[at]!.path)) end++;
  return end;
}

/** The index of `path` in records, or -1. */
function indexOf(records: DiffRecord[], path: Buffer): number {
  let low = 0;
  let high = records.length - 1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    const order = comparePaths(records[middle]!.path, path);
    if (order === 0) return middle;
    if (order < 0) low = middle + 1;
    else high = middle - 1;
  }
  return -1;
}

class Pairing {
  private readonly removedUsed: Uint8Array;
  private readonly addedUsed: Uint8Array;
  private readonly changes: Change[] = [];
  /** Added files and symlinks by content, in canonical order. */
  private readonly addedByContent = new Map<string, number[]>();

  constructor(
    private readonly removed: DiffRecord[],
    private readonly added: DiffRecord[],
  ) {
    this.removedUsed = new Uint8Array(removed.length);
    this.addedUsed = new Uint8Array(added.length);
    added.forEach((record, j) => {
      const key = contentKey(record);
      if (key === null) return;
      const list = this.addedByContent.get(key);
      if (list) list.push(j);
      else this.addedByContent.set(key, [j]);
    });
  }

  /** Outermost first: a directory moved whole takes everything beneath it along. */
  moveDirectories(): void {
    for (let i = 0; i < this.removed.length; i++) {
      const dir = this.removed[i]!;
      if (this.removedUsed[i] || dir.type !== 'dir') continue;
      const end = subtreeEnd(this.removed, i);
      const to = this.destinationOf(i, end);
      if (to < 0) continue;
      const moved = this.added[to]!;
      this.removedUsed.fill(1, i, end);
      this.addedUsed.fill(1, to, to + (end - i));
      this.changes.push({
        op: 'moved',
        path: dir.path,
        type: 'dir',
        to: moved.path,
        entries: end - i - 1,
        ...(sameMetadata(dir, moved) ? {} : { metadataChanged: true }),
      });
    }
  }

  /**
   * The added directory that removed[at] moved to whole, or -1. The candidates
   * are those holding the directory's first file (or symlink) at the same relative path.
   */
  private destinationOf(at: number, end: number): number {
    const dir = this.removed[at]!.path;
    let first = at + 1;
    while (first < end && this.removed[first]!.type === 'dir') first++;
    if (dir.length === 0 || first === end) return -1; // nothing with content to recognise it by
    const relative = this.removed[first]!.path.subarray(dir.length);
    for (const candidate of this.addedByContent.get(contentKey(this.removed[first]!)!) ?? []) {
      const path = this.added[candidate]!.path;
      if (this.addedUsed[candidate] || path.length <= relative.length || !path.subarray(path.length - relative.length).equals(relative)) continue;
      const to = indexOf(this.added, path.subarray(0, path.length - relative.length));
      if (to >= 0 && this.sameSubtree(at, end, to)) return to;
    }
    return -1;
  }

  /** Whether added[to] holds exactly what removed[at] held, entry for entry (the directory's own metadata aside). */
  private sameSubtree(at: number, end: number, to: number): boolean {
    const oldDir = this.removed[at]!;
    const newDir = this.added[to]!;
    if (newDir.type !== 'dir' || this.addedUsed[to] || subtreeEnd(this.added, to) - to !== end - at) return false;
    for (let k = 1; k < end - at; k++) {
      const before = this.removed[at + k]!;
      const after = this.added[to + k]!;
      if (this.addedUsed[to + k] || !sameContent(before, after) || !sameMetadata(before, after)) return false;
      if (!before.path.subarray(oldDir.path.length).equals(after.path.subarray(newDir.path.length))) return false;
    }
    return true;
  }

  /** Pairs the files and symlinks left by content, and when `sameName` only those whose names match. */
  moveByContent(sameName: boolean): void {
    const waiting = new Map<string, { indices: number[]; next: number }>();
    const keyOf = (record: DiffRecord): string | null => {
      const key = contentKey(record);
      return key === null || !sameName ? key : `${key}/${baseName(record.path).toString('hex')}`;
    };
    this.added.forEach((record, j) => {
      const key = this.addedUsed[j] ? null : keyOf(record);
      if (key === null) return;
      const queue = waiting.get(key);
      if (queue) queue.indices.push(j);
      else waiting.set(key, { indices: [j], next: 0 });
    });
    this.removed.forEach((record, i) => {
      const key = this.removedUsed[i] ? null : keyOf(record);
      const queue = key === null ? undefined : waiting.get(key);
      if (!queue || queue.next === queue.indices.length) return;
      const j = queue.indices[queue.next++]!;
      const moved = this.added[j]!;
      this.removedUsed[i] = 1;
      this.addedUsed[j] = 1;
      this.changes.push({ op: 'moved', path: record.path, type: record.type, to: moved.path, ...(sameMetadata(record, moved) ? {} : { metadataChanged: true }) });
    });
  }

  /** The moves found, then every entry left unpaired as a removal or an addition. */
  result(): Change[] {
    const sized = (record: DiffRecord) => (record.type === 'file' ? { size: record.size } : {});
    this.removed.forEach((record, i) => {
      if (!this.removedUsed[i]) this.changes.push({ op: 'removed', path: record.path, type: record.type, ...sized(record) });
    });
    this.added.forEach((record, j) => {
      if (!this.addedUsed[j]) this.changes.push({ op: 'added', path: record.path, type: record.type, ...sized(record) });
    });
    return this.changes;
  }
}
