// The body of `lb log REPO PATH`: the history of one path across every snapshot,
// oldest first. Each snapshot's manifest is read only up to where PATH would sort
// (manifests are in canonical order); only for a file that went are two whole
// manifests read, to find where its content went, keeping just the paths that hold that content.
import { displayName, jsonName } from '../cli/names.js';
import { EXIT, UsageError } from '../cli/status.js';
import { movedTo, pathHistory, type ChangedField, type HistoryEvent, type SnapshotState } from '../diff/history.js';
import { comparePaths } from '../diff/order.js';
import type { ManifestRecord } from '../repo/manifest.js';
import type { RepositoryReader } from '../repo/reader.js';
import type { Report } from './report.js';

export interface LogArgs {
  /** As the manifest spells it: relative, no empty, `.` or `..` components (the command line's wantedPath). */
  path: Buffer;
}

/** The path's record in one snapshot, reading its manifest only up to where the path would sort. */
function recordIn(reader: RepositoryReader, snapshot: string, path: Buffer): ManifestRecord | null {
  for (const record of reader.records(snapshot)) {
    const order = comparePaths(record.path, path);
    if (order === 0) return record;
    if (order > 0) break;
  }
  return null;
}

/** The files holding `hash` in a snapshot (a whole manifest read; only those paths are kept). */
function pathsHolding(reader: RepositoryReader, snapshot: string, hash: string): Buffer[] {
  const paths: Buffer[] = [];
  for (const record of reader.records(snapshot)) if (record.type === 'file' && record.hash === hash) paths.push(Buffer.from(record.path));
  return paths;
}

/** Where a file went in `snapshot`: a path with its content there that `before` did not have. */
function destination(reader: RepositoryReader, event: HistoryEvent, before: string): Buffer | null {
  if (event.record.type !== 'file') return null;
  const candidates = pathsHolding(reader, event.snapshot, event.record.hash);
  if (candidates.length === 0) return null;
  const earlier = new Set(pathsHolding(reader, before, event.record.hash).map((path) => path.toString('hex')));
  return movedTo(event.record.path, candidates, (path) => earlier.has(path.toString('hex')));
}

export async function logBody(reader: RepositoryReader, args: LogArgs, out: Report): Promise<number> {
  const { path } = args;
  const snapshots = reader.snapshots();
  const states: SnapshotState[] = snapshots.map((snapshot) => ({ snapshot, record: recordIn(reader, snapshot, path) }));
  const history = pathHistory(states);
  if (history.present === 0) throw new UsageError(`no ${displayName(path)} in any of the ${snapshots.length} snapshots of ${reader.where}`);
  const moves = new Map<HistoryEvent, Buffer>();
  for (const event of history.events) {
    if (event.event !== 'gone') continue;
    const to = destination(reader, event, snapshots[snapshots.indexOf(event.snapshot) - 1]!);
    if (to) moves.set(event, to);
  }
  if (out.asJson) {
    await out.json({
      ...jsonName(path),
      snapshots: history.present,
      versions: history.versions,
      events: history.events.map((event) => jsonEvent(event, moves.get(event))),
    });
    return EXIT.ok;
  }
  for (const event of history.events) await out.line(`${event.snapshot}  ${textEvent(event, moves.get(event))}`);
  const versions = `${history.versions} version${history.versions === 1 ? '' : 's'}`;
  await out.line(`${displayName(path)}: in ${history.present} of ${snapshots.length} snapshots, ${versions}`);
  return EXIT.ok;
}

function jsonEvent(event: HistoryEvent, to: Buffer | undefined): Record<string, unknown> {
  const r = event.record;
  return {
    snapshot: event.snapshot,
    event: event.event,
    type: r.type,
    size: r.size,
    mtimeNs: r.mtimeNs.toString(),
    hash: r.hash,
    mode: r.mode,
    uid: r.uid,
    gid: r.gid,
    ...(r.target ? jsonName(r.target, 'target') : { target: null }),
    ...(event.changes ? { changes: event.changes } : {}),
    ...(to ? jsonName(to, 'to') : {}),
  };
}

function textEvent(event: HistoryEvent, to: Buffer | undefined): string {
  switch (event.event) {
    case 'appeared':
    case 'reappeared':
      return `${event.event}  ${describe(event.record)}`;
    case 'gone':
      return to ? `gone (moved to ${displayName(to)})` : 'gone';
    default:
      return `${event.event} (${event.changes!.map((field) => changeText(field, event.previous!, event.record)).join(', ')})`;
  }
}

function describe(r: ManifestRecord): string {
  const what = r.type === 'file' ? `file  size ${r.size}  hash ${r.hash.slice(0, 12)}` : r.type === 'symlink' ? `symlink -> ${displayName(r.target!)}` : 'directory';
  return `${what}  mode ${octal(r.mode)}  owner ${r.uid}:${r.gid}  mtime ${time(r.mtimeNs)}`;
}

function changeText(field: ChangedField, a: ManifestRecord, b: ManifestRecord): string {
  switch (field) {
    case 'type':
      return `type ${a.type} -> ${b.type}`;
    case 'size':
      return `size ${a.size} -> ${b.size}`;
    case 'content':
      return 'content';
    case 'target':
      return `target ${displayName(a.target!)} -> ${displayName(b.target!)}`;
    case 'mode':
      return `mode ${octal(a.mode)} -> ${octal(b.mode)}`;
    case 'owner':
      return `owner ${a.uid}:${a.gid} -> ${b.uid}:${b.gid}`;
    case 'mtime': {
      const [x, y] = [time(a.mtimeNs), time(b.mtimeNs)];
      return x === y ? `mtime ${time(a.mtimeNs, true)} -> ${time(b.mtimeNs, true)}` : `mtime ${x} -> ${y}`;
    }
  }
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8);
}

/** Local time to the second; with the nanoseconds when two times differ only there. */
function time(ns: bigint, fine = false): string {
  const date = new Date(Number(ns / 1_000_000n));
  const p = (n: number) => String(n).padStart(2, '0');
  const seconds = `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
  return fine ? `${seconds}.${String(((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).padStart(9, '0')}` : seconds;
}
