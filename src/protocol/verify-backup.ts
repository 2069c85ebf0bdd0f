// The backup-verify role's messages (protocol 6): `lb backup --verify` with the
// repository on another machine. lb asks the agent there for the repository's
// part of the comparison (the snapshot's structure, the objects this run stored)
// and for the snapshot's records, which it compares with the source here.
// Everything either side receives passes through a decode function here.
import { ProtocolError } from './frames.js';
import type { EntryRecord } from '../diff/record.js';
import { ID_MAX, decodeEntryRecord, encodeEntryRecord, safePath } from './records.js';
import { PROTOCOL_VERSION, decodeIdentity, type RepositoryIdentity } from './messages.js';
import { bool, fail, int, obj, optionalSeries, putBytes, snapshotName, str } from './validate.js';

/** lb's first and only message to the agent. */
export interface VerifyBackupRequest {
  t: 'verify-backup';
  version: number;
  repository: string;
  /** The snapshot this run published, or null for `latest` (the run found the source unchanged). */
  snapshot: string | null;
  /** This run published the snapshot: the objects of its `new` and `copied` files are re-hashed. */
  publishedNow: boolean;
  /** --series: the snapshot is one of that series. */
  series?: string;
}

/** As the repository side maps owners (diff/plan.ts OwnerRule), with its account names when it runs as root. */
export interface WireOwners {
  asRoot: boolean;
  uid: number;
  gid: number;
  /** Name -> id, as that machine's /etc/passwd and /etc/group give them (first wins); empty unless asRoot. */
  users: [string, number][];
  groups: [string, number][];
}

/** A manifest record (repo/manifest.ts ManifestRecord is one). */
export interface WireRecord extends EntryRecord {
  how: 'new' | 'copied' | 'linked' | 'made';
}

/** A problem `lb verify` names (repo/verify.ts Problem has these fields). */
export interface WireProblem {
  kind: (typeof PROBLEM_KINDS)[number];
  snapshot?: string;
  path?: Buffer;
  object?: string;
  detail: string;
  links?: { snapshot: string; path: Buffer }[];
}

/** What the agent sends, in this order: `verifying`, any `problem`s, `stored`, any `records`, then `end`; or `error` at any point, last. */
export type VerifyBackupReply =
  | { t: 'verifying'; snapshot: string; owners: WireOwners; repository?: RepositoryIdentity }
  | { t: 'problem'; problem: WireProblem }
  | { t: 'stored'; objectsReread: number; bytesRead: number }
  | { t: 'records'; records: WireRecord[] }
  | { t: 'end' }
  | { t: 'error'; message: string };

export const PROBLEM_KINDS = ['latest', 'snapshot', 'manifest', 'missing', 'unlisted', 'metadata', 'link', 'stray', 'object', 'rotten', 'unreadable'] as const;
const HOWS = ['new', 'copied', 'linked', 'made'] as const;
/** Records per `records` message: with paths up to 32 KiB, a batch stays far inside a frame only if the agent also cuts by size. */
export const RECORDS_PER_MESSAGE = 4096;
/** Account names per table: more than any real /etc/passwd, few enough for one frame. */
export const MAX_ACCOUNTS = 16384;
const MAX_LINKS = 65536;
const TEXT_LIMIT = 65536;

// ---- encoding ----

export function encodeVerifyReply(reply: VerifyBackupReply): object {
  switch (reply.t) {
    case 'verifying': {
      const { repository } = reply;
      return { ...reply, repository: repository && { boot: repository.boot, dev: repository.dev.toString(), ino: repository.ino.toString() } };
    }
    case 'problem':
      return { t: 'problem', problem: encodeProblem(reply.problem) };
    case 'records':
      return { t: 'records', records: reply.records.map(encodeRecord) };
    default:
      return reply;
  }
}

function encodeProblem(p: WireProblem): object {
  const wire: Record<string, unknown> = { kind: p.kind, detail: p.detail };
  if (p.snapshot !== undefined) wire.snapshot = p.snapshot;
  if (p.path !== undefined) putBytes(wire, 'p', p.path);
  if (p.object !== undefined) wire.object = p.object;
  if (p.links !== undefined) {
    wire.links = p.links.map((link) => {
      const w: Record<string, unknown> = { snapshot: link.snapshot };
      putBytes(w, 'p', link.path);
      return w;
    });
  }
  return wire;
}

