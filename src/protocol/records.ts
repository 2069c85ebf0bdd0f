// A snapshot entry on the wire, as the restore stream and `lb backup --verify`
// send records: the fields every manifest record has (diff/record.ts), paths and
// targets as putBytes writes them. The decoder is the one place a record from a
// peer is checked: a safe relative path, a hash only and always on a file, a
// target only and always on a symlink, a hard link only on a file, naming a safe
// path other than the root.
import type { EntryRecord, EntryType } from '../diff/record.js';
import { ProtocolError } from './frames.js';
import { fail, getBytes, hash, int, isSafeRelativePath, nanoseconds, putBytes } from './validate.js';

/** uid_t and gid_t are 32 bits. */
export const ID_MAX = 0xffffffff;

const TYPE_CODE: Record<EntryType, string> = { file: 'f', dir: 'd', symlink: 'l' };

/** A peer's path, refused unless it is relative and climbs nowhere. */
export function checkedPath(path: Buffer): Buffer {
  if (!isSafeRelativePath(path)) throw new ProtocolError(`peer sent an unsafe path ${JSON.stringify(path.toString('latin1'))}`);
  return path;
}

/** The path under `key` of a peer's message (text or base64, as putBytes wrote it), checked. */
export function safePath(raw: Record<string, unknown>, key: string, what: string): Buffer {
  return checkedPath(getBytes(raw, key, what));
}

/** The record's common fields in `wire` (a message may add its own keys beside them). */
export function encodeEntryRecord(r: EntryRecord, wire: Record<string, unknown> = {}): Record<string, unknown> {
  Object.assign(wire, { k: TYPE_CODE[r.type], s: r.size, m: r.mtimeNs.toString(), mo: r.mode, u: r.uid, g: r.gid });
  putBytes(wire, 'p', r.path);
  if (r.type === 'file') wire.h = r.hash;
  if (r.target !== null) putBytes(wire, 't', r.target);
  if (r.link !== undefined) putBytes(wire, 'ln', r.link);
  return wire;
}

export function decodeEntryRecord(w: Record<string, unknown>): EntryRecord {
  const type: EntryType = w.k === 'f' ? 'file' : w.k === 'd' ? 'dir' : w.k === 'l' ? 'symlink' : fail('record type');
  const record: EntryRecord = {
    type,
    path: safePath(w, 'p', 'record path'),
    hash: type === 'file' ? hash(w.h, 'record hash') : w.h === undefined ? '' : fail('hash on a non-file'),
    size: int(w.s, 'record size'),
    mtimeNs: nanoseconds(w.m, 'record mtime'),
    mode: int(w.mo, 'record mode', 0o7777),
    uid: int(w.u, 'record uid', ID_MAX),
    gid: int(w.g, 'record gid', ID_MAX),
    target: null,
  };
  if (type === 'symlink') {
    const target = getBytes(w, 't', 'symlink target');
    if (target.length === 0 || target.includes(0)) fail('symlink target');
    record.target = target;
  } else if (w.t !== undefined || w.tb !== undefined) fail('target on a non-symlink');
  if (w.ln !== undefined || w.lnb !== undefined) {
    if (type !== 'file') fail('hard link on a non-file');
    const link = safePath(w, 'ln', 'hard link');
    if (link.length === 0) fail('hard link');
    record.link = link;
  }
  return record;
}
