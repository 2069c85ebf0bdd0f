// A snapshot's tree as `lb verify` reads it: walked in canonical order (each
// directory before its contents, siblings by raw name bytes, as the manifest is
// sorted) so it merges with the manifest in one pass. Memory holds the sorted
// names of the directories on the current path, never the whole tree. Names are
// bytes throughout; paths past PATH_MAX are reached through deep-path.ts.
import { lstatSync, readdirSync, readlinkSync, type BigIntStats } from 'node:fs';
import { atPath } from './deep-path.js';
import type { ManifestRecord, RecordType } from './manifest.js';
import { metadataDifferences } from './verify-store.js';

export interface TreeEntry {
  /** Relative to the tree, as the manifest spells it; '' is the tree itself. */
  path: Buffer;
  full: Buffer;
  stat: BigIntStats;
}

/** A directory that could not be listed or an entry that could not be examined. */
export interface WalkFault {
  path: Buffer;
  detail: string;
}

interface Frame {
  full: Buffer;
  path: Buffer;
  names: Buffer[];
  next: number;
}

const SLASH = Buffer.from('/');
const ROOT = Buffer.alloc(0);

export class TreeWalk {
  /** Faults met since the caller last emptied this. */
  readonly faults: WalkFault[] = [];
  private readonly stack: Frame[] = [];
  /** The directory last returned, listed only when the walk moves on into it. */
  private toEnter: TreeEntry | null = null;
  private started = false;

  constructor(private readonly root: Buffer) {}

  /** The next entry in canonical order, or null at the end (also when the tree itself is missing). */
  next(): TreeEntry | null {
    if (!this.started) {
      this.started = true;
      return this.visit(this.root, ROOT);
    }
    if (this.toEnter) this.enter(this.toEnter);
    this.toEnter = null;
    while (this.stack.length > 0) {
      const frame = this.stack[this.stack.length - 1]!;
      if (frame.next === frame.names.length) {
        this.stack.pop();
        continue;
      }
      const name = frame.names[frame.next++]!;
      const entry = this.visit(Buffer.concat([frame.full, SLASH, name]), frame.path.length === 0 ? name : Buffer.concat([frame.path, SLASH, name]));
      if (entry) return entry;
    }
    return null;
  }

  private visit(full: Buffer, path: Buffer): TreeEntry | null {
    let stat: BigIntStats;
    try {
      stat = atPath(full, (p) => lstatSync(p, { bigint: true }));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.faults.push({ path, detail: `cannot be examined: ${(error as Error).message}` });
      return null;
    }
    const entry = { path, full, stat };
    if (stat.isDirectory()) this.toEnter = entry;
    return entry;
  }

  private enter(dir: TreeEntry): void {
    try {
      const names = atPath(dir.full, (p) => readdirSync(p, { encoding: 'buffer' }));
      this.stack.push({ full: dir.full, path: dir.path, names: names.sort(Buffer.compare), next: 0 });
    } catch (error) {
      this.faults.push({ path: dir.path, detail: `cannot be listed: ${(error as Error).message}` });
    }
  }
}

/** What a tree entry is, in the manifest's words, or what else it is. */
export function entryType(stat: BigIntStats): RecordType | string {
  if (stat.isFile()) return 'file';
  if (stat.isDirectory()) return 'dir';
  if (stat.isSymbolicLink()) return 'symlink';
  if (stat.isFIFO()) return 'FIFO';
  if (stat.isSocket()) return 'socket';
  return 'device';
}

/** How a tree entry of the record's type differs from its record: metadata, a file's size, a symlink's target. */
export function entryDifferences(record: ManifestRecord, entry: TreeEntry): string[] {
  // A symlink's own mode is always 777 on Linux and means nothing.
  const differs = metadataDifferences(entry.stat, record, record.type !== 'symlink');
  if (record.type === 'file' && Number(entry.stat.size) !== record.size) differs.push(`size ${entry.stat.size}, not ${record.size}`);
  if (record.type === 'symlink') {
    const target = atPath(entry.full, (p) => readlinkSync(p, { encoding: 'buffer' }));
    if (record.target === null || !target.equals(record.target)) differs.push('another link target');
  }
  return differs;
}
