// `lb restore REPO [SNAPSHOT] TARGET [--path P]...`: writes a snapshot, or some of
// its subtrees, into a directory: both local (repo/restore.ts), or one of the two
// over SSH through lb's agent (cli/restore-remote.ts).
import type { Command } from 'commander';
import { checkPathsInSnapshot, openRepository, resolveSnapshot } from '../../read/open.js';
import { checkTarget, insideLocalRepository } from '../../read/restore-target.js';
import type { RepositoryReader } from '../../repo/reader.js';
import { restoreLocally } from '../../repo/restore.js';
import { selectedRecords } from '../../repo/restore-feed.js';
import type { RestoreRecord, RestoreTally } from '../../repo/restore-record.js';
import { parseLocation, type Location } from '../../transport/address.js';
import { sshOptions, type SshCommandOptions } from '../backup/checks.js';
import { formatBytes } from '../format.js';
import { displayName, jsonName } from '../names.js';
import { EXIT, Output, UsageError, addOutputOptions, oneLineErrors, type OutputOptions } from '../output.js';
import { restoreFromRemote, restoreToRemote, type RemoteRestore, type RestoreSink } from '../restore-remote.js';
import { Interrupted, Interruption } from '../interrupt.js';
import { insidePath } from './ls.js';
import { addSshOptions } from './read-repository.js';
import { addSeriesOption, seriesFrom, type SeriesCommandOptions } from '../series-option.js';