export function encodeRecord(r: WireRecord): object {
  return encodeEntryRecord(r, { w: r.how });
}

// ---- validation ----

export function decodeVerifyBackupRequest(raw: unknown): VerifyBackupRequest {
  const m = obj(raw, 'message');
  if (m.t !== 'verify-backup') fail('verify request');
  // Before any other field: another version may have other fields, and the version is what to report.
  const version = int(m.version, 'version');
  if (version !== PROTOCOL_VERSION) throw new ProtocolError(`lb speaks protocol ${version}, this agent speaks ${PROTOCOL_VERSION}`);
  return {
    t: 'verify-backup',
    version,
    repository: str(m.repository, 'repository path'),
    snapshot: m.snapshot === null ? null : snapshotName(m.snapshot),
    publishedNow: bool(m.publishedNow, 'verify option'),
    ...optionalSeries(m.series),
  };
}

function accounts(v: unknown, what: string): [string, number][] {
  if (!Array.isArray(v) || v.length > MAX_ACCOUNTS) fail(what);
  return v.map((pair: unknown) => {
    if (!Array.isArray(pair) || pair.length !== 2) fail(what);
    return [str(pair[0], what, 256), int(pair[1], what, ID_MAX)];
  });
}

export function decodeOwners(raw: unknown): WireOwners {
  const o = obj(raw, 'owner rule');
  const asRoot = bool(o.asRoot, 'owner rule');
  const owners: WireOwners = { asRoot, uid: int(o.uid, 'owner rule', ID_MAX), gid: int(o.gid, 'owner rule', ID_MAX), users: accounts(o.users, 'user table'), groups: accounts(o.groups, 'group table') };
  if (!asRoot && (owners.users.length > 0 || owners.groups.length > 0)) fail('owner rule');
  return owners;
}

function decodeProblem(raw: unknown): WireProblem {
  const p = obj(raw, 'problem');
  const kind = PROBLEM_KINDS.find((k) => k === p.kind) ?? fail('problem kind');
  const problem: WireProblem = { kind, detail: str(p.detail, 'problem detail', TEXT_LIMIT) };
  if (p.snapshot !== undefined) problem.snapshot = snapshotName(p.snapshot);
  if (p.p !== undefined || p.pb !== undefined) problem.path = safePath(p, 'p', 'problem path');
  if (p.object !== undefined) problem.object = str(p.object, 'object name', 4096);
  if (p.links !== undefined) {
    if (!Array.isArray(p.links) || p.links.length > MAX_LINKS) fail('problem links');
    problem.links = p.links.map((raw: unknown) => {
      const link = obj(raw, 'problem link');
      return { snapshot: snapshotName(link.snapshot), path: safePath(link, 'p', 'problem link path') };
    });
  }
  return problem;
}

/** A `records` message's batch: one to RECORDS_PER_MESSAGE records. */
export function decodeRecordBatch(raw: unknown): WireRecord[] {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > RECORDS_PER_MESSAGE) fail('record batch');
  return raw.map(decodeRecord);
}

export function decodeRecord(raw: unknown): WireRecord {
  const w = obj(raw, 'manifest record');
  const how = HOWS.find((h) => h === w.w) ?? fail('record origin');
  return { how, ...decodeEntryRecord(w) };
}

export function decodeVerifyBackupReply(raw: unknown): VerifyBackupReply {
  const m = obj(raw, 'message');
  switch (m.t) {
    case 'verifying':
      return { t: 'verifying', snapshot: snapshotName(m.snapshot), owners: decodeOwners(m.owners), ...(m.repository !== undefined ? { repository: decodeIdentity(m.repository) } : {}) };
    case 'problem':
      return { t: 'problem', problem: decodeProblem(m.problem) };
    case 'stored':
      return { t: 'stored', objectsReread: int(m.objectsReread, 'object count'), bytesRead: int(m.bytesRead, 'byte count') };
    case 'records':
      return { t: 'records', records: decodeRecordBatch(m.records) };
    case 'end':
      return { t: 'end' };
    case 'error':
      return { t: 'error', message: str(m.message, 'error', TEXT_LIMIT) };
    default:
      fail('message type');
  }
}
