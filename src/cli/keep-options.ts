// The --keep-* options of `lb prune` and of `lb backup` (applied after a
// successful backup): restic's forget policy, parsed into diff/retention.ts's terms.
import type { Command } from 'commander';
import { PolicyError, checkPolicy, parseCount, parseDuration, type KeepPolicy } from '../diff/retention.js';
import { UsageError } from './status.js';

export interface KeepCommandOptions {
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
}

const COUNTS = [
  ['last', 'keepLast', 'the N newest snapshots'],
  ['hourly', 'keepHourly', 'the newest snapshot of each of the last N hours that have one'],
  ['daily', 'keepDaily', 'the newest snapshot of each of the last N days that have one'],
  ['weekly', 'keepWeekly', 'the newest snapshot of each of the last N ISO weeks that have one'],
  ['monthly', 'keepMonthly', 'the newest snapshot of each of the last N months that have one'],
  ['yearly', 'keepYearly', 'the newest snapshot of each of the last N years that have one'],
] as const;

export function addKeepOptions(command: Command): Command {
  for (const [rule, , what] of COUNTS) command.option(`--keep-${rule} <n>`, `keep ${what} ("unlimited": all)`);
  return command.option('--keep-within <duration>', 'keep every snapshot within DURATION (1y2m3d4h) of the newest');
}

/** The policy the options name; null when they name none (a UsageError for a bad value). */
export function policyFrom(opts: KeepCommandOptions): KeepPolicy | null {
  const policy: KeepPolicy = {};
  try {
    for (const [rule, key] of COUNTS) {
      const text = opts[key];
      if (text !== undefined) policy[rule] = parseCount(text, `--keep-${rule}`);
    }
    if (opts.keepWithin !== undefined) policy.within = parseDuration(opts.keepWithin, '--keep-within');
    if (Object.keys(policy).length === 0) return null;
    checkPolicy(policy);
  } catch (error) {
    if (error instanceof PolicyError) throw new UsageError(error.message);
    throw error;
  }
  return policy;
}
