// `lb restore REPO [SNAPSHOT] TARGET [--path P]...`: writes a snapshot, or some of
// its subtrees, into a local directory (the writing: repo/restore.ts).
import type { Command } from 'commander';
import { restoreLocally } from '../../repo/restore.js';
import { firstMissingPath, selectedRecords } from '../../repo/restore-feed.js';
import type { RestoreTally } from '../../repo/restore-record.js';
import { formatBytes } from '../format.js';
import { displayName, jsonName } from '../names.js';
import { EXIT, Output, UsageError, addOutputOptions, oneLineErrors, type OutputOptions } from '../output.js';
import { insidePath } from './ls.js';
import { openToRead, resolveSnapshot } from './read-repository.js';
import { checkTarget } from './restore-target.js';

interface RestoreOptions extends OutputOptions {
  path?: string[];
  overwrite?: boolean;
  dryRun?: boolean;
  numericIds?: boolean;
}

export function registerRestore(program: Command): void {
  const command = program
    .command('restore')
    .description('write a snapshot (latest by default), or the paths given, into TARGET')
    .configureOutput(oneLineErrors('usage: lb restore [options] REPOSITORY [SNAPSHOT] TARGET (lb restore --help lists the options)'))
    .argument('<repository>', 'lb repository: a local path')
    .argument('[snapshot]', 'a snapshot name, a unique prefix of one (2026.11), or latest')
    .argument('<target>', 'a local directory that does not exist yet (its parent does) or is empty')
    .option('--path <path>', 'restore only this path of the snapshot, with the directories leading to it (repeatable)', collect)
    .option('--overwrite', 'write into a directory that is not empty: replace each restored path, leave everything else alone')
    .option('--dry-run', 'list what would be written, write nothing')
    .option('--numeric-ids', "owners and groups by number: the snapshot's numbers are this machine's already, so the same as without it");
  // With two operands after the repository they are SNAPSHOT TARGET; with one, TARGET. Commander fills operands
  // in order and would call TARGET missing: its (untyped) missing-argument check lets the one-operand form through.
  const checked = command as unknown as { missingArgument(name: string): void };
  const missingArgument = checked.missingArgument.bind(command);
  checked.missingArgument = (name) => {
    if (name !== 'target' || command.args.length < 2) missingArgument(name);
  };
  addOutputOptions(command, {}).action((repository: string, first: string, second: string | undefined, opts: RestoreOptions) => {
    process.exitCode = second === undefined ? restoreCommand(repository, undefined, first, opts) : restoreCommand(repository, first, second, opts);
  });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function restoreCommand(repositoryArg: string, snapshotWord: string | undefined, targetArg: string, opts: RestoreOptions): number {
  const out = new Output(opts);
  const reader = openToRead(repositoryArg, 'restore');
  const snapshot = resolveSnapshot(reader, snapshotWord);
  const paths = (opts.path ?? []).map(insidePath);
  const missing = firstMissingPath(reader, snapshot, paths);
  if (missing !== null) throw new UsageError(`no ${displayName(missing)} in snapshot ${snapshot}; nothing restored`);
  const target = checkTarget(targetArg, reader.root, opts.overwrite ?? false);
  if (opts.dryRun) return dryRun(out, reader, snapshot, paths);
  const problems: Record<string, string>[] = [];
  // The same with --overwrite: every entry is renamed into place and no symlink followed, over whatever is there.
  const tally = restoreLocally(reader, snapshot, target, { paths, setOwner: process.getuid?.() === 0 }, (path, text) => {
    problems.push({ ...jsonName(path), problem: text });
    out.warn(`${displayName(path.length === 0 ? Buffer.from('.') : path)}: ${text}`);
  });
  const status = tally.damaged > 0 ? 'damaged' : tally.problems > 0 ? 'partial' : 'ok';
  if (out.asJson) {
    out.json({ status, snapshot, target, ...counts(tally), problems });
  } else {
    out.line(`restored ${snapshot} into ${targetArg}: ${describe(tally)}`);
  }
  return status === 'damaged' ? EXIT.damaged : status === 'partial' ? EXIT.partial : EXIT.ok;
}

function counts(tally: RestoreTally) {
  return { files: tally.files, directories: tally.directories, symlinks: tally.symlinks, bytes: tally.bytes };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function contents(tally: RestoreTally): string {
  const directories = `${tally.directories} ${tally.directories === 1 ? 'directory' : 'directories'}`;
  return `${plural(tally.files, 'file')}, ${directories}, ${plural(tally.symlinks, 'symlink')}, ${formatBytes(tally.bytes)}`;
}

function describe(tally: RestoreTally): string {
  return `${contents(tally)}; ${tally.problems === 0 ? 'no problems' : plural(tally.problems, 'problem')}`;
}

/** One path per line (`.` is TARGET itself), or a JSON array of `{ type, path }`; nothing written. */
function dryRun(out: Output, reader: ReturnType<typeof openToRead>, snapshot: string, paths: Buffer[]): number {
  const tally: RestoreTally = { files: 0, directories: 0, symlinks: 0, bytes: 0, problems: 0, damaged: 0 };
  const entries: Record<string, string>[] = [];
  for (const record of selectedRecords(reader, snapshot, paths)) {
    if (record.type === 'file') (tally.files++, (tally.bytes += record.size));
    else if (record.type === 'dir') tally.directories++;
    else tally.symlinks++;
    const path = record.path.length === 0 ? Buffer.from('.') : record.path;
    if (out.asJson) entries.push({ type: record.type, ...jsonName(path) });
    else out.line(displayName(path));
  }
  if (out.asJson) out.json(entries);
  else out.line(`would restore ${snapshot}: ${contents(tally)}`);
  return EXIT.ok;
}
