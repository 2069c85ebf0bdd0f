// `lb du REPO`: space used, per snapshot and in all. The command line here; the
// accounting is read/du.ts, run where the repository is.
import type { Command } from 'commander';
import { addOutputOptions, oneLineErrors } from '../output.js';
import { addSeriesOption } from '../series-option.js';
import { addSshOptions, readCommand, type ReadCommandOptions } from './read-repository.js';

export function registerDu(program: Command): void {
  const command = program
    .command('du')
    .description('space used: what each snapshot alone holds and what it added, what the repository stores in all')
    .configureOutput(oneLineErrors('usage: lb du [options] REPOSITORY (lb du --help lists the options)'))
    .argument('<repository>', 'lb repository: a local path or [user@]host:path');
  addOutputOptions(addSeriesOption(addSshOptions(command), 'whole repository'), {}).action(async (repository: string, opts: ReadCommandOptions) => {
    process.exitCode = await readCommand(repository, { command: 'du' }, opts);
  });
}
