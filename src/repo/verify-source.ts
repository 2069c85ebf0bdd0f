// `lb backup --verify`, source side: the source as it is now, walked in
// canonical order, merged in one pass with the snapshot's manifest, so memory
// stays flat. Every entry's metadata is compared (diff/source-match.ts); a file
// the run read is read again and its hash compared with the record's. A
// directory missing on either side is one difference, not one per entry beneath.
// The source is reached through `SourceSide` and the records through an async
// iterator, so this works on any walk, and on records read here or streamed from
// a remote repository.
import { comparePaths, isInside } from '../diff/order.js';
import { sourceDifferences, type EntryFacts } from '../diff/source-match.js';
import type { ManifestRecord } from './manifest.js';

export interface SourceEntry extends EntryFacts {
  /** Relative to the source root, raw bytes; '' is the root. */
  path: Buffer;
}

export interface SourceSide {
  /** The source's entries in canonical order, the owner mapped as the backup maps it. */
  entries: AsyncIterator<SourceEntry>;
  /** The SHA-256 of a source file as it is now, told each read's size; throws when it cannot be read. */
  hash(path: Buffer, onBytes: (n: number) => void): string;
  /** Why the walk left this path out now (it could not examine it), if it did. */
  leftOut(path: Buffer): string | undefined;
}

export interface Difference {
  path: Buffer;
  detail: string;
}

export interface SourceChecked {
  /** Manifest records compared. */
  entries: number;
  /** Source files read again and hashed. */
  filesReread: number;
  bytesReread: number;
}

interface Current {
  record: ManifestRecord;
  /** The run read this record's file from the source. */
  read: boolean;
}

function beneath(count: number, where: string): string {
  return count === 0 ? '' : `, with ${count} ${count === 1 ? 'entry' : 'entries'} beneath it ${where}`;
}

export class SourceComparison {
  readonly checked: SourceChecked = { entries: 0, filesReread: 0, bytesReread: 0 };
  private current: Current | null = null;
  private entry: SourceEntry | null = null;

  constructor(
    /** The snapshot's records in manifest order. */
    private readonly records: AsyncIterator<ManifestRecord>,
    private readonly source: SourceSide,
    /** Called once per record in order: whether the run read that record's file. */
    private readonly wasRead: () => boolean,
    /** Paths the run already reported missing from its snapshot: not differences again. */
    private readonly excused: (path: Buffer) => boolean,
  ) {}

  async *differences(): AsyncGenerator<Difference> {
    await this.nextRecord();
    await this.nextEntry();
    while (this.current !== null || this.entry !== null) {
      const order = this.current === null ? 1 : this.entry === null ? -1 : comparePaths(this.current.record.path, this.entry.path);
      if (order < 0) yield await this.notInSource(this.current!.record);
      else if (order > 0) {
        const difference = await this.notInSnapshot(this.entry!);
        if (difference) yield difference;
      } else yield* this.compare(this.current!, this.entry!);
    }
  }

  private async notInSource(record: ManifestRecord): Promise<Difference> {
    const why = this.source.leftOut(record.path);
    const count = record.type === 'dir' ? await this.skipRecordsInside(record.path) : (await this.nextRecord(), 0);
    const detail = why === undefined ? 'in the snapshot, not in the source' : `in the snapshot; the source's cannot be examined now (${why})`;
    return { path: record.path, detail: detail + beneath(count, 'in the snapshot') };
  }

  private async notInSnapshot(entry: SourceEntry): Promise<Difference | null> {
    const excused = this.excused(entry.path);
    const count = entry.type === 'dir' ? await this.skipEntriesInside(entry.path) : (await this.nextEntry(), 0);
    return excused ? null : { path: entry.path, detail: 'in the source, not in the snapshot' + beneath(count, 'in the source') };
  }

  private async *compare(current: Current, entry: SourceEntry): AsyncGenerator<Difference> {
    const { record, read } = current;
    const differs = sourceDifferences(entry, record);
    if (entry.type !== record.type) {
      const records = record.type === 'dir' ? await this.skipRecordsInside(record.path) : (await this.nextRecord(), 0);
      const entries = entry.type === 'dir' ? await this.skipEntriesInside(entry.path) : (await this.nextEntry(), 0);
      yield { path: record.path, detail: differs[0]! + beneath(records, 'in the snapshot') + beneath(entries, 'in the source') };
      return;
    }
    if (differs.length > 0) yield { path: record.path, detail: `differs from the snapshot: ${differs.join(', ')}` };
    // A size that differs says the content does; reading it again would say nothing more.
    if (read && record.type === 'file' && entry.size === record.size) {
      const found = this.rehash(record.path);
      if (found.error !== undefined) yield { path: record.path, detail: `cannot be read again: ${found.error}` };
      else if (found.hash !== record.hash) yield { path: record.path, detail: `content differs from the snapshot: it hashes to ${found.hash}, the snapshot holds ${record.hash}` };
    }
    await this.nextRecord();
    await this.nextEntry();
  }

  private rehash(path: Buffer): { hash?: string; error?: string } {
    try {
      const hash = this.source.hash(path, (n) => (this.checked.bytesReread += n));
      this.checked.filesReread++;
      return { hash };
    } catch (error) {
      return { error: (error as Error).message };
    }
  }

  private async nextRecord(): Promise<void> {
    const next = await this.records.next();
    if (next.done) {
      this.current = null;
      return;
    }
    const record = next.value;
    this.checked.entries++;
    this.current = { record, read: this.wasRead() };
  }

  private async nextEntry(): Promise<void> {
    const next = await this.source.entries.next();
    this.entry = next.done ? null : next.value;
  }

  /** Moves past `dir`'s record and every record inside it; returns how many were inside. */
  private async skipRecordsInside(dir: Buffer): Promise<number> {
    let count = 0;
    for (await this.nextRecord(); this.current !== null && isInside(this.current.record.path, dir); await this.nextRecord()) count++;
    return count;
  }

  /** Moves past `dir`'s source entry and everything beneath it; returns how many entries were beneath. */
  private async skipEntriesInside(dir: Buffer): Promise<number> {
    let count = 0;
    for (await this.nextEntry(); this.entry !== null && isInside(this.entry.path, dir); await this.nextEntry()) count++;
    return count;
  }
}
