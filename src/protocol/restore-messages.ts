// The restore roles' messages (protocol 6): `restore-from`, where the agent is next
// to the repository and feeds lb's writer, and `restore-to`, where the agent is next
// to the target and writes what lb feeds it. Both carry the same stream, feed to
// writer: records in manifest order, each file's content once as DATA frames, a
// later file with a content already sent as a reference to the earlier path.
// A run of whole zero blocks inside a file goes as its length (`zeros`), not as
// bytes. Everything either side receives passes through a decode function here; the
// stream's order (data only inside a file, at most its size plus one byte; zero runs
// only inside a file and within its size; a reference only to the first path whose
// content arrived whole) through RestoreStream.
import type { FeedProblem, RestoreRecord, RestoreTally } from '../repo/restore-record.js';
import { FRAME_DATA, FRAME_JSON, ProtocolError, type Frame } from './frames.js';
import { PROTOCOL_VERSION, decodeIdentity, type RepositoryIdentity } from './messages.js';
import { bool, bytes, fail, int, obj, optionalSeries, putBytes, snapshotName, str } from './validate.js';
import { decodeZeros } from './zeros.js';
import { checkedPath, decodeEntryRecord, encodeEntryRecord, safePath } from './records.js';

/** lb asks the agent next to the repository to feed a restore (or, `listOnly`, to list what it would restore). */
export interface RestoreFromRequest {
  t: 'restore-from';
  version: number;
  repository: string;
  /** The user's word (a name, a prefix, latest), resolved there; absent for latest. */
  snapshot?: string;
  /** --path, as the user gave them (checked there against the snapshot). */
  paths: Buffer[];
  listOnly: boolean;
  /** --series: the snapshot is one of that series (absent: of the repository's top level). */
  series?: string;
}

/** lb asks the agent next to the target to write a restore there (with `dryRun`, only to check the target). */
export interface RestoreToRequest {
  t: 'restore-to';
  version: number;
  target: string;
  overwrite: boolean;
  numericIds: boolean;
  dryRun: boolean;
  /** The repository lb reads, for the agent to refuse a target inside it on the same machine. */
  repository?: RepositoryIdentity;
}

/** What goes from feed to writer, in order, after the feeding side's first answer. */
export type RestoreStreamItem =
  | { kind: 'entry'; record: RestoreRecord }
  | { kind: 'file'; record: RestoreRecord }
  | { kind: 'data'; chunk: Buffer }
  /** The next `length` bytes of the file are zeros (a run of whole zero blocks, sent as its length). */
  | { kind: 'zeros'; length: number }
  /** The file's content is complete, or (`problem`) the feed could not give all of it. */
  | { kind: 'file-end'; problem?: FeedProblem }
  | { kind: 'same'; record: RestoreRecord; earlier: Buffer }
  | { kind: 'end' };

/** The agent's answers besides the stream: `begin` (restore-from), `ready`, `problem`, `done` (restore-to), and `error`. */
export type RestoreReply =
  | { t: 'begin'; snapshot: string; repository?: RepositoryIdentity }
  | { t: 'ready' }
  | { t: 'problem'; path: Buffer; text: string }
  | { t: 'done'; tally: RestoreTally }
  | { t: 'error'; message: string; usage: boolean };

/** Problem lines and errors may name several long paths. */
const TEXT_LIMIT = 65536;
const MAX_PATHS = 4096;

export function encodeRestoreRecord(r: RestoreRecord): Record<string, unknown> {
  const wire = encodeEntryRecord(r);
  if (r.grouped) wire.gr = true;
  if (r.user !== undefined) wire.un = r.user;
  if (r.group !== undefined) wire.gn = r.group;
  return wire;
}

export function decodeRestoreRecord(raw: unknown): RestoreRecord {
  const w = obj(raw, 'restore record');
  const record: RestoreRecord = decodeEntryRecord(w);
  const type = record.type;
  if (w.gr !== undefined) {
    if (type !== 'file' || w.gr !== true) fail('hard-link group mark');
    record.grouped = true;
  }
  if (w.un !== undefined) record.user = str(w.un, 'user name', 256);
  if (w.gn !== undefined) record.group = str(w.gn, 'group name', 256);
  return record;
}

