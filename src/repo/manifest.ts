// The per-snapshot manifest: one line per entry in canonical order, tab-separated:
//   how  type  path  hash  size  mtime_ns  mode  uid  gid  target  link
// (format 2; format 1 manifests, still read, have no `link` column).
// Paths and link targets are raw bytes: valid UTF-8 is written as is, except that
// '%', tab, newline and other control bytes are %XX-escaped; a name that is not
// valid UTF-8 has every byte >= 0x80 escaped as well, so it round-trips exactly.
import type { EntryRecord, EntryType } from '../diff/record.js';
import { closeSync, fsyncSync, openSync, readSync } from 'node:fs';
import { writeFully } from './write-fully.js';
import { StringDecoder } from 'node:string_decoder';

export const MANIFEST_HEADER = '# lb manifest 2';
/** Every header this lb reads, the one it writes first; all of one length. */
export const MANIFEST_HEADERS = [MANIFEST_HEADER, '# lb manifest 1'] as const;

export type RecordType = EntryType;
export type How = 'new' | 'copied' | 'linked' | 'made';

/** A snapshot entry and how it arrived (a file: new, copied or linked; anything else: made). */
export interface ManifestRecord extends EntryRecord {
  how: How;
}

const TYPE_CODE: Record<RecordType, string> = { file: 'f', dir: 'd', symlink: 'l' };
const CODE_TYPE: Record<string, RecordType> = { f: 'file', d: 'dir', l: 'symlink' };
const HOWS = new Set<string>(['new', 'copied', 'linked', 'made']);

function mustEscape(byte: number, escapeHigh: boolean): boolean {
  return byte < 0x20 || byte === 0x25 || byte === 0x7f || (escapeHigh && byte >= 0x80);
}

export function escapeBytes(bytes: Buffer): string {
  if (bytes.length === 0) return '.';
  // A lone '.' stands for the empty path (the root) and a lone '-' for no link
  // target: escaped when they are the name itself, the mapping stays one-to-one.
  if (bytes.length === 1 && (bytes[0] === 0x2e || bytes[0] === 0x2d)) return bytes[0] === 0x2e ? '%2E' : '%2D';
  const text = bytes.toString('utf8');
  const escapeHigh = !Buffer.from(text, 'utf8').equals(bytes);
  let needed = false;
  for (const b of bytes) if (mustEscape(b, escapeHigh)) needed = true;
  if (!needed) return text;
  const parts: Buffer[] = [];
  let run = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (mustEscape(bytes[i]!, escapeHigh)) {
      if (run < i) parts.push(bytes.subarray(run, i));
      parts.push(Buffer.from('%' + bytes[i]!.toString(16).padStart(2, '0').toUpperCase(), 'latin1'));
      run = i + 1;
    }
  }
  if (run < bytes.length) parts.push(bytes.subarray(run));
  // Any high bytes left unescaped form valid UTF-8 sequences, so this decode is lossless.
  return Buffer.concat(parts).toString('utf8');
}

export function unescapeBytes(text: string): Buffer {
  if (text === '.') return Buffer.alloc(0);
  const raw = Buffer.from(text, 'utf8');
  if (!raw.includes(0x25)) return raw;
  const out = Buffer.allocUnsafe(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x25) {
      const hex = raw.toString('latin1', i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) throw new Error(`corrupt manifest escape %${hex}`);
      out[n++] = parseInt(hex, 16);
      i += 2;
    } else out[n++] = raw[i]!;
  }
  return out.subarray(0, n);
}

/** The part of a record that must match for two snapshots to hold the same tree. */
export function recordBody(r: ManifestRecord): string {
  return [
    TYPE_CODE[r.type],
    escapeBytes(r.path),
    r.hash || '-',
    r.size,
    r.mtimeNs,
    r.mode.toString(8),
    r.uid,
    r.gid,
    r.target ? escapeBytes(r.target) : '-',
    // Part of the body: a link made or broken is a change, so such a run makes a snapshot.
    r.link ? escapeBytes(r.link) : '-',
  ].join('\t');
}

/** A format 1 record's body as format 2 writes it: no hard-link group. */
const FORMAT_1_BODY_END = '\t-';

export function formatRecord(r: ManifestRecord): string {
  return `${r.how}\t${recordBody(r)}\n`;
}

