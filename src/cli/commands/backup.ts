// `lb backup SRC DST`, the default command: checks the command line, runs the
// source side and the repository side (an agent: a local child process, or
// pushed over SSH), and reports. Pushing (backup/push.ts): the source side runs
// here with the catalog. Pulling (backup/pull.ts): the source side runs in the
// remote agent and the repository side here.
import type { Command } from 'commander';
import { ReadLog } from '../../agent/read-log.js';
import { Catalog, defaultCatalogPath } from '../../catalog/catalog.js';
import { openCatalog } from '../../catalog/open.js';
import type { BackupOptions } from '../../protocol/messages.js';
import { snapshotNameFor } from '../../repo/repository.js';
import { Selection } from '../../scan/selection.js';
import { describeLocation, parseLocation, type Location } from '../../transport/address.js';
import { budgetMs, checkRepository, checkSource, sshOptions, type SshCommandOptions } from '../backup/checks.js';
import type { Outcome } from '../backup/outcome.js';
import { pull } from '../backup/pull.js';
import { push } from '../backup/push.js';
import { showEvent } from '../backup/events.js';
import { MissingPaths, printSeedingSummary, purposeFrom, refuseSelectionOnStore, type SeedingCommandOptions } from '../backup/seeding.js';
import { addSelectionOptions, checkListedPaths, selectionFrom, type SelectionCommandOptions } from '../backup/selection-options.js';
import { EXIT_FOR, bytesTransferred, printSummary, runStatus } from '../backup/summary.js';
import { verifyBackup } from '../backup/verify.js';
import { Interruption } from '../interrupt.js';
import { addKeepOptions, policyFrom, type KeepCommandOptions } from '../keep-options.js';
import { pruneAfterBackup } from './prune.js';
import { EXIT, Output, UsageError, addOutputOptions, oneLineErrors, type OutputOptions } from '../output.js';
import { seriesFrom, type SeriesCommandOptions } from '../series-option.js';

export interface BackupCommandOptions extends OutputOptions, SshCommandOptions, SelectionCommandOptions, SeedingCommandOptions, KeepCommandOptions, SeriesCommandOptions {
  always?: boolean;
  numericIds?: boolean;
  catalog?: string;
  minutes?: string;
  /** Link-Backup's --lock: accepted, and changes nothing (lb always locks). */
  lock?: boolean;
  verify?: boolean;
}

export function registerBackup(program: Command): void {
  const command = program
    .command('backup', { isDefault: true })
    .description('back up directory SOURCE into repository REPOSITORY (created if missing)')
    .configureOutput(oneLineErrors('usage: lb [options] SOURCE REPOSITORY (lb backup --help lists the options)'))
    .argument('<source>', 'directory to back up: a local path or [user@]host:path')
    .argument('<repository>', 'lb repository (created when missing or empty): a local path or [user@]host:path')
    .option('--always', 'make a snapshot even when nothing changed since the latest one')
    .option('--numeric-ids', 'keep numeric owner and group ids instead of mapping them by name (root only)')
    .option('--catalog <path>', 'hash cache database (default $XDG_STATE_HOME/lb/catalog.sqlite)')
    .option('--series <name>', "put the snapshots in REPOSITORY/NAME/, one series of many sharing the repository's store (default: at its top level)");
  addOutputOptions(command, {
    verbose: 'list what happens to every entry',
    quiet: 'print only errors and warnings (nothing on a clean run)',
    progress: true,
  })
    .option('--ssh-i <file>', 'SSH identity file (private key), tried before the configured ones')
    .option('--ssh-p <port>', 'SSH port, overriding ~/.ssh/config')
    .option('--ssh-C', 'compress the SSH connection')
    .option('--accept-new-host-key', 'record an unknown host key in ~/.ssh/known_hosts and go on (a changed key is still refused)')
    .option('--remote-node <path>', "the remote's node executable (default: node from PATH)")
    .option('--lock', 'accepted for Link-Backup compatibility; lb always locks the repository while it writes')
    .option('--verify', 'then compare the snapshot with the source: every entry, and the content of every file this run read (exit status 6 on a difference)')
    .option('--minutes <n>', 'time budget: start no transfer that would end later; objects stored stay, a snapshot is made only when complete (exit status 4 otherwise)')
    .option('--showfiles', 'make no snapshot and write nothing: print the paths of the source files whose content REPOSITORY does not hold')
    .option('--catalogonly', "store the content of SOURCE's files in REPOSITORY and make no snapshot (seeding from a transfer disk)");
  addKeepOptions(addSelectionOptions(command)).action(async (source: string, repository: string, opts: BackupCommandOptions) => {
    process.exitCode = await backupCommand(source, repository, opts);
  });
}