function checkVersion(m: Record<string, unknown>): number {
  // Before any other field: another version may have other fields, and the version is what to report.
  const version = int(m.version, 'version');
  if (version !== PROTOCOL_VERSION) throw new ProtocolError(`lb speaks protocol ${version}, this agent speaks ${PROTOCOL_VERSION}`);
  return version;
}

export function encodeRestoreFromRequest(r: RestoreFromRequest): object {
  return { ...r, paths: r.paths.map((p) => p.toString('base64')) };
}

export function decodeRestoreFromRequest(raw: unknown): RestoreFromRequest {
  const m = obj(raw, 'message');
  if (m.t !== 'restore-from') fail('restore request');
  const version = checkVersion(m);
  if (!Array.isArray(m.paths) || m.paths.length > MAX_PATHS) fail('restore paths');
  const request: RestoreFromRequest = {
    t: 'restore-from',
    version,
    repository: str(m.repository, 'repository path'),
    // Only compared with the manifest's paths, never opened; still held to the rule for every path from a peer.
    paths: m.paths.map((p) => checkedPath(bytes(p, 'restore path'))),
    listOnly: bool(m.listOnly, 'list option'),
    ...optionalSeries(m.series),
  };
  if (m.snapshot !== undefined) request.snapshot = str(m.snapshot, 'snapshot name', TEXT_LIMIT);
  return request;
}

export function encodeRestoreToRequest(r: RestoreToRequest): object {
  if (r.repository === undefined) return r;
  const { boot, dev, ino } = r.repository;
  return { ...r, repository: { boot, dev: dev.toString(), ino: ino.toString() } };
}

export function decodeRestoreToRequest(raw: unknown): RestoreToRequest {
  const m = obj(raw, 'message');
  if (m.t !== 'restore-to') fail('restore request');
  const version = checkVersion(m);
  const request: RestoreToRequest = {
    t: 'restore-to',
    version,
    target: str(m.target, 'target path'),
    overwrite: bool(m.overwrite, 'overwrite option'),
    numericIds: bool(m.numericIds, 'numeric-ids option'),
    dryRun: bool(m.dryRun, 'dry-run option'),
  };
  if (m.repository !== undefined) request.repository = decodeIdentity(m.repository);
  return request;
}

export function encodeRestoreReply(r: RestoreReply): object {
  if (r.t === 'problem') {
    const wire: Record<string, unknown> = { t: r.t, text: r.text };
    putBytes(wire, 'p', r.path);
    return wire;
  }
  if (r.t === 'begin' && r.repository !== undefined) {
    const { boot, dev, ino } = r.repository;
    return { t: r.t, snapshot: r.snapshot, repository: { boot, dev: dev.toString(), ino: ino.toString() } };
  }
  return r;
}

function decodeTally(raw: unknown): RestoreTally {
  const t = obj(raw, 'restore tally');
  const count = (key: string) => int(t[key], 'restore tally');
  return { files: count('files'), directories: count('directories'), symlinks: count('symlinks'), bytes: count('bytes'), problems: count('problems'), damaged: count('damaged') };
}

/** A reply that is not part of the stream; null for a stream message, which RestoreStream takes. */
export function decodeRestoreReply(raw: unknown): RestoreReply | null {
  const m = obj(raw, 'message');
  switch (m.t) {
    case 'begin':
      return { t: 'begin', snapshot: snapshotName(m.snapshot), ...(m.repository === undefined ? {} : { repository: decodeIdentity(m.repository) }) };
    case 'ready':
      return { t: 'ready' };
    case 'problem':
      return { t: 'problem', path: safePath(m, 'p', 'problem path'), text: str(m.text, 'problem', TEXT_LIMIT) };
    case 'done':
      return { t: 'done', tally: decodeTally(m.tally) };
    case 'error':
      return { t: 'error', message: str(m.message, 'error', TEXT_LIMIT), usage: bool(m.usage, 'error') };
    default:
      return null;
  }
}