interface RestoreOptions extends OutputOptions, SshCommandOptions, SeriesCommandOptions {
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
    .argument('<repository>', 'lb repository: a local path or [user@]host:path')
    .argument('[snapshot]', 'a snapshot name, a unique prefix of one (2026.11), or latest')
    .argument('<target>', 'a directory that does not exist yet (its parent does) or is empty: a local path or [user@]host:path')
    .option('--path <path>', 'restore only this path of the snapshot, with the directories leading to it (repeatable)', collect)
    .option('--overwrite', 'write into a directory that is not empty: replace each restored path, leave everything else alone')
    .option('--dry-run', 'list what would be written, write nothing')
    .option('--numeric-ids', "owners and groups by the snapshot's numbers; without it, a restore to or from another machine maps them by name");
  // With two operands after the repository they are SNAPSHOT TARGET; with one, TARGET. Commander fills operands
  // in order and would call TARGET missing: its (untyped) missing-argument check lets the one-operand form through.
  const checked = command as unknown as { missingArgument(name: string): void };
  const missingArgument = checked.missingArgument.bind(command);
  checked.missingArgument = (name) => {
    if (name !== 'target' || command.args.length < 2) missingArgument(name);
  };
  addOutputOptions(addSeriesOption(addSshOptions(command), 'top level'), {}).action(async (repository: string, first: string, second: string | undefined, opts: RestoreOptions) => {
    process.exitCode = second === undefined ? await restoreCommand(repository, undefined, first, opts) : await restoreCommand(repository, first, second, opts);
  });
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

async function restoreCommand(repositoryArg: string, snapshotWord: string | undefined, targetArg: string, opts: RestoreOptions): Promise<number> {
  const out = new Output(opts);
  const from = location(repositoryArg);
  const to = location(targetArg);
  const paths = (opts.path ?? []).map(insidePath);
  const series = seriesFrom(opts);
  const overwrite = opts.overwrite ?? false;
  const problems: Record<string, string>[] = [];
  const sink: RestoreSink = {
    problem: (path, text) => {
      problems.push({ ...jsonName(path), problem: text });
      out.warn(`${displayName(path.length === 0 ? Buffer.from('.') : path)}: ${text}`);
    },
  };
  if (from.kind === 'remote') {
    if (to.kind === 'remote') throw new UsageError('the repository and the target cannot both be remote; run lb on one of the two machines');
    // Checked here before anything is sent; whether it lies inside the repository, once the agent has said which that is.
    checkTarget(to.path, targetArg, overwrite, () => false, repositoryArg);
    const ssh = sshOptions(opts, out.warn);
    const target = { path: to.path, label: targetArg, overwrite };
    if (opts.dryRun) {
      const listing = new Listing(out);
      const { snapshot } = await restoreFromRemote(from, snapshotWord, paths, target, opts.numericIds ?? false, { ...sink, listed: (_name, record) => listing.add(record) }, ssh, series);
      return listing.end(snapshot);
    }
    const restored = await restoreFromRemote(from, snapshotWord, paths, target, opts.numericIds ?? false, sink, ssh, series);
    return summarize(out, restored.snapshot, targetArg, restored.tally, problems, restored.wire);
  }
  const reader = openRepository(from.path, series);
  const snapshot = resolveSnapshot(reader, snapshotWord);
  checkPathsInSnapshot(reader, snapshot, paths);
  if (to.kind === 'remote') {
    const options = { overwrite, numericIds: opts.numericIds ?? false, dryRun: opts.dryRun ?? false };
    const restored = await restoreToRemote(reader, snapshot, paths, to, options, sink, sshOptions(opts, out.warn));
    if (opts.dryRun) return dryRun(out, reader, snapshot, paths);
    return summarize(out, snapshot, targetArg, restored.tally, problems, restored.wire);
  }
  const target = checkTarget(to.path, targetArg, overwrite, insideLocalRepository(reader.root), repositoryArg);
  if (opts.dryRun) return dryRun(out, reader, snapshot, paths);
  // The same with --overwrite: every entry is renamed into place and no symlink followed, over whatever is there.
  const interruption = Interruption.install();
  try {
    const stopped = () => interruption.signal !== null;
    const restored = await restoreLocally(reader, snapshot, target, { paths, setOwner: process.getuid?.() === 0, stopped }, sink.problem);
    if (restored.stopped) {
      const done = restored.tally;
      throw new Interrupted(interruption.signal!, `interrupted; the restore into ${targetArg} is incomplete (${done.files} files written whole, none half)`);
    }
    return summarize(out, snapshot, targetArg, restored.tally, problems, null);
  } finally {
    interruption.uninstall();
  }
}

function location(arg: string): Location {
  try {
    return parseLocation(arg);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The closing line or JSON object, and the exit status the tally comes to. */
function summarize(out: Output, snapshot: string, targetArg: string, tally: RestoreTally, problems: Record<string, string>[], wire: RemoteRestore['wire']): number {
  const status = tally.damaged > 0 ? 'damaged' : tally.problems > 0 ? 'partial' : 'ok';
  if (out.asJson) {
    out.json({ status, snapshot, target: targetArg, ...counts(tally), problems, ...(wire ? { wire } : {}) });
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

/** A dry run's output: one path per line (`.` is TARGET itself), or a JSON array of `{ type, path }`; nothing written. */
class Listing {
  private readonly tally: RestoreTally = { files: 0, directories: 0, symlinks: 0, bytes: 0, problems: 0, damaged: 0 };
  private readonly entries: Record<string, string>[] = [];

  constructor(private readonly out: Output) {}

  add(record: { type: RestoreRecord['type']; path: Buffer; size: number }): void {
    const tally = this.tally;
    if (record.type === 'file') (tally.files++, (tally.bytes += record.size));
    else if (record.type === 'dir') tally.directories++;
    else tally.symlinks++;
    const path = record.path.length === 0 ? Buffer.from('.') : record.path;
    if (this.out.asJson) this.entries.push({ type: record.type, ...jsonName(path) });
    else this.out.line(displayName(path));
  }

  end(snapshot: string): number {
    if (this.out.asJson) this.out.json(this.entries);
    else this.out.line(`would restore ${snapshot}: ${contents(this.tally)}`);
    return EXIT.ok;
  }
}

function dryRun(out: Output, reader: RepositoryReader, snapshot: string, paths: Buffer[]): number {
  const listing = new Listing(out);
  for (const record of selectedRecords(reader, snapshot, paths)) listing.add(record);
  return listing.end(snapshot);
}
