// The repository side of a restore: the selected records of a snapshot in
// manifest order (a directory before what it holds), and for each file its
// content, read from the snapshot's tree. Each content goes once: a later file
// with a content already given goes as a reference to the earlier path, for the
// writer to copy from what it restored there (and check again), so that a content
// shared by many paths crosses a wire once.
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { isInside } from '../diff/order.js';
import { atPath } from './deep-path.js';
import type { ManifestRecord } from './manifest.js';
import type { RepositoryReader } from './reader.js';
import { DamagedContent } from './restore-record.js';

export type FeedItem =
  /** A directory or a symlink. */
  | { kind: 'entry'; record: ManifestRecord }
  /** A file and its content (a member of a source hard-link group: unread when it is linked instead), read as it is iterated (a stored file longer than its record shows one byte more). */
  | { kind: 'content'; record: FedRecord; content: Generator<Buffer> }
  /** A file whose content was given in full for the `earlier` path of this restore. */
  | { kind: 'same'; record: FedRecord; earlier: Buffer };

/** A file's record, `grouped` when it belongs to a source hard-link group that a later selected record links to. */
export type FedRecord = ManifestRecord & { grouped?: boolean };

/** A path missing from the snapshot, among those asked for; null when all are there. */
export function firstMissingPath(reader: RepositoryReader, snapshot: string, paths: Buffer[]): Buffer | null {
  if (paths.length === 0) return null;
  const missing = new Map(paths.map((p) => [p.toString('latin1'), p]));
  for (const record of reader.records(snapshot)) {
    missing.delete(record.path.toString('latin1'));
    if (missing.size === 0) return null;
  }
  return missing.size === 0 ? null : [...missing.values()][0]!;
}

/** Whether a record is part of the restore: in a subtree asked for, or a directory leading to one. */
export function isSelected(path: Buffer, paths: Buffer[]): boolean {
  if (paths.length === 0) return true;
  return paths.some((p) => p.equals(path) || isInside(path, p) || isInside(p, path));
}

/** The records a restore would write, in the order it writes them. */
export function* selectedRecords(reader: RepositoryReader, snapshot: string, paths: Buffer[]): Generator<ManifestRecord> {
  for (const record of reader.records(snapshot)) if (isSelected(record.path, paths)) yield record;
}

const CHUNK = 1 << 20;

export interface FeedOptions {
  /** Subtrees to restore, as the manifest spells them; empty for the whole snapshot. */
  paths: Buffer[];
  /**
   * Each chunk in a buffer of its own, for a consumer that keeps it past the next
   * one (a stream write); otherwise one buffer is reused, for a consumer that is
   * done with a chunk when it asks for the next (a local writer).
   */
  freshChunks: boolean;
}

export function* restoreFeed(reader: RepositoryReader, snapshot: string, options: FeedOptions): Generator<FeedItem> {
  const tree = join(reader.snapshotDir(snapshot), 'tree');
  // A second pass over the manifest only when the snapshot may hold source hard links (its summary says how many).
  const groups = reader.summary(snapshot).hardLinks === 0 ? new Set<string>() : linkedGroups(selectedRecords(reader, snapshot, options.paths));
  const shared = options.freshChunks ? null : Buffer.allocUnsafe(CHUNK);
  /** Content hash -> the first path whose content was read in full, both as short latin1 strings. */
  const given = new Map<string, string>();
  for (const record of selectedRecords(reader, snapshot, options.paths)) {
    if (record.type !== 'file') {
      yield { kind: 'entry', record };
      continue;
    }
    // A member of a source hard-link group carries its group's first path (record.link): the writer links
    // it to what it restored for the group, and uses the content (or reference) only when it cannot.
    if (groups.size > 0 && groups.has((record.link ?? record.path).toString('latin1'))) (record as FedRecord).grouped = true;
    const content = key(record.hash);
    const earlier = given.get(content);
    if (earlier !== undefined) yield { kind: 'same', record, earlier: Buffer.from(earlier, 'latin1') };
    else yield { kind: 'content', record, content: storedContent(tree, record, shared, () => given.set(content, record.path.toString('latin1'))) };
  }
}

/** The groups (by first path) that some record links to: only their written files are worth remembering. */
function linkedGroups(records: Iterable<ManifestRecord>): Set<string> {
  const groups = new Set<string>();
  for (const record of records) if (record.link) groups.add(record.link.toString('latin1'));
  return groups;
}

/**
 * A hash as a 32-character string of its own: the hex text is a slice of a manifest
 * line, and as a key it would keep the whole line alive.
 */
function key(hash: string): string {
  return Buffer.from(hash, 'hex').toString('latin1');
}

/**
 * The stored file's bytes, at most one past the recorded size. `complete` runs once
 * all were read: a content left unread (the writer refused the path) or unreadable
 * is not one to refer to.
 */
function* storedContent(tree: string, record: ManifestRecord, shared: Buffer | null, complete: () => void): Generator<Buffer> {
  const fd = openStored(tree, record.path);
  try {
    for (let read = 0; read <= record.size; ) {
      const buffer = shared ?? Buffer.allocUnsafe(Math.min(CHUNK, record.size + 1 - read));
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, record.size + 1 - read), null);
      if (n === 0) break;
      read += n;
      yield buffer.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
  complete();
}

/** The file's tree entry in the snapshot; a missing one is damage to the repository, as a rotten one is. */
function openStored(tree: string, path: Buffer): number {
  try {
    return atPath(Buffer.concat([Buffer.from(tree + '/'), path]), (stored) => openSync(stored, constants.O_RDONLY | constants.O_NOFOLLOW));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new DamagedContent("it is missing from the snapshot's tree in the repository (a damaged snapshot); left out");
  }
}