export function encodeStreamItem(item: Exclude<RestoreStreamItem, { kind: 'data' }>): object {
  switch (item.kind) {
    case 'entry':
    case 'file':
      return { t: item.kind, r: encodeRestoreRecord(item.record) };
    case 'same': {
      const wire: Record<string, unknown> = { t: 'same', r: encodeRestoreRecord(item.record) };
      putBytes(wire, 'e', item.earlier);
      return wire;
    }
    case 'file-end':
      return item.problem ? { t: 'file-end', problem: item.problem } : { t: 'file-end' };
    case 'zeros':
      return { t: 'zeros', length: item.length };
    case 'end':
      return { t: 'end' };
  }
}

/**
 * The stream as the writer's side takes it, message by message, refusing what a feed
 * following the protocol never sends. `listing`: a dry run's stream, records only.
 */
export class RestoreStream {
  /** The file whose content is arriving: its size, and the bytes so far. */
  private file: { record: RestoreRecord; received: number } | null = null;
  /** Content hash -> the first path whose content arrived whole, as latin1 strings. */
  private readonly arrived = new Map<string, string>();
  private ended = false;

  constructor(private readonly listing = false) {}

  decode(frame: Frame): RestoreStreamItem {
    if (this.ended) throw new ProtocolError('peer sent more after the end of the restore');
    if (frame.type === FRAME_DATA) {
      if (this.file === null) throw new ProtocolError('peer sent file data outside a file');
      this.file.received += frame.data.length;
      // One byte past the size is how a stored file longer than its record shows (damage the writer reports).
      if (this.file.received > this.file.record.size + 1) throw new ProtocolError('peer sent more data than the file it announced');
      return { kind: 'data', chunk: frame.data };
    }
    if (frame.type !== FRAME_JSON) fail('frame');
    const m = obj(frame.message, 'message');
    if (this.file !== null && m.t === 'zeros') return this.zeros(m);
    if (this.file !== null && m.t !== 'file-end') throw new ProtocolError(`peer sent ${JSON.stringify(String(m.t).slice(0, 40))} inside a file`);
    switch (m.t) {
      case 'entry': {
        const record = decodeRestoreRecord(m.r);
        if (record.type === 'file' && !this.listing) fail('entry (a file without its content)');
        return { kind: 'entry', record };
      }
      case 'file': {
        const record = this.content(m.r);
        this.file = { record, received: 0 };
        return { kind: 'file', record };
      }
      case 'file-end':
        return this.fileEnd(m);
      case 'same': {
        const record = this.content(m.r);
        const earlier = safePath(m, 'e', 'earlier path');
        // Only the path the writer holds this very content at: never a path of its own choosing.
        if (this.arrived.get(record.hash) !== earlier.toString('latin1')) {
          throw new ProtocolError(`peer referred to ${JSON.stringify(earlier.toString('latin1'))}, where no content of ${record.hash} was written`);
        }
        return { kind: 'same', record, earlier };
      }
      case 'end':
        this.ended = true;
        return { kind: 'end' };
      default:
        fail('restore message');
    }
  }

  private content(raw: unknown): RestoreRecord {
    if (this.listing) fail('restore message in a listing');
    const record = decodeRestoreRecord(raw);
    if (record.type !== 'file') fail('file record');
    return record;
  }

  /** Zeros only inside the file's announced size: unlike data, never the byte past it that shows damage. */
  private zeros(m: Record<string, unknown>): RestoreStreamItem {
    const file = this.file!;
    const { length } = decodeZeros(m);
    if (file.received + length > file.record.size) throw new ProtocolError('peer sent a zero run beyond the file it announced');
    file.received += length;
    return { kind: 'zeros', length };
  }

  private fileEnd(m: Record<string, unknown>): RestoreStreamItem {
    const file = this.file;
    if (file === null) throw new ProtocolError('peer ended a file it never began');
    this.file = null;
    if (m.problem !== undefined) {
      const p = obj(m.problem, 'feed problem');
      return { kind: 'file-end', problem: { text: str(p.text, 'feed problem', TEXT_LIMIT), damaged: bool(p.damaged, 'feed problem') } };
    }
    if (!this.arrived.has(file.record.hash)) this.arrived.set(file.record.hash, file.record.path.toString('latin1'));
    return { kind: 'file-end' };
  }
}
