// Message types of the lb protocol and their validation. Everything a peer sends
// passes through a parse function here before any other code sees it.
import { ProtocolError } from './frames.js';
import { decodeSelection, encodeSelection } from './selection.js';
import { decodeZeros, type ZerosMessage } from './zeros.js';
import { decodeItem, encodeEntry, encodeRun, isPreviousRun, itemCount, MAX_BATCH_ENTRIES, type EntryItem, type EntryType } from './entries.js';
import type { SelectionSpec } from '../scan/selection.js';
import { TEXT_LIMIT, bool, fail, getBytes, hash, int, isSafeRelativePath, nanoseconds, obj, optionalSeries, putBytes, snapshotName, str } from './validate.js';

export const PROTOCOL_VERSION = 8;

export * from './entries.js';


export interface BackupOptions {
  /** Snapshot name chosen by the invoking side, YYYY.MM.DD-HH.MM.SS. */
  snapshotName: string;
  always: boolean;
  numericIds: boolean;
  verbose: boolean;
  /** The source has no hash cache: trust the previous snapshot's hash when size and mtime match. */
  quickCheck: boolean;
  sourceLabel: string;
  /**
   * `backup` makes a snapshot; `showfiles` only names the source files whose content the repository lacks
   * (each as a `missing` event) and writes nothing; `catalogonly` stores content and makes no snapshot.
   */
  purpose: RunPurpose;
  /** --series: the snapshots go to REPO/<series>/ (absent: the repository's top level). */
  series?: string;
}

export type RunPurpose = 'backup' | 'showfiles' | 'catalogonly';
const PURPOSES: readonly string[] = ['backup', 'showfiles', 'catalogonly'];

/** Why the source side cannot back up the directory it was given. */
export type SourceProblem = 'missing' | 'not-a-directory';

/**
 * What the source walk left out. `unreadable`: a directory it could not list, an entry it could
 * not stat, a link it could not read (the run is partial); `special`: a FIFO, socket or device,
 * left out by design (only counted).
 */
export type SkipKind = 'unreadable' | 'special';

/** A skip as the result reports it: the path as text, for display. */
export interface SkipReport {
  path: string;
  kind: SkipKind;
  reason: string;
}

/** Facts about one file's content as the source read it. */
export interface FileFacts {
  hash: string;
  size: number;
  mtimeNs: bigint;
}

export type SourceMessage =
  /** `stream` (version 8): the stream digest of the snapshot the source remembers sending (repo/stream-digest.ts). */
  | { t: 'hello'; version: number; repository: string; options: BackupOptions; stream?: string }
  /** Sent instead of hello when the source root is unusable: the run ends before the repository is touched. */
  | { t: 'bad-source'; problem: SourceProblem }
  | { t: 'entries'; first: number; entries: EntryItem[] }
  | { t: 'hashed'; index: number; facts: FileFacts }
  /** `from`: the bytes the repository side already holds (its resume offer, prefix checked); 0 sends all. */
  | { t: 'data-begin'; index: number; from: number }
  /** Without `facts` (version 8): the ones its `hashed` announced, for the very bytes hashed. */
  | { t: 'data-end'; index: number; facts?: FileFacts }
  | ZerosMessage
  | { t: 'unreadable'; index: number; reason: string }
  | { t: 'skipped'; path: Buffer; kind: SkipKind; reason: string }
  /** Not read or sent within the time budget (--minutes); a bytes-in-flight file keeps what it received. */
  | { t: 'deferred'; index: number }
  /** `incomplete`: the budget ran out before the walk finished. */
  | { t: 'end'; incomplete: boolean };

export interface RunCounts {
  newFiles: number;
  copiedFiles: number;
  linkedFiles: number;
  directories: number;
  symlinks: number;
  bytesReceived: number;
  bytesStored: number;
  /** Bytes of interrupted transfers kept from an earlier run and not sent again. */
  bytesResumed: number;
}

export interface RunResult {
  snapshot: string | null;
  created: boolean;
  counts: RunCounts;
  warnings: string[];
  /** The time budget ran out: no snapshot, objects stored so far kept. */
  incomplete: boolean;
  /** Files left for the next run by the time budget. */
  deferred: number;
  /** What the source left out: the first ones listed (a frame has a size limit), all counted. */
  skipped: SkipReport[];
  skipCounts: Record<SkipKind, number>;
}

/**
 * The repository's root directory and the machine it is on (its boot id), so that a source walk on
 * the same machine never enters it, however reached (a bind mount, `lb localhost:/ /repo`).
 */
