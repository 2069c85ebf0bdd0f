// `lb backup SRC DST`, the default command: checks the command line, runs the
// source side and the repository side (an agent: a local child process, or
// pushed over SSH), and reports. Pushing: the source side runs here with the
// catalog. Pulling: the source side runs in the remote agent and the repository
// side here.
import { accessSync, constants, existsSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import { AgentError, Sender, type SenderStats } from '../../agent/sender.js';
import { describeFailure } from '../../agent/failure.js';
import { serve } from '../../agent/serve.js';
import { specialFilesLine } from '../../agent/skips.js';
import { sourceProblemLine } from '../../agent/source-root.js';
import { Catalog, defaultCatalogPath } from '../../catalog/catalog.js';
import { openCatalog } from '../../catalog/open.js';
import { ProtocolError } from '../../protocol/frames.js';
import type { BackupOptions, RunResult } from '../../protocol/messages.js';
import { RepositoryRefused, holdsNothing, refuseMissingParent, snapshotNameFor } from '../../repo/repository.js';
import { checkListable } from '../../scan/walk.js';
import { describeLocation, parseLocation, type Location } from '../../transport/address.js';
import { startLocalAgent, type AgentConnection } from '../../transport/local.js';
import { openSession, startRemoteAgent, type SshOptions, type SshSession } from '../../transport/ssh.js';
import { formatBytes, formatSeconds } from '../format.js';
import { Interrupted, Interruption, agentStopped, exitedWithin } from '../interrupt.js';
import { EXIT, Output, UsageError, addOutputOptions, oneLineErrors, type OutputOptions } from '../output.js';
import { Progress } from '../progress.js';

export interface BackupCommandOptions extends OutputOptions {
  always?: boolean;
  numericIds?: boolean;
  catalog?: string;
  sshI?: string;
  sshP?: string;
  sshC?: boolean;
  acceptNewHostKey?: boolean;
  remoteNode?: string;
  minutes?: string;
  /** Link-Backup's --lock: accepted, and changes nothing (lb always locks). */
  lock?: boolean;
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
    .option('--catalog <path>', 'hash cache database (default $XDG_STATE_HOME/lb/catalog.sqlite)');
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
    .option('--minutes <n>', 'time budget: start no transfer that would end later; objects stored stay, a snapshot is made only when complete (exit status 4 otherwise)')
    .action(async (source: string, repository: string, opts: BackupCommandOptions) => {
      process.exitCode = await backupCommand(source, repository, opts);
    });
}

function checkSource(source: string): string {
  let stat;
  try {
    stat = statSync(source);
  } catch {
    throw new UsageError(sourceProblemLine(source, 'missing'));
  }
  if (!stat.isDirectory()) throw new UsageError(sourceProblemLine(source, 'not-a-directory'));
  checkListable(source);
  return realpathSync(source);
}

const REPOSITORY_CHOICE = 'give a new or empty directory, or an existing lb repository';

/** Before anything is written (the catalog, say): the repository, or the directory that would hold it, must be writable. */
function checkWritable(repository: string): void {
  try {
    accessSync(existsSync(repository) ? repository : dirname(repository), constants.W_OK);
  } catch (error) {
    throw new Error(describeFailure(error));
  }
}

/** `path` is `directory` or lies beneath it; both absolute and resolved. `/` holds everything. */
function isWithin(path: string, directory: string): boolean {
  const rest = relative(directory, path);
  return rest === '' || (rest !== '..' && !rest.startsWith('../') && !isAbsolute(rest));
}

function checkRepository(repository: string, source: string | null): string {
  const absolute = resolve(repository);
  if (source !== null) {
    // Resolve through the nearest existing ancestor, so a repository to be created inside the source is caught too.
    let existing = absolute;
    while (!existsSync(existing)) existing = resolve(existing, '..');
    const real = resolve(realpathSync(existing), absolute.slice(existing.length).replace(/^\//, ''));
    if (isWithin(real, source)) {
      throw new UsageError(`repository ${repository} lies inside the source ${source}; choose a repository outside it`);
    }
  }
  if (existsSync(absolute)) {
    const stat = statSync(absolute);
    if (!stat.isDirectory()) throw new UsageError(`repository ${repository} exists and is not a directory; ${REPOSITORY_CHOICE}`);
    if (!existsSync(resolve(absolute, '.lb', 'format')) && !holdsNothing(absolute)) {
      throw new UsageError(`repository ${repository} is not empty and not an lb repository, so lb will not write there; ${REPOSITORY_CHOICE}`);
    }
  } else {
    try {
      refuseMissingParent(absolute);
    } catch (error) {
      throw error instanceof RepositoryRefused ? new UsageError(error.message) : error;
    }
  }
  checkWritable(absolute);
  return absolute;
}

function sshOptions(opts: BackupCommandOptions, notice: (line: string) => void): SshOptions {
  let port: number | undefined;
  if (opts.sshP !== undefined) {
    port = /^[0-9]{1,5}$/.test(opts.sshP) ? Number(opts.sshP) : 0;
    if (port < 1 || port > 65535) throw new UsageError(`--ssh-p wants a port number from 1 to 65535, not ${opts.sshP}`);
  }
  return {
    identityFile: opts.sshI,
    port,
    compress: opts.sshC ?? false,
    acceptNewHostKey: opts.acceptNewHostKey ?? false,
    remoteNode: opts.remoteNode,
    onNotice: notice,
  };
}

function budgetMs(minutes: string | undefined): number | undefined {
  if (minutes === undefined) return undefined;
  const value = Number(minutes);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--minutes wants a positive number of minutes, not ${minutes}`);
  return Math.round(value * 60_000);
}

interface Outcome {
  result: RunResult;
  /** Source-side figures; null when pulling (the source side ran on the remote). */
  stats: SenderStats | null;
  wire: { sent: number; received: number } | null;
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
  // Warnings stay under --quiet: they name what a snapshot is missing, or damage found in the repository.
  // A clean run, FIFOs and sockets included, says nothing.
  const out = new Output(opts);
  const onLog = (line: string) => (line.startsWith('warning: ') ? out.warn(line) : out.line(line));
  const ssh = sshOptions(opts, out.warn);
  const budget = budgetMs(opts.minutes);
  const localSource = source.kind === 'local' ? checkSource(source.path) : null;
  const localRepository = repository.kind === 'local' ? checkRepository(repository.path, localSource) : null;
  const options: BackupOptions = {
    snapshotName: snapshotNameFor(new Date(started)),
    always: opts.always ?? false,
    numericIds: opts.numericIds ?? false,
    verbose: opts.verbose ?? false,
    quickCheck: false,
    sourceLabel: localSource ?? describeLocation(source),
  };

  let outcome: Outcome;
  let catalog: Catalog | undefined;
  const interruption = Interruption.install();
  try {
    if (source.kind === 'local') {
      // No size+mtime shortcut even without a catalog: the previous snapshot may be of another source.
      // The catalog is only a cache: whatever is wrong with it is a warning (said once), never the run's failure.
      catalog = openCatalog(opts.catalog ?? defaultCatalogPath(), (line) => out.warn(`warning: ${line}`));
      try {
        outcome = await push(localSource!, repository, localRepository ?? repository.path, options, catalog, ssh, out, onLog, budget, interruption);
      } catch (error) {
        catalog?.close(); // keeps the hashes learned before the failure
        throw error;
      }
    } else {
      options.quickCheck = true; // the remote scanner has no catalog of its own
      outcome = await pull(source, localRepository!, options, ssh, onLog, budget, interruption);
    }
  } finally {
    interruption.uninstall();
  }

  const seconds = (Date.now() - started) / 1000;
  const { result, stats, wire } = outcome;
  const c = result.counts;
  const partial = result.skipCounts.unreadable > 0;
  const status = result.incomplete ? 'incomplete' : partial ? 'partial' : 'ok';
  const transferred = stats?.bytesSent ?? c.bytesReceived;
  // Neither fails: a catalog failing now is a warning, never a failed run after a published snapshot.
  catalog?.recordRun({
    source: options.sourceLabel,
    repository: describeLocation(repository),
    snapshot: result.snapshot,
    startedAt: new Date(started).toISOString(),
    seconds,
    newFiles: c.newFiles,
    copiedFiles: c.copiedFiles,
    linkedFiles: c.linkedFiles,
    bytesTransferred: transferred,
    status,
  });
  catalog?.close();

  const repositoryLabel = localRepository ?? describeLocation(repository);
  if (out.asJson) {
    out.json({
      snapshot: result.snapshot,
      created: result.created,
      source: options.sourceLabel,
      repository: repositoryLabel,
      files: { new: c.newFiles, copied: c.copiedFiles, linked: c.linkedFiles, total: c.newFiles + c.copiedFiles + c.linkedFiles },
      directories: c.directories,
      symlinks: c.symlinks,
      skipped: result.skipped,
      warnings: result.warnings,
      deferred: result.deferred,
      bytes: { scanned: stats?.bytesScanned ?? null, read: stats?.bytesRead ?? null, transferred, stored: c.bytesStored, resumed: c.bytesResumed },
      wire,
      seconds,
      status,
    });
  } else if (result.incomplete) {
    out.line(`lb: time budget of ${opts.minutes} minute(s) used up; no snapshot made, the next run goes on from here`);
    out.line(
      `  stored ${c.newFiles + c.copiedFiles} file(s), ${formatBytes(c.bytesStored)}, which stay in the repository` +
        `${result.deferred ? `; ${result.deferred} file(s) left for the next run` : ''}` +
        `${c.bytesResumed ? `; resumed ${formatBytes(c.bytesResumed)} already received` : ''}`,
    );
    out.line(`  transferred ${formatBytes(transferred)} in ${formatSeconds(seconds)}`);
  } else if (result.created) {
    out.line(`lb: snapshot ${result.snapshot} of ${options.sourceLabel} in ${repositoryLabel}`);
    out.line(
      `  files: ${c.newFiles} new, ${c.copiedFiles} copied, ${c.linkedFiles} linked` +
        ` (${c.newFiles + c.copiedFiles + c.linkedFiles} files${stats ? ', ' + formatBytes(stats.bytesScanned) : ''}; ${c.directories} directories, ${c.symlinks} symlinks)`,
    );
    out.line(
      `  transferred ${formatBytes(transferred)}, stored ${formatBytes(c.bytesStored)}` +
        (stats ? `, read ${formatBytes(stats.bytesRead)} from the source` : '') +
        ` in ${formatSeconds(seconds)}`,
    );
  } else {
    out.line(`lb: nothing changed since the latest snapshot in ${repositoryLabel}; none made (--always makes one anyway)`);
  }
  if (result.skipCounts.special > 0 && !out.asJson) out.line(`  ${specialFilesLine(result.skipCounts.special)}`);
  if (wire && !out.asJson) out.line(`  on the wire: ${formatBytes(wire.sent)} sent, ${formatBytes(wire.received)} received`);
  if (partial && !out.asJson) out.warn(`${result.skipCounts.unreadable} path(s) could not be read and are missing from this snapshot`);
  // The repository side had finished before it heard of the signal: what it did stands, and is reported as usual.
  if (interruption.signal) out.warn(`${interruption.signal} came too late to stop this run, which had finished as reported`);
  return result.incomplete ? EXIT.incomplete : partial ? EXIT.partial : EXIT.ok;
}

function wireOf(session: SshSession | null): Outcome['wire'] {
  return session ? { sent: session.socket.bytesWritten, received: session.socket.bytesRead } : null;
}

/** The source is here: scan with the catalog, and feed a local or remote repository-side agent. */
async function push(
  source: string,
  repository: Location,
  repositoryPath: string,
  options: BackupOptions,
  catalog: Catalog | undefined,
  ssh: SshOptions,
  out: Output,
  onLog: (line: string) => void,
  budget: number | undefined,
  interruption: Interruption,
): Promise<Outcome> {
  let session: SshSession | null = null;
  let agent: AgentConnection;
  if (repository.kind === 'remote') {
    session = await interruption.orStop(openSession(repository.host, repository.user, ssh));
    try {
      agent = await interruption.orStop(startRemoteAgent(session, ssh, []));
    } catch (error) {
      session.close();
      throw error;
    }
  } else agent = startLocalAgent();
  interruption.whileRunning(() => agent.interrupt());

  const sender = new Sender(agent.input, agent.output, {
    sourceRoot: source,
    repository: repositoryPath,
    cache: catalog?.contentHashes,
    options,
    onLog,
    remote: session !== null,
    budgetMs: budget,
  });
  const progress = out.showsProgress
    ? await Progress.start({
        stats: sender.stats,
        get entriesSent() {
          return sender.entriesSent;
        },
        get entriesSettled() {
          return sender.entriesSettled;
        },
      })
    : null;
  const forgetProgress = progress ? interruption.onSignalRestore(progress.stop) : null;
  try {
    const result = await sender.run();
    agent.output.end();
    await agent.exited;
    return { result, stats: sender.stats, wire: wireOf(session) };
  } catch (error) {
    if (interruption.signal) {
      // The agent was asked to stop and did not finish: once it is gone, its lock is gone too.
      await agentStopped(agent);
      throw interruption.interrupted();
    }
    agent.kill();
    if (error instanceof AgentError && error.refused) throw new UsageError(error.message);
    if (error instanceof ProtocolError && session) {
      // This side's verdict stands: a repository side that broke the protocol may say anything.
      throw new Error(session.lost ?? refusedRemote(session, error.message, 'the backup was stopped'));
    }
    throw new Error(session?.lost ?? (await agentDeath(agent)) ?? agentFailure(agent, error as Error));
  } finally {
    forgetProgress?.();
    progress?.stop();
    session?.close();
  }
}

/** The agent's own words when it has any, else what went wrong on this side; one line. */
function agentFailure(agent: AgentConnection, error: Error): string {
  const detail = agent.stderr().trim();
  return (error instanceof AgentError || error instanceof ProtocolError || !detail ? error.message : detail).split('\n')[0]!;
}

/** The remote agent broke the protocol: say so, and what to do about the copy cached there. */
function refusedRemote(session: SshSession, detail: string, consequence: string): string {
  const where = `${session.target.user}@${session.target.alias}`;
  return (
    `refused what ${where} sent (${detail}); ${consequence}. ` +
    `The lb agent cached there (~/.cache/lb/agent-*.cjs) may be damaged or tampered with: check that host, then delete the file so lb sends a fresh one`
  );
}

/** If the agent was killed (it then said nothing), say so rather than report a broken pipe. */
async function agentDeath(agent: AgentConnection): Promise<string | null> {
  const exited = await Promise.race([agent.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 2000).unref())]);
  const signal = exited === null ? null : agent.exitSignal();
  if (signal === null || signal === 'SIGTERM') return null; // SIGTERM is ours, sent just above
  return `the repository side (lb agent) was killed by ${signal}; nothing was published, and the next run takes over from here`;
}

/** The source is remote: its agent scans and sends; the repository side runs here. */
async function pull(
  source: Extract<Location, { kind: 'remote' }>,
  repository: string,
  options: BackupOptions,
  ssh: SshOptions,
  onLog: (line: string) => void,
  budget: number | undefined,
  interruption: Interruption,
): Promise<Outcome> {
  const session = await interruption.orStop(openSession(source.host, source.user, ssh));
  try {
    const config = Buffer.from(JSON.stringify({ sourceRoot: source.path, repository, options, budgetMs: budget })).toString('base64');
    const agent = await interruption.orStop(startRemoteAgent(session, ssh, ['source', config]));
    // The repository side runs here: an interruption ends its input at once (it aborts as if the source went
    // away), whatever the remote does with the signal and the end of input it is sent.
    const input = agent.input.pipe(new PassThrough());
    interruption.whileRunning((signal) => {
      agent.interrupt();
      input.destroy(new Interrupted(signal));
    });
    const outcome = await serve(input, agent.output, { onLog, own: { repository, options } });
    if (interruption.signal && !outcome.result) {
      await exitedWithin(agent, 2000);
      throw interruption.interrupted();
    }
    if (outcome.failure === 'bad-source') {
      // Refused before its hello: nothing was created, locked or written here.
      agent.kill();
      throw new UsageError(sourceProblemLine(describeLocation(source), outcome.sourceProblem!));
    }
    if (outcome.failure === 'protocol' || outcome.failure === 'local' || outcome.failure === 'refused') {
      // This side's verdict stands; a remote that broke the protocol may say anything, or never exit.
      agent.kill();
      if (session.lost) throw new Error(session.lost);
      if (outcome.failure === 'refused') throw new UsageError(outcome.error!);
      if (outcome.failure === 'local') throw new Error(outcome.error!);
      throw new Error(refusedRemote(session, outcome.error!, 'no snapshot was made'));
    }
    agent.output.end();
    const code = await agent.exited;
    if (!outcome.result) {
      // The remote's own words first: they say why it stopped (a missing source, say).
      const remote = agent.stderr().trim().split('\n')[0]?.replace(/^lb agent: /, '');
      throw new Error(session.lost ?? (remote || outcome.error || `the remote agent exited with status ${code}`));
    }
    return { result: outcome.result, stats: null, wire: wireOf(session) };
  } finally {
    session.close();
  }
}
