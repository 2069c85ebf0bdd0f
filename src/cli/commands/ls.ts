// `lb ls REPO [SNAPSHOT] [PATH]`: the entries of a snapshot under PATH, from its
// manifest, streaming (the manifest is in depth-first order, so a subtree is one
// run of records and the listing stops at its end).
import type { Command } from 'commander';
import { comparePaths, isInside, parentPath } from '../../diff/order.js';
import type { ManifestRecord } from '../../repo/manifest.js';
import { Accounts } from '../../scan/accounts.js';
import { formatBytes } from '../format.js';
import { displayName, jsonName } from '../names.js';
import { EXIT, Output, UsageError, addOutputOptions, oneLineErrors, type OutputOptions } from '../output.js';
import { openToRead, resolveSnapshot } from './read-repository.js';

interface LsOptions extends OutputOptions {
  long?: boolean;
  recursive?: boolean;
}

export function registerLs(program: Command): void {
  const command = program
    .command('ls')
    .description('list the entries of a snapshot (latest by default) under PATH (the whole tree by default)')
    .configureOutput(oneLineErrors('usage: lb ls [options] REPOSITORY [SNAPSHOT] [PATH] (lb ls --help lists the options)'))
    .argument('<repository>', 'lb repository: a local path')
    .argument('[snapshot]', 'a snapshot name, a unique prefix of one (2026.11), or latest; a word that is not one of these is taken as PATH')
    .argument('[path]', 'a path inside the snapshot')
    .option('-l, --long', 'type, mode, owner, size, mtime and how each file arrived')
    .option('-R, --recursive', 'everything beneath PATH, not only what it holds directly');
  addOutputOptions(command, {}).action((repository: string, snapshot: string | undefined, path: string | undefined, opts: LsOptions) => {
    process.exitCode = lsCommand(repository, snapshot, path, opts);
  });
}

/** `latest`, or what could begin a snapshot name: digits, dots and a dash. */
const SNAPSHOT_WORD = /^(latest|[0-9][0-9.-]*)$/;

/** PATH as the manifest spells it: relative, no empty, `.` or `..` components. */
export function insidePath(path: string): Buffer {
  const parts = path.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) throw new UsageError(`${path}: a path inside a snapshot cannot go up with ..`);
  return Buffer.from(parts.join('/'));
}

function lsCommand(repositoryArg: string, first: string | undefined, second: string | undefined, opts: LsOptions): number {
  const out = new Output(opts);
  const reader = openToRead(repositoryArg, 'ls');
  const [snapshotWord, pathWord] = second !== undefined || first === undefined || SNAPSHOT_WORD.test(first) ? [first, second] : [undefined, first];
  const snapshot = resolveSnapshot(reader, snapshotWord);
  const target = insidePath(pathWord ?? '');
  const show = out.asJson ? jsonLister() : textLister(out, opts.long ?? false);
  let found = false;
  for (const record of reader.records(snapshot)) {
    const order = comparePaths(record.path, target);
    if (order < 0) continue;
    if (order === 0) {
      found = true;
      if (record.type !== 'dir') show.entry(record);
      continue;
    }
    if (!isInside(record.path, target)) break; // past the subtree: the rest sorts after it
    if (opts.recursive || parentPath(record.path)!.equals(target)) show.entry(record);
  }
  if (!found) throw new UsageError(`no ${displayName(target)} in snapshot ${snapshot}`);
  show.end();
  return EXIT.ok;
}

interface Lister {
  entry(record: ManifestRecord): void;
  end(): void;
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

function textLister(out: Output, long: boolean): Lister {
  const accounts = new Accounts();
  return {
    entry(record) {
      if (!long) return out.line(shownPath(record));
      const owner = `${accounts.userName(record.uid) ?? record.uid}:${accounts.groupName(record.gid) ?? record.gid}`;
      const size = record.type === 'file' ? formatBytes(record.size) : '-';
      const how = record.type === 'file' ? record.how : '';
      out.line([modeString(record), owner.padEnd(15), size.padStart(9), localTime(record.mtimeNs), how.padEnd(6), shownLong(record)].join('  '));
    },
    end() {},
  };
}

/** One JSON array, written as it goes: memory does not grow with the snapshot. Nothing is written before the first entry. */
function jsonLister(): Lister {
  let count = 0;
  return {
    entry(record) {
      const entry = {
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
      process.stdout.write((count++ === 0 ? '[' : ',') + JSON.stringify(entry));
    },
    end() {
      process.stdout.write(count === 0 ? '[]\n' : ']\n');
    },
  };
}