export interface RepositoryIdentity {
  boot: string;
  dev: bigint;
  ino: bigint;
}

/** The repository side holds the first `from` bytes of an interrupted transfer; `prefix` is their SHA-256. */
export interface ResumeOffer {
  index: number;
  from: number;
  prefix: string;
}

/** How an entry got into the snapshot, as `-v` lists it. */
export type EntryArrival = 'new' | 'copied' | 'linked' | 'made';

/**
 * What the repository side tells the user while a backup runs: a warning (said at once, kept in the
 * snapshot's log), or with `-v` each entry as it is placed and each special file left out.
 */
export type RunEvent =
  | { kind: 'warning'; text: string }
  | { kind: 'entry'; how: EntryArrival; type: EntryType; path: Buffer }
  | { kind: 'skip'; path: Buffer; reason: string }
  /** --showfiles: a source file whose content the repository does not hold. */
  | { kind: 'missing'; path: Buffer; size: number };

export type AgentMessage =
  /** `references` (version 8): the latest snapshot is the stream the source named; it may send runs of it. */
  | { t: 'hello'; version: number; repository?: RepositoryIdentity; references?: boolean }
  | { t: 'want'; hash: number[]; data: number[]; resume: ResumeOffer[] }
  | { t: 'settled'; upTo: number }
  | { t: 'event'; event: RunEvent }
  | { t: 'done'; result: RunResult }
  /** `refused`: the repository path cannot hold a repository, so the command line must change. */
  | { t: 'error'; message: string; refused: boolean };

// ---- encoding ----

export function encodeFacts(f: FileFacts): object {
  return { h: f.hash, s: f.size, m: f.mtimeNs.toString() };
}

/** Messages go on the wire as JSON; bigints and buffers need encoding first. */
export function encodeSourceMessage(m: SourceMessage): object {
  switch (m.t) {
    case 'entries':
      return { t: m.t, first: m.first, entries: m.entries.map((item) => (isPreviousRun(item) ? encodeRun(item) : encodeEntry(item))) };
    case 'hashed':
      return { t: m.t, index: m.index, facts: encodeFacts(m.facts) };
    case 'data-end':
      return m.facts ? { t: m.t, index: m.index, facts: encodeFacts(m.facts) } : { t: m.t, index: m.index };
    case 'skipped': {
      const wire: Record<string, unknown> = { t: m.t, k: m.kind, r: m.reason };
      putBytes(wire, 'p', m.path);
      return wire;
    }
    default:
      return m;
  }
}

function encodeEvent(e: RunEvent): object {
  if (e.kind === 'warning') return e;
  const wire: Record<string, unknown> =
    e.kind === 'entry' ? { kind: e.kind, how: e.how, type: e.type } : e.kind === 'skip' ? { kind: e.kind, reason: e.reason } : { kind: e.kind, size: e.size };
  putBytes(wire, 'p', e.path);
  return wire;
}

export function encodeAgentMessage(m: AgentMessage): object {
  if (m.t === 'event') return { t: m.t, event: encodeEvent(m.event) };
  if (m.t !== 'hello' || !m.repository) return m;
  const { boot, dev, ino } = m.repository;
  return { ...m, repository: { boot, dev: dev.toString(), ino: ino.toString() } };
}

// ---- validation ----

function decodeFacts(raw: unknown): FileFacts {
  const f = obj(raw, 'file facts');
  return { hash: hash(f.h, 'file hash'), size: int(f.s, 'file size'), mtimeNs: nanoseconds(f.m, 'file mtime') };
}

function decodeOptions(raw: unknown): BackupOptions {
  const o = obj(raw, 'options');
  return {
    snapshotName: snapshotName(o.snapshotName),
    always: bool(o.always, 'option'),
    numericIds: bool(o.numericIds, 'option'),
    verbose: bool(o.verbose, 'option'),
    quickCheck: bool(o.quickCheck, 'option'),
    sourceLabel: str(o.sourceLabel, 'source label'),
    purpose: PURPOSES.includes(o.purpose as string) ? (o.purpose as RunPurpose) : fail('run purpose'),
    ...optionalSeries(o.series),
  };
}

/**
 * What a pulled source side is asked to do: the first message on its input, from the
 * repository side (lb on the user's machine), before the source side says hello.
 */
export interface PullRequest {
  t: 'pull';
  version: number;
  sourceRoot: string;
  repository: string;
  options: BackupOptions;
  /** --minutes, in milliseconds. */
  budgetMs?: number;
  /** --verify: after the backup, the source side stays for the comparison (protocol/verify-source.ts). */
  verify?: boolean;
  /** Excludes, tags, --one-file-system and --filelist: applied by the walk there (protocol/selection.ts). */
  selection?: SelectionSpec;
}