/** A record of a manifest of `format` (1: ten fields; 2: eleven, the last the hard-link group's first path or `-`). */
export function parseRecord(line: string, format: 1 | 2 = 2): ManifestRecord {
  const f = line.split('\t');
  if (f.length !== format + 9 || !HOWS.has(f[0]!) || CODE_TYPE[f[1]!] === undefined) throw new Error('corrupt manifest line');
  const record: ManifestRecord = {
    how: f[0] as How,
    type: CODE_TYPE[f[1]!]!,
    path: unescapeBytes(f[2]!),
    hash: f[3] === '-' ? '' : f[3]!,
    size: Number(f[4]),
    mtimeNs: BigInt(f[5]!),
    mode: parseInt(f[6]!, 8),
    uid: Number(f[7]),
    gid: Number(f[8]),
    target: f[9] === '-' ? null : unescapeBytes(f[9]!),
  };
  if (format === 2 && f[10] !== '-') record.link = unescapeBytes(f[10]!);
  return record;
}

/** Appends records through a buffer; synchronous because the agent's work is a single ordered stream. */
export class ManifestWriter {
  private readonly fd: number;
  private chunks: string[] = [];
  private size = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'wx', 0o644);
    this.push(MANIFEST_HEADER + '\n');
  }

  /** Appends the record; returns its line as written (newline included). */
  write(record: ManifestRecord): string {
    const line = formatRecord(record);
    this.push(line);
    return line;
  }

  private push(text: string): void {
    this.chunks.push(text);
    this.size += text.length;
    if (this.size > 1 << 20) this.flush();
  }

  private flush(): void {
    if (this.chunks.length) writeFully(this.fd, this.chunks.join(''));
    this.chunks = [];
    this.size = 0;
  }

  close(): void {
    this.flush();
    fsyncSync(this.fd);
    closeSync(this.fd);
  }
}

/** A record of a previous manifest: its path and comparable body at once, the rest parsed on demand. */
export interface PreviousRecord {
  path: Buffer;
  /** As recordBody() would give it: equal bodies mean an identical entry. */
  body: string;
  record(): ManifestRecord;
}

/** Reads a manifest one record at a time in constant memory. */
export class ManifestReader {
  private readonly fd: number;
  private readonly buffer = Buffer.allocUnsafe(1 << 16);
  private readonly decoder = new StringDecoder('utf8');
  private carry = '';
  private lines: string[] = [];
  private eof = false;
  /** Where the next read starts in the file. */
  private position = 0;
  /** 1 for a snapshot made before source hard links were recorded. */
  readonly format: 1 | 2;

  constructor(path: string) {
    this.fd = openSync(path, 'r');
    const header = this.nextLine();
    if (header !== MANIFEST_HEADER && header !== MANIFEST_HEADERS[1]) {
      closeSync(this.fd);
      throw new Error(`${path} is not an lb manifest`);
    }
    this.format = header === MANIFEST_HEADER ? 2 : 1;
  }

  next(): ManifestRecord | null {
    const line = this.nextLine();
    return line === null ? null : parseRecord(line, this.format);
  }

  /** The next record, parsing only its path: an unchanged run compares bodies as strings. */
  nextPrevious(): PreviousRecord | null {
    const line = this.nextLine();
    if (line === null) return null;
    const bodyStart = line.indexOf('\t') + 1;
    const pathStart = line.indexOf('\t', bodyStart) + 1;
    const pathEnd = line.indexOf('\t', pathStart);
    if (bodyStart === 0 || pathStart === 0 || pathEnd < 0) throw new Error('corrupt manifest line');
    let parsed: ManifestRecord | null = null;
    return {
      path: unescapeBytes(line.slice(pathStart, pathEnd)),
      body: this.format === 2 ? line.slice(bodyStart) : line.slice(bodyStart) + FORMAT_1_BODY_END,
      record: () => (parsed ??= parseRecord(line, this.format)),
    };
  }

  /** The next record's line as written, unparsed; null at the end. */
  nextLine(): string | null {
    while (this.lines.length === 0) {
      if (this.eof) return null;
      const n = readSync(this.fd, this.buffer, 0, this.buffer.length, this.position);
      this.position += n;
      if (n === 0) {
        this.eof = true;
        if (this.carry) {
          this.lines.push(this.carry);
          this.carry = '';
        }
        break;
      }
      // Lines are UTF-8 text; split on '\n' only after joining the carry so a multi-byte
      // character cut by the read boundary is never decoded in halves.
      const text = this.carry + this.decoder.write(this.buffer.subarray(0, n));
      const parts = text.split('\n');
      this.carry = parts.pop()!;
      this.lines = parts.reverse();
    }
    return this.lines.pop() ?? null;
  }

  /** Go on reading at byte `offset`, which must be where a line starts (manifest-seek.ts finds one). */
  seek(offset: number): void {
    this.position = offset;
    this.carry = '';
    this.lines = [];
    this.eof = false;
    this.decoder.end();
  }

  close(): void {
    closeSync(this.fd);
  }
}
