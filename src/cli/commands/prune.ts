// `lb prune REPO --keep-…`: remove the snapshots the policy does not keep, then
// the objects no snapshot links (repo/prune.ts); `--dry-run` shows what would go
// and what that frees.
import type { Command } from 'commander';
import type { KeepPolicy } from '../../diff/retention.js';
import { prune, type PruneOutcome } from '../../repo/prune.js';
import { parseLocation, type Location } from '../../transport/address.js';
import { sshOptions, type SshCommandOptions } from '../backup/checks.js';
import { pruneRemote } from '../prune-remote.js';
import type { Remote } from '../remote-agent.js';
import type { SshOptions } from '../../transport/ssh.js';
import { addSshOptions } from './read-repository.js';
import { formatBytes } from '../format.js';
import { addKeepOptions, policyFrom, type KeepCommandOptions } from '../keep-options.js';
import { EXIT, Output, UsageError, addOutputOptions, oneLineErrors, type OutputOptions } from '../output.js';
import { seriesFrom, type SeriesCommandOptions } from '../series-option.js';
import { SeriesNotFound } from '../../repo/series.js';

interface PruneCommandOptions extends OutputOptions, KeepCommandOptions, SshCommandOptions, SeriesCommandOptions {
  dryRun?: boolean;
}

export function registerPrune(program: Command): void {
  const command = program
    .command('prune')
    .description("remove the snapshots a keep-policy does not keep (restic's --keep-* rules), then the objects no snapshot links")
    .configureOutput(oneLineErrors('usage: lb prune [options] REPOSITORY --keep-… (lb prune --help lists the options)'))
    .argument('<repository>', 'lb repository: a local path or [user@]host:path')
    .option('--dry-run', 'remove nothing: list every snapshot with keep or remove and why, and what removing would free')
    .option('--series <name>', 'apply the policy to series NAME alone (default: within each series, and the top level, each on its own)');
  addOutputOptions(addSshOptions(addKeepOptions(command)), { verbose: 'list every snapshot with keep or remove and the rules that keep it', quiet: 'print nothing on success' }).action(async (repository: string, opts: PruneCommandOptions) => {
    process.exitCode = await pruneCommand(repository, opts);
  });
}

async function pruneCommand(repositoryArg: string, opts: PruneCommandOptions): Promise<number> {
  const policy = policyFrom(opts);
  const series = seriesFrom(opts);
  if (policy === null) throw new UsageError('prune wants a policy: at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within');
  let where: Location;
  try {
    where = parseLocation(repositoryArg);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const out = new Output(opts);
  const dryRun = opts.dryRun ?? false;
  let outcome: PruneOutcome;
  try {
    outcome = where.kind === 'remote' ? await pruneRemote(where, policy, dryRun, series, sshOptions(opts, out.warn)) : prune(where.path, policy, { dryRun, now: new Date(), series });
  } catch (error) {
    throw error instanceof SeriesNotFound ? new UsageError(error.message) : error; // as every command says it
  }
  report(out, outcome);
  return EXIT.ok;
}

/**
 * `lb backup --keep-…`: the prune after a backup that ended well. One that cannot run (another run took the lock
 * meanwhile) leaves the snapshot made: one line saying both, exit 1, and under --json no second JSON value.
 */
export async function pruneAfterBackup(
  out: Output,
  where: { local: string } | { remote: Remote; ssh: SshOptions },
  policy: KeepPolicy,
  series: string | null,
): Promise<number> {
  let outcome: PruneOutcome;
  try {
    outcome = 'local' in where ? prune(where.local, policy, { dryRun: false, now: new Date(), series }) : await pruneRemote(where.remote, policy, false, series, where.ssh);
  } catch (error) {
    out.warn(`the backup ended well, but nothing was pruned: ${error instanceof Error ? error.message : String(error)}`);
    return EXIT.error;
  }
  report(out, outcome, true);
  return EXIT.ok;
}

/** `afterBackup`: only the closing line, as text (on stderr under the backup's --json, whose object is out already). */
export function report(out: Output, outcome: PruneOutcome, afterBackup = false): void {
  const { verdicts, removed, predicted } = outcome;
  if (out.asJson && !afterBackup) {
    out.json({
      dryRun: outcome.dryRun,
      snapshots: verdicts,
      removed,
      ...(predicted ? { predicted } : { freed: { objects: outcome.objectsRemoved, bytes: outcome.bytesFreed } }),
    });
    return;
  }
  if (outcome.dryRun || (out.verbose && !afterBackup)) {
    for (const v of verdicts) out.line(`${v.keep ? 'keep  ' : 'remove'} ${v.series === undefined ? '' : `${v.series}/`}${v.name}${v.keep ? `  (${v.reasons.join(', ')})` : ''}`);
  }
  if (predicted) out.line(`lb: would remove ${removed.length} of ${verdicts.length} snapshot(s), freeing ${formatBytes(predicted.bytes)} in ${predicted.objects} object(s)`);
  else if (removed.length === 0 && outcome.objectsRemoved === 0) out.line(`lb: nothing to remove: the policy keeps all ${verdicts.length} snapshot(s)`);
  else out.line(`lb: removed ${removed.length} of ${verdicts.length} snapshot(s) and ${outcome.objectsRemoved} object(s), freeing ${formatBytes(outcome.bytesFreed)}`);
}
