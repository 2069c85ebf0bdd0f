// `--series NAME`, offered by `lb backup` and by every command that reads or
// prunes a repository: many sources in one repository, each its own series of
// snapshots in REPO/NAME/ (repo/series.ts). The name is checked here, before
// anything is connected to or written.
import type { Command } from 'commander';
import { seriesNameProblem } from '../diff/series-name.js';
import { UsageError } from './status.js';

export interface SeriesCommandOptions {
  series?: string;
}

/** Without --series, `whole` says what the command takes: the top level, or the whole repository. */
export function addSeriesOption(command: Command, whole: 'top level' | 'whole repository'): Command {
  const otherwise = whole === 'top level' ? "the snapshots at the repository's top level" : 'the top level and every series';
  return command.option('--series <name>', `the series NAME of the repository (default: ${otherwise})`);
}

/** The series the options name, or null; a name that is none is a bad command line. */
export function seriesFrom(opts: SeriesCommandOptions): string | null {
  if (opts.series === undefined) return null;
  const problem = seriesNameProblem(opts.series);
  if (problem !== null) throw new UsageError(`--series ${JSON.stringify(opts.series)}: ${problem}`);
  return opts.series;
}
