// A directory's subtree in a previous manifest, read from wherever it is without
// reading the manifest through: its lines are sorted in canonical order
// (diff/order.ts), so a binary search over byte offsets finds the directory's line
// in about log2(size / 64 KiB) small reads, and its subtree is the lines that follow
// while their paths lie inside it. A moved run of a source (protocol 8) takes its
// records from here; nothing but the one reader and one line at a time is held.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { comparePaths, isInside } from '../diff/order.js';
import { ManifestReader, unescapeBytes, type PreviousRecord } from './manifest.js';

/** Below this many bytes left, the search ends and the lines are read in order. */
const SCAN = 1 << 16;
/** A manifest line is never longer than this (two escaped 32 KiB paths and the rest). */
const MAX_LINE = 1 << 20;

export class MovedSubtree {
  private head: PreviousRecord | null;
  /** Index in the subtree of `head` (the directory's own record is 0). */
  private position = 0;

  private constructor(
    private readonly reader: ManifestReader,
    readonly from: Buffer,
    readonly to: Buffer,
    first: PreviousRecord,
  ) {
    this.head = first;
  }

  /** The subtree of directory `from` in the manifest at `manifestPath`, to re-root at `to`; null when it has no such directory. */
  static open(manifestPath: string, from: Buffer, to: Buffer): MovedSubtree | null {
    const reader = new ManifestReader(manifestPath);
    try {
      reader.seek(lineBefore(manifestPath, from));
      let record = reader.nextPrevious();
      while (record && comparePaths(record.path, from) < 0) record = reader.nextPrevious();
      if (record && record.path.equals(from) && record.record().type === 'dir') return new MovedSubtree(reader, from, to, record);
    } catch (error) {
      reader.close();
      throw error;
    }
    reader.close();
    return null;
  }

  /** Where the next record taken would be. */
  get next(): number {
    return this.position;
  }

  /** The record at index `at` of the subtree (at least `next`), and its path re-rooted; null past the subtree's end. */
  take(at: number): { record: PreviousRecord; path: Buffer } | null {
    while (this.head && this.position < at) this.advance();
    const record = this.head;
    if (!record) return null;
    this.advance();
    return { record, path: Buffer.concat([this.to, record.path.subarray(this.from.length)]) };
  }

  private advance(): void {
    const next = this.reader.nextPrevious();
    this.head = next && isInside(next.path, this.from) ? next : null;
    this.position++;
  }

  close(): void {
    this.reader.close();
  }
}

/** The offset of a line at most SCAN bytes before the line of `path` (or before where it would be). */
function lineBefore(manifestPath: string, path: Buffer): number {
  const fd = openSync(manifestPath, 'r');
  try {
    const size = fstatSync(fd).size;
    let lo = lineStart(fd, size, 1); // after the header
    let hi = size;
    while (hi - lo > SCAN) {
      const mid = lo + Math.floor((hi - lo) / 2);
      const start = lineStart(fd, size, mid);
      if (start >= hi) {
        hi = mid;
        continue;
      }
      if (comparePaths(pathAt(fd, start), path) < 0) lo = start;
      else hi = start;
    }
    return lo;
  } finally {
    closeSync(fd);
  }
}

/** The first line start at or after `offset` (`size` at the end). */
function lineStart(fd: number, size: number, offset: number): number {
  const buffer = Buffer.allocUnsafe(4096);
  for (let at = offset - 1; at < size; at += buffer.length) {
    const n = readSync(fd, buffer, 0, buffer.length, at);
    const newline = buffer.subarray(0, n).indexOf(0x0a);
    if (newline >= 0) return at + newline + 1;
    if (n === 0) break;
  }
  return size;
}

/** The path of the line starting at `start` (its third field). */
function pathAt(fd: number, start: number): Buffer {
  for (let length = 4096; length <= MAX_LINE; length *= 4) {
    const buffer = Buffer.allocUnsafe(length);
    const line = buffer.subarray(0, readSync(fd, buffer, 0, length, start));
    const first = line.indexOf(0x09);
    const second = line.indexOf(0x09, first + 1);
    const third = line.indexOf(0x09, second + 1);
    if (first >= 0 && second >= 0 && third >= 0) return unescapeBytes(line.toString('utf8', second + 1, third));
    if (line.length < length) break;
  }
  throw new Error('corrupt manifest line');
}