/** The pull request as it goes on the wire. */
export function encodePullRequest(request: PullRequest): object {
  const { selection, ...rest } = request;
  return selection ? { ...rest, selection: encodeSelection(selection) } : rest;
}

export function decodePullRequest(raw: unknown): PullRequest {
  const m = obj(raw, 'message');
  if (m.t !== 'pull') fail('pull request');
  // Before any other field: another version may have other fields, and the version is what to report.
  const version = int(m.version, 'version');
  if (version !== PROTOCOL_VERSION) throw new ProtocolError(`the repository side speaks protocol ${version}, this agent speaks ${PROTOCOL_VERSION}`);
  const request: PullRequest = {
    t: 'pull',
    version,
    sourceRoot: str(m.sourceRoot, 'source path'),
    repository: str(m.repository, 'repository path'),
    options: decodeOptions(m.options),
  };
  if (m.budgetMs !== undefined) request.budgetMs = int(m.budgetMs, 'time budget');
  if (m.verify !== undefined) request.verify = bool(m.verify, 'verify option');
  if (m.selection !== undefined) request.selection = decodeSelection(m.selection);
  return request;
}

export function decodeSourceMessage(raw: unknown): SourceMessage {
  const m = obj(raw, 'message');
  switch (m.t) {
    case 'hello':
      return {
        t: 'hello',
        version: int(m.version, 'version'),
        repository: str(m.repository, 'repository path'),
        options: decodeOptions(m.options),
        ...(m.stream === undefined ? {} : { stream: hash(m.stream, 'stream digest') }),
      };
    case 'bad-source':
      if (m.problem !== 'missing' && m.problem !== 'not-a-directory') fail('source problem');
      return { t: 'bad-source', problem: m.problem };
    case 'entries': {
      if (!Array.isArray(m.entries) || m.entries.length > MAX_BATCH_ENTRIES) fail('entry batch');
      const first = int(m.first, 'entry index');
      const entries = m.entries.map(decodeItem);
      let index = first;
      for (const e of entries) {
        // A group's later member names an entry sent before it, never itself or one to come.
        if (!isPreviousRun(e) && typeof e.link === 'number' && e.link >= index) fail('hard link to a later entry or to itself');
        index += itemCount(e);
      }
      if (index - first > MAX_BATCH_ENTRIES) fail('entry batch');
      return { t: 'entries', first, entries };
    }
    case 'hashed':
      return { t: m.t, index: int(m.index, 'entry index'), facts: decodeFacts(m.facts) };
    case 'data-end':
      return { t: m.t, index: int(m.index, 'entry index'), ...(m.facts === undefined ? {} : { facts: decodeFacts(m.facts) }) };
    case 'data-begin':
      return { t: 'data-begin', index: int(m.index, 'entry index'), from: int(m.from, 'resume offset') };
    case 'zeros':
      return decodeZeros(m);
    case 'unreadable':
      return { t: 'unreadable', index: int(m.index, 'entry index'), reason: str(m.reason, 'reason', TEXT_LIMIT) };
    case 'skipped': {
      const path = getBytes(m, 'p', 'skipped path');
      // Only ever named, never written; still held to the rule for every path from a peer. The root is never skipped.
      if (path.length === 0 || !isSafeRelativePath(path)) throw new ProtocolError(`peer sent an unsafe path ${JSON.stringify(path.toString('latin1'))}`);
      return { t: 'skipped', path, kind: skipKind(m.k), reason: str(m.r, 'reason', TEXT_LIMIT) };
    }
    case 'deferred':
      return { t: 'deferred', index: int(m.index, 'entry index') };
    case 'end':
      return { t: 'end', incomplete: bool(m.incomplete, 'end') };
    default:
      fail('message type');
  }
}

function indexList(v: unknown, what: string): number[] {
  if (!Array.isArray(v) || v.length > 100000) fail(what);
  return v.map((i) => int(i, what));
}

function resumeOffers(v: unknown): ResumeOffer[] {
  if (!Array.isArray(v) || v.length > 100000) fail('resume offers');
  return v.map((raw) => {
    const o = obj(raw, 'resume offer');
    return { index: int(o.index, 'entry index'), from: int(o.from, 'resume offset'), prefix: hash(o.prefix, 'resume prefix') };
  });
}

