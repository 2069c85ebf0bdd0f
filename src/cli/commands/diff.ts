// `lb diff REPO [OLD [NEW]]`: what changed between two snapshots, moves shown as
// moves. The command line here; the comparison is read/diff.ts, run where the repository is.
import type { Command } from 'commander';
import { addOutputOptions, oneLineErrors } from '../output.js';
import { addSeriesOption } from '../series-option.js';
import { addSshOptions, readCommand, type ReadCommandOptions } from './read-repository.js';

export function registerDiff(program: Command): void {
  const command = program
    .command('diff')
    .description('what changed from snapshot OLD to snapshot NEW (the one before latest, and latest, by default), moves shown as moves')
    .configureOutput(oneLineErrors('usage: lb diff [options] REPOSITORY [OLD [NEW]] (lb diff --help lists the options)'))
    .argument('<repository>', 'lb repository: a local path or [user@]host:path')
    .argument('[old]', 'the older snapshot: a name, a unique prefix of one, or latest (default: the snapshot before NEW)')
    .argument('[new]', 'the newer snapshot, named the same way (default: latest)');
  addOutputOptions(addSeriesOption(addSshOptions(command), 'top level'), {}).action(async (repository: string, older: string | undefined, newer: string | undefined, opts: ReadCommandOptions) => {
    process.exitCode = await readCommand(repository, { command: 'diff', old: older, new: newer }, opts);
  });
}
