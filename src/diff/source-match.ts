// `lb backup --verify`, decided without I/O: how a source entry as it is now
// differs from the snapshot's record of it. The owner is compared as the backup
// stored it (mapped by name, or as this process when not root): the caller maps
// it first. Mtimes are compared to the nanosecond, as the manifest records them.

import type { EntryRecord, EntryType } from './record.js';

/** What the source holds at a path, and what the snapshot records for it: the same fields. */
export type EntryFacts = Omit<EntryRecord, 'path' | 'hash'>;

const WORDS: Record<EntryType, string> = { file: 'a file', dir: 'a directory', symlink: 'a symlink' };

/** One phrase per field that differs, the source's value first; a type change is the only phrase when the types differ. */
export function sourceDifferences(source: EntryFacts, recorded: EntryFacts): string[] {
  if (source.type !== recorded.type) return [`${WORDS[source.type]} in the source, ${WORDS[recorded.type]} in the snapshot`];
  const differs: string[] = [];
  if (source.type === 'file' && source.size !== recorded.size) differs.push(`size ${source.size}, not ${recorded.size}`);
  if (source.mtimeNs !== recorded.mtimeNs) differs.push(`mtime ${source.mtimeNs} ns, not ${recorded.mtimeNs}`);
  // A symlink's own mode is always 777 on Linux and means nothing.
  if (source.type !== 'symlink' && source.mode !== recorded.mode) differs.push(`mode ${source.mode.toString(8)}, not ${recorded.mode.toString(8)}`);
  if (source.uid !== recorded.uid) differs.push(`uid ${source.uid}, not ${recorded.uid}`);
  if (source.gid !== recorded.gid) differs.push(`gid ${source.gid}, not ${recorded.gid}`);
  if (source.type === 'symlink' && !sameBytes(source.target, recorded.target)) differs.push('another link target');
  if (!sameBytes(source.link ?? null, recorded.link ?? null)) differs.push(hardLinkDifference(source.link, recorded.link));
  return differs;
}

function hardLinkDifference(source: Buffer | undefined, recorded: Buffer | undefined): string {
  if (recorded === undefined) return 'a hard link to an earlier path in the source, not in the snapshot';
  if (source === undefined) return 'a hard link to an earlier path in the snapshot, not in the source';
  return 'hard-linked to another path in the source than in the snapshot';
}

function sameBytes(a: Buffer | null, b: Buffer | null): boolean {
  return a === null || b === null ? a === b : a.equals(b);
}
