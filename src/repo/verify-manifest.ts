// A snapshot's manifest as `lb verify` reads it: streaming, and stricter than a
// reader that trusts lb wrote it. Each record must parse, hold valid fields for
// its type, sort after the one before (canonical order) and lie in a directory
// the manifest lists; the file must end with a newline. The format has no end
// marker, so a manifest cut exactly at a line boundary reads as complete here:
// the tree, which then holds entries the manifest lacks, gives it away.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { comparePaths, isInside, parentPath } from '../diff/order.js';
import { ManifestReader, type ManifestRecord } from './manifest.js';

const HASH = /^[0-9a-f]{64}$/;

/** What is wrong with a record's fields, or null. */
export function recordFault(record: ManifestRecord): string | null {
  const whole = (n: number) => Number.isSafeInteger(n) && n >= 0;
  if (!whole(record.size) || !whole(record.uid) || !whole(record.gid)) return 'a size, uid or gid that is not a whole number';
  if (!(record.mode >= 0 && record.mode <= 0o7777)) return 'a mode that is not octal permission bits';
  if (record.link && (record.type !== 'file' || comparePaths(record.link, record.path) >= 0)) return 'a hard link that is not to an earlier path, or not on a file';
  if (record.type === 'file') return HASH.test(record.hash) && record.target === null ? null : 'a file without a valid SHA-256 or with a link target';
  if (record.hash !== '' || record.size !== 0) return `a ${record.type === 'dir' ? 'directory' : 'symlink'} with a hash or a size`;
  if ((record.type === 'symlink') !== (record.target !== null)) return record.type === 'dir' ? 'a directory with a link target' : 'a symlink without a target';
  return null;
}

export class CheckedManifest {
  /** Why the manifest cannot be read to its end; null while it reads well. */
  fault: string | null = null;
  /** Records read so far. */
  count = 0;
  private readonly reader: ManifestReader | null = null;
  private readonly endsWithNewline: boolean = false;
  private line = 1;
  private pending: ManifestRecord | null = null;
  private previous: Buffer | null = null;
  /** The directories enclosing the last record, outermost first. */
  private readonly ancestors: Buffer[] = [];

  constructor(path: string) {
    try {
      this.endsWithNewline = lastByte(path) === 0x0a;
      this.reader = new ManifestReader(path);
    } catch (error) {
      this.fault = `the manifest cannot be read: ${(error as Error).message}`;
      return;
    }
    this.pending = this.read();
  }

  /** The next sound record, or null at the end or at the first fault. */
  next(): ManifestRecord | null {
    const current = this.pending;
    if (current === null) return null;
    this.pending = this.read();
    if (this.pending === null && this.fault === null && !this.endsWithNewline) {
      this.fault = `the manifest ends in the middle of line ${this.line}: cut short`;
      return null;
    }
    this.count++;
    return current;
  }

  close(): void {
    this.reader?.close();
  }

  private read(): ManifestRecord | null {
    if (this.fault !== null || this.reader === null) return null;
    let record: ManifestRecord | null;
    try {
      record = this.reader.next();
    } catch (error) {
      const message = (error as Error).message;
      const why = message === 'corrupt manifest line' ? 'not the tab-separated fields of its format (ten in format 1, eleven in format 2) of known values' : message;
      this.fault = `manifest line ${this.line + 1} is corrupt: ${why}${this.cutShort()}`;
      return null;
    }
    if (record === null) return null;
    this.line++;
    const fault = recordFault(record) ?? this.placeFault(record);
    if (fault !== null) {
      this.fault = `manifest line ${this.line} is corrupt: ${fault}${this.cutShort()}`;
      return null;
    }
    this.previous = record.path;
    return record;
  }

  private cutShort(): string {
    return this.endsWithNewline ? '' : '; the file ends in the middle of a line: cut short';
  }

  /** Whether the record comes where canonical order puts it, inside a directory listed before it. */
  private placeFault(record: ManifestRecord): string | null {
    if (this.previous === null) return record.path.length === 0 && record.type === 'dir' ? null : 'the first record is not the root directory';
    if (comparePaths(this.previous, record.path) >= 0) return 'out of canonical order';
    const parent = parentPath(record.path)!;
    while (this.ancestors.length > 0 && !isInside(record.path, this.ancestors[this.ancestors.length - 1]!)) this.ancestors.pop();
    const enclosing = this.ancestors[this.ancestors.length - 1];
    if (enclosing === undefined ? parent.length !== 0 : !enclosing.equals(parent)) return 'its directory is not in the manifest';
    if (record.type === 'dir') this.ancestors.push(record.path);
    return null;
  }
}

function lastByte(path: string): number | null {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const byte = Buffer.alloc(1);
    return size > 0 && readSync(fd, byte, 0, 1, size - 1) === 1 ? byte[0]! : null;
  } finally {
    closeSync(fd);
  }
}
