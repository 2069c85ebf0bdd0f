// The read role's messages (protocol 6): lb asks the agent next to a repository
// to run one read command (`lb list`, `ls`, `log`, `diff`, `du`, `verify`) there;
// the agent answers with what the command prints, message by message, then how it
// ended. Everything either side receives passes through a decode function here.
import { ProtocolError } from './frames.js';
import { PROTOCOL_VERSION } from './messages.js';
import { bool, bytes, fail, int, isSafeRelativePath, obj, optionalSeries, str } from './validate.js';

/** Which objects `verify --read-data` re-reads (repo/object-subset.ts). */
export type WireSubset = { kind: 'all' } | { kind: 'share'; percent: number } | { kind: 'part'; part: number; parts: number };

/** A read command and its parsed arguments, as the command line gave them. */
export type ReadCommand =
  | { command: 'list' }
  | { command: 'ls'; snapshot?: string; path?: string; long: boolean; recursive: boolean }
  | { command: 'log'; path: Buffer }
  | { command: 'diff'; old?: string; new?: string }
  | { command: 'du' }
  | { command: 'verify'; readData: WireSubset | null };

/** lb's first and only message to a reading agent. */
export interface ReadRequest {
  t: 'read';
  version: number;
  repository: string;
  /** --json */
  json: boolean;
  read: ReadCommand;
  /** --series: read that series of the repository (absent: its top level, or all of it for du and verify). */
  series?: string;
}

/** What the agent sends back, in this order: any of the first five, then `end` or `error`, once. */
export type ReadReply =
  | { t: 'line'; text: string }
  | { t: 'warn'; text: string }
  /** The one JSON value of --json, as JSON text cut into parts (it may be larger than a frame); `last` on the final part. */
  | { t: 'json'; text: string; last: boolean }
  /** One element of --json's streamed array (`lb ls --json`), then `items-end`. */
  | { t: 'item'; value: unknown }
  | { t: 'items-end' }
  /** The command's exit status: one of lb's documented statuses (README), nothing else. */
  | { t: 'end'; exit: number }
  /** What stopped the command, in one line; `usage`: a bad command line (exit status 2), as locally. */
  | { t: 'error'; message: string; usage: boolean };

/** The highest exit status lb documents (5: verify found damage). */
export const MAX_EXIT_STATUS = 5;
/** Longest line or JSON part: a line may name many paths (every path that links to a damaged object). */
export const READ_TEXT_LIMIT = 4 * 1024 * 1024;
const WORD_LIMIT = 65536;

export function encodeReadRequest(request: ReadRequest): object {
  const { read } = request;
  return { ...request, read: read.command === 'log' ? { command: 'log', pathBase64: read.path.toString('base64') } : read };
}

function optionalWord(v: unknown, what: string): string | undefined {
  return v === undefined ? undefined : str(v, what, WORD_LIMIT);
}

function decodeSubset(raw: unknown): WireSubset | null {
  if (raw === null) return null;
  const s = obj(raw, 'object subset');
  if (s.kind === 'all') return { kind: 'all' };
  if (s.kind === 'share') {
    const percent = s.percent;
    if (typeof percent !== 'number' || !(percent > 0 && percent < 100)) fail('object share');
    return { kind: 'share', percent };
  }
  if (s.kind === 'part') {
    const parts = int(s.parts, 'object parts', 256);
    const part = int(s.part, 'object part', parts);
    if (part < 1) fail('object part');
    return { kind: 'part', part, parts };
  }
  fail('object subset');
}

function decodeReadCommand(raw: unknown): ReadCommand {
  const c = obj(raw, 'read command');
  switch (c.command) {
    case 'list':
    case 'du':
      return { command: c.command };
    case 'ls':
      return {
        command: 'ls',
        snapshot: optionalWord(c.snapshot, 'snapshot name'),
        path: optionalWord(c.path, 'path'),
        long: bool(c.long, 'ls option'),
        recursive: bool(c.recursive, 'ls option'),
      };
    case 'log': {
      // Only compared with the manifests' paths, never opened; still held to the rule for every path from a peer.
      const path = bytes(c.pathBase64, 'path');
      if (path.length === 0 || !isSafeRelativePath(path)) throw new ProtocolError(`peer sent an unsafe path ${JSON.stringify(path.toString('latin1'))}`);
      return { command: 'log', path };
    }
    case 'diff':
      return { command: 'diff', old: optionalWord(c.old, 'snapshot name'), new: optionalWord(c.new, 'snapshot name') };
    case 'verify':
      return { command: 'verify', readData: decodeSubset(c.readData) };
    default:
      fail('read command');
  }
}

export function decodeReadRequest(raw: unknown): ReadRequest {
  const m = obj(raw, 'message');
  if (m.t !== 'read') fail('read request');
  // Before any other field: another version may have other fields, and the version is what to report.
  const version = int(m.version, 'version');
  if (version !== PROTOCOL_VERSION) throw new ProtocolError(`lb speaks protocol ${version}, this agent speaks ${PROTOCOL_VERSION}`);
  return {
    t: 'read',
    version,
    repository: str(m.repository, 'repository path'),
    json: bool(m.json, 'json option'),
    read: decodeReadCommand(m.read),
    ...optionalSeries(m.series),
  };
}

export function decodeReadReply(raw: unknown): ReadReply {
  const m = obj(raw, 'message');
  switch (m.t) {
    case 'line':
    case 'warn':
      return { t: m.t, text: str(m.text, 'line', READ_TEXT_LIMIT) };
    case 'json':
      return { t: 'json', text: str(m.text, 'JSON part', READ_TEXT_LIMIT), last: bool(m.last, 'JSON part') };
    case 'item':
      if (!('value' in m)) fail('item');
      return { t: 'item', value: m.value };
    case 'items-end':
      return { t: 'items-end' };
    case 'end':
      return { t: 'end', exit: int(m.exit, 'exit status', MAX_EXIT_STATUS) };
    case 'error':
      return { t: 'error', message: str(m.message, 'error', READ_TEXT_LIMIT), usage: bool(m.usage, 'error') };
    default:
      fail('message type');
  }
}