async function backupCommand(sourceArg: string, repositoryArg: string, opts: BackupCommandOptions): Promise<number> {
  const started = Date.now();
  let source: Location;
  let repository: Location;
  try {
    source = parseLocation(sourceArg);
    repository = parseLocation(repositoryArg);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (source.kind === 'remote' && repository.kind === 'remote') {
    throw new UsageError('source and repository cannot both be remote; run lb on one of the two hosts');
  }
  const purpose = purposeFrom(opts);
  const series = seriesFrom(opts);
  const keep = policyFrom(opts);
  if (keep && purpose !== 'backup') throw new UsageError('--keep-* prunes after a backup; --showfiles and --catalogonly make none');
  const selection = selectionFrom(opts);
  // Warnings stay under --quiet: they name what a snapshot is missing, or damage found in the repository.
  // A clean run, FIFOs and sockets included, says nothing.
  const out = new Output(opts);
  const missing = purpose === 'showfiles' ? new MissingPaths(opts.null ?? false, out, showEvent(out)) : null;
  const onEvent = missing?.onEvent ?? showEvent(out);
  const ssh = sshOptions(opts, out.warn);
  const budget = budgetMs(opts.minutes);
  const localSource = source.kind === 'local' ? checkSource(source.path) : null;
  refuseSelectionOnStore(purpose, selection, localSource);
  if (localSource) checkListedPaths(selection, localSource, opts.filelist);
  const localRepository = repository.kind === 'local' ? checkRepository(repository.path, localSource, purpose, series) : null;
  const options: BackupOptions = {
    snapshotName: snapshotNameFor(new Date(started)),
    always: opts.always ?? false,
    numericIds: opts.numericIds ?? false,
    verbose: opts.verbose ?? false,
    quickCheck: false,
    sourceLabel: localSource ?? describeLocation(source),
    purpose,
    ...(series === null ? {} : { series }),
  };

  let outcome: Outcome;
  let catalog: Catalog | undefined;
  const readLog = opts.verify && source.kind === 'local' ? new ReadLog() : undefined;
  const interruption = Interruption.install();
  try {
    if (source.kind === 'local') {
      // No size+mtime shortcut even without a catalog: the previous snapshot may be of another source.
      // The catalog is only a cache: whatever is wrong with it is a warning (said once), never the run's failure.
      catalog = openCatalog(opts.catalog ?? defaultCatalogPath(), (line) => out.warn(`warning: ${line}`));
      try {
        outcome = await push(localSource!, repository, localRepository ?? repository.path, options, catalog, ssh, out, onEvent, budget, interruption, readLog, selection);
      } catch (error) {
        catalog?.close(); // keeps the hashes learned before the failure
        throw error;
      }
    } else {
      options.quickCheck = true; // the remote scanner has no catalog of its own
      outcome = await pull(source, localRepository!, options, ssh, onEvent, budget, interruption, opts.verify, selection);
    }
  } finally {
    interruption.uninstall();
  }
  // Only after a run that ended well: a failed one may have named paths it had no right to.
  missing?.flush();

  const seconds = (Date.now() - started) / 1000;
  const { result } = outcome;
  const c = result.counts;
  const status = runStatus(outcome);
  // Neither fails: a catalog failing now is a warning, never a failed run after a published snapshot.
  // --showfiles ran no backup: its hashes are kept, no run is recorded.
  if (purpose !== 'showfiles') catalog?.recordRun({
    source: options.sourceLabel,
    repository: describeLocation(repository),
    snapshot: result.snapshot,
    startedAt: new Date(started).toISOString(),
    seconds,
    newFiles: c.newFiles,
    copiedFiles: c.copiedFiles,
    linkedFiles: c.linkedFiles,
    bytesTransferred: bytesTransferred(outcome),
    status,
  });
  catalog?.close();

  const facts = { source: options.sourceLabel, repository: localRepository ?? describeLocation(repository), series: options.series, seconds, minutes: opts.minutes };
  if (purpose !== 'backup' && !result.incomplete) printSeedingSummary(out, outcome, facts.repository, seconds, missing);
  else if (opts.verify) {
    const remote = outcome.session && { session: outcome.session, ssh };
    const source = outcome.pulled ? { pulled: outcome.pulled } : { sourceRoot: localSource!, readLog: readLog!, remote, selection: new Selection(selection) };
    await verifyBackup(out, outcome, facts, { repositoryPath: localRepository ?? repository.path, numericIds: options.numericIds, series: options.series, ...source });
  } else printSummary(out, outcome, facts);
  // The repository side had finished before it heard of the signal: what it did stands, and is reported as usual.
  if (interruption.signal) out.warn(`${interruption.signal} came too late to stop this run, which had finished as reported`);
  if (missing?.unlistable) return EXIT.partial;
  const ended = runStatus(outcome);
  // The policy only after a backup that ended well: never after a failed, partial or incomplete one.
  if (keep && ended === 'ok') return pruneAfterBackup(out, repository.kind === 'remote' ? { remote: repository, ssh } : { local: localRepository! }, keep, series);
  return EXIT_FOR[ended];
}
