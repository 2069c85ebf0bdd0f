// `lb prune REPO --keep-…`: remove the snapshots the policy does not keep, then
// the objects no snapshot links (repo/prune.ts); `--dry-run` shows what would go
// and what that frees.
import type { Command } from 'commander';
import type { KeepPolicy } from '../../diff/retention.js';
import { prune, type PruneOutcome } from '../../repo/prune.js';
import { parseLocation } from '../../transport/address.js';
import { formatBytes } from '../format.js';
import { addKeepOptions, policyFrom, type KeepCommandOptions } from '../keep-options.js';
import { EXIT, Output, UsageError, addOutputOptions, oneLineErrors, type OutputOptions } from '../output.js';

interface PruneCommandOptions extends OutputOptions, KeepCommandOptions {
  dryRun?: boolean;
}

export function registerPrune(program: Command): void {
  const command = program
    .command('prune')
    .description("remove the snapshots a keep-policy does not keep (restic's --keep-* rules), then the objects no snapshot links")
    .configureOutput(oneLineErrors('usage: lb prune [options] REPOSITORY --keep-… (lb prune --help lists the options)'))
    .argument('<repository>', 'lb repository (a local path)')
    .option('--dry-run', 'remove nothing: list every snapshot with keep or remove and why, and what removing would free');
  addOutputOptions(addKeepOptions(command), { verbose: 'list every snapshot with keep or remove and the rules that keep it', quiet: 'print nothing on success' }).action(async (repository: string, opts: PruneCommandOptions) => {
    process.exitCode = pruneCommand(repository, opts);
  });
}

function pruneCommand(repositoryArg: string, opts: PruneCommandOptions): number {
  const policy = policyFrom(opts);
  if (policy === null) throw new UsageError('prune wants a policy: at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within');
  const where = parseLocation(repositoryArg);
  if (where.kind === 'remote') {
    throw new UsageError(`lb prune works on a local repository for now; run it on ${where.host} (ssh ${where.host} lb prune ${where.path} …)`);
  }
  const out = new Output(opts);
  const outcome = prune(where.path, policy, { dryRun: opts.dryRun ?? false, now: new Date() });
  report(out, outcome);
  return EXIT.ok;
}

/**
 * `lb backup --keep-…`: the prune after a backup that ended well. One that cannot run (another run took the lock
 * meanwhile) leaves the snapshot made: one line saying both, exit 1, and under --json no second JSON value.
 */
export function pruneAfterBackup(out: Output, repositoryPath: string, policy: KeepPolicy): number {
  let outcome: PruneOutcome;
  try {
    outcome = prune(repositoryPath, policy, { dryRun: false, now: new Date() });
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
    for (const v of verdicts) out.line(`${v.keep ? 'keep  ' : 'remove'} ${v.name}${v.keep ? `  (${v.reasons.join(', ')})` : ''}`);
  }
  if (predicted) out.line(`lb: would remove ${removed.length} of ${verdicts.length} snapshot(s), freeing ${formatBytes(predicted.bytes)} in ${predicted.objects} object(s)`);
  else if (removed.length === 0 && outcome.objectsRemoved === 0) out.line(`lb: nothing to remove: the policy keeps all ${verdicts.length} snapshot(s)`);
  else out.line(`lb: removed ${removed.length} of ${verdicts.length} snapshot(s) and ${outcome.objectsRemoved} object(s), freeing ${formatBytes(outcome.bytesFreed)}`);
}
