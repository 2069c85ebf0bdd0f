// The body of `lb ls REPO [SNAPSHOT] [PATH]`: the entries of a snapshot under
// PATH, from its manifest, streaming (the manifest is in depth-first order, so a
// subtree is one run of records and the listing stops at its end).
import { formatBytes } from '../cli/format.js';
import { displayName, jsonName } from '../cli/names.js';
import { EXIT, UsageError } from '../cli/status.js';
import { comparePaths, isInside, parentPath } from '../diff/order.js';
import type { ManifestRecord } from '../repo/manifest.js';
import type { RepositoryReader } from '../repo/reader.js';
import { Accounts } from '../scan/accounts.js';
import { resolveSnapshot } from './open.js';
import type { Report } from './report.js';

export interface LsArgs {
  snapshot?: string;
  path?: string;
  long: boolean;
  recursive: boolean;
}

/** PATH as the manifest spells it: relative, no empty, `.` or `..` components. */
export function insidePath(path: string): Buffer {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw new UsageError(`${path}: a path inside a snapshot cannot go up with ..`);
  return Buffer.from(parts.join('/'));
}

export async function lsBody(reader: RepositoryReader, args: LsArgs, out: Report): Promise<number> {
  const snapshot = resolveSnapshot(reader, args.snapshot);
  const target = insidePath(args.path ?? '');
  const show = out.asJson ? (record: ManifestRecord) => out.item(jsonEntry(record)) : textLister(out, args.long);
  let found = false;
  for (const record of reader.records(snapshot)) {
    const order = comparePaths(record.path, target);
    if (order < 0) continue;
    if (order === 0) {
      found = true;
      if (record.type !== 'dir') await show(record);
      continue;
    }
    if (!isInside(record.path, target)) break; // past the subtree: the rest sorts after it
    if (args.recursive || parentPath(record.path)!.equals(target)) await show(record);
  }
  if (!found) throw new UsageError(`no ${displayName(target)} in snapshot ${snapshot}`);
  if (out.asJson) await out.endItems();
  return EXIT.ok;
}

const TYPE_CHAR = { dir: 'd', file: '-', symlink: 'l' } as const;

function modeString(record: ManifestRecord): string {
  const bits = 'rwxrwxrwx'.split('').map((ch, i) => (record.mode & (0o400 >> i) ? ch : '-'));
  if (record.mode & 0o4000) bits[2] = bits[2] === 'x' ? 's' : 'S';
  if (record.mode & 0o2000) bits[5] = bits[5] === 'x' ? 's' : 'S';
  if (record.mode & 0o1000) bits[8] = bits[8] === 'x' ? 't' : 'T';
  return TYPE_CHAR[record.type] + bits.join('');
}

function localTime(ns: bigint): string {
  const date = new Date(Number(ns / 1_000_000n));
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())} ${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
}

function shownPath(record: ManifestRecord): string {
  const name = displayName(record.path) + (record.type === 'dir' ? '/' : '');
  return record.target ? `${name} -> ${displayName(record.target)}` : name;
}

/** With -l, a member of a source hard-link group names its group's first path, as `ls -l` would show a shared inode. */
function shownLong(record: ManifestRecord): string {
  return record.link ? `${shownPath(record)} => ${displayName(record.link)}` : shownPath(record);
}

function textLister(out: Report, long: boolean): (record: ManifestRecord) => void | Promise<void> {
  const accounts = new Accounts();
  return (record) => {
    if (!long) return out.line(shownPath(record));
    const owner = `${accounts.userName(record.uid) ?? record.uid}:${accounts.groupName(record.gid) ?? record.gid}`;
    const size = record.type === 'file' ? formatBytes(record.size) : '-';
    const how = record.type === 'file' ? record.how : '';
    return out.line([modeString(record), owner.padEnd(15), size.padStart(9), localTime(record.mtimeNs), how.padEnd(6), shownLong(record)].join('  '));
  };
}

/** One element of `ls --json`'s array: names as names.ts gives them, the exact bytes when they are not UTF-8. */
function jsonEntry(record: ManifestRecord): object {
  return {
    type: record.type,
    ...jsonName(record.path),
    ...(record.target ? jsonName(record.target, 'target') : {}),
    size: record.size,
    mtimeNs: record.mtimeNs.toString(),
    mode: record.mode,
    uid: record.uid,
    gid: record.gid,
    ...(record.type === 'file' ? { hash: record.hash, how: record.how } : {}),
    ...(record.link ? jsonName(record.link, 'linkTo') : {}),
  };
}
