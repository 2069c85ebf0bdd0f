// `lb list REPO`: one line per snapshot, oldest first. The command line here; the
// listing is read/list.ts, run where the repository is.
import type { Command } from 'commander';
import { addOutputOptions, oneLineErrors } from '../output.js';
import { addSeriesOption } from '../series-option.js';
import { addSshOptions, readCommand, type ReadCommandOptions } from './read-repository.js';

export function registerList(program: Command): void {
  const command = program
    .command('list')
    .description('list the snapshots of REPOSITORY: files, size, how files arrived, status')
    .configureOutput(oneLineErrors('usage: lb list [options] REPOSITORY (lb list --help lists the options)'))
    .argument('<repository>', 'lb repository: a local path or [user@]host:path');
  addOutputOptions(addSeriesOption(addSshOptions(command), 'top level'), {}).action(async (repository: string, opts: ReadCommandOptions) => {
    process.exitCode = await readCommand(repository, { command: 'list' }, opts);
  });
}