function skipKind(v: unknown): SkipKind {
  return v === 'unreadable' || v === 'special' ? v : fail('skip kind');
}

function decodeSkipReport(raw: unknown): SkipReport {
  const s = obj(raw, 'skip');
  return { path: str(s.path, 'skipped path', TEXT_LIMIT), kind: skipKind(s.kind), reason: str(s.reason, 'reason', TEXT_LIMIT) };
}

export function decodeIdentity(raw: unknown): RepositoryIdentity {
  const r = obj(raw, 'repository identity');
  const number = (v: unknown) => {
    const s = str(v, 'repository identity', 24);
    if (!/^[0-9]{1,20}$/.test(s)) fail('repository identity');
    return BigInt(s);
  };
  return { boot: str(r.boot, 'boot id', 64), dev: number(r.dev), ino: number(r.ino) };
}

function decodeResult(raw: unknown): RunResult {
  const r = obj(raw, 'result');
  const c = obj(r.counts, 'counts');
  const counts: RunCounts = {
    newFiles: int(c.newFiles, 'count'),
    copiedFiles: int(c.copiedFiles, 'count'),
    linkedFiles: int(c.linkedFiles, 'count'),
    directories: int(c.directories, 'count'),
    symlinks: int(c.symlinks, 'count'),
    bytesReceived: int(c.bytesReceived, 'count'),
    bytesStored: int(c.bytesStored, 'count'),
    bytesResumed: int(c.bytesResumed, 'count'),
  };
  if (!Array.isArray(r.warnings)) fail('warnings');
  if (!Array.isArray(r.skipped)) fail('skips');
  const n = obj(r.skipCounts, 'skip counts');
  return {
    snapshot: r.snapshot === null ? null : snapshotName(r.snapshot),
    created: bool(r.created, 'result'),
    counts,
    // A warning names a path, which may be longer than PATH_MAX when it is why the path was skipped.
    warnings: r.warnings.map((w) => str(w, 'warning', TEXT_LIMIT)),
    incomplete: bool(r.incomplete, 'result'),
    deferred: int(r.deferred, 'count'),
    skipped: r.skipped.map(decodeSkipReport),
    skipCounts: { unreadable: int(n.unreadable, 'count'), special: int(n.special, 'count') },
  };
}

const ARRIVALS: readonly string[] = ['new', 'copied', 'linked', 'made'];
const ENTRY_TYPES: readonly string[] = ['file', 'dir', 'symlink'];

function eventPath(e: Record<string, unknown>): Buffer {
  const path = getBytes(e, 'p', 'event path');
  if (!isSafeRelativePath(path)) fail('event path');
  return path;
}

function decodeEvent(raw: unknown): RunEvent {
  const e = obj(raw, 'event');
  switch (e.kind) {
    case 'warning':
      return { kind: 'warning', text: str(e.text, 'warning', TEXT_LIMIT) };
    case 'entry':
      if (!ARRIVALS.includes(e.how as string)) fail('entry arrival');
      if (!ENTRY_TYPES.includes(e.type as string)) fail('entry type');
      return { kind: 'entry', how: e.how as EntryArrival, type: e.type as EntryType, path: eventPath(e) };
    case 'skip':
      return { kind: 'skip', path: eventPath(e), reason: str(e.reason, 'reason', TEXT_LIMIT) };
    case 'missing': {
      const path = eventPath(e);
      if (path.length === 0) fail('event path'); // the root is a directory, never a missing file
      return { kind: 'missing', path, size: int(e.size, 'file size') };
    }
    default:
      fail('event kind');
  }
}

export function decodeAgentMessage(raw: unknown): AgentMessage {
  const m = obj(raw, 'message');
  switch (m.t) {
    case 'hello':
      return {
        t: 'hello',
        version: int(m.version, 'version'),
        ...(m.repository === undefined ? {} : { repository: decodeIdentity(m.repository) }),
        ...(m.references === undefined ? {} : { references: bool(m.references, 'references') }),
      };
    case 'want':
      return { t: 'want', hash: indexList(m.hash, 'hash request'), data: indexList(m.data, 'data request'), resume: resumeOffers(m.resume) };
    case 'settled':
      return { t: 'settled', upTo: int(m.upTo, 'settled index') };
    case 'event':
      return { t: 'event', event: decodeEvent(m.event) };
    case 'done':
      return { t: 'done', result: decodeResult(m.result) };
    case 'error':
      return { t: 'error', message: str(m.message, 'error', 65536), refused: m.refused === true };
    default:
      fail('message type');
  }
}
