// `lb ls REPO [SNAPSHOT] [PATH]`: the entries of a snapshot under PATH. The command
// line here; the listing is read/ls.ts, run where the repository is.
import type { Command } from 'commander';
import { addOutputOptions, oneLineErrors } from '../output.js';
import { addSeriesOption } from '../series-option.js';
import { addSshOptions, readCommand, type ReadCommandOptions } from './read-repository.js';

export { insidePath } from '../../read/ls.js';

interface LsOptions extends ReadCommandOptions {
  long?: boolean;
  recursive?: boolean;
}

export function registerLs(program: Command): void {
  const command = program
    .command('ls')
    .description('list the entries of a snapshot (latest by default) under PATH (the whole tree by default)')
    .configureOutput(oneLineErrors('usage: lb ls [options] REPOSITORY [SNAPSHOT] [PATH] (lb ls --help lists the options)'))
    .argument('<repository>', 'lb repository: a local path or [user@]host:path')
    .argument('[snapshot]', 'a snapshot name, a unique prefix of one (2026.11), or latest; a word that is not one of these is taken as PATH')
    .argument('[path]', 'a path inside the snapshot')
    .option('-l, --long', 'type, mode, owner, size, mtime and how each file arrived')
    .option('-R, --recursive', 'everything beneath PATH, not only what it holds directly');
  addOutputOptions(addSeriesOption(addSshOptions(command), 'top level'), {}).action(async (repository: string, first: string | undefined, second: string | undefined, opts: LsOptions) => {
    const [snapshot, path] = second !== undefined || first === undefined || SNAPSHOT_WORD.test(first) ? [first, second] : [undefined, first];
    const ls = { command: 'ls', snapshot, path, long: opts.long ?? false, recursive: opts.recursive ?? false } as const;
    process.exitCode = await readCommand(repository, ls, opts);
  });
}

/** `latest`, or what could begin a snapshot name: digits, dots and a dash. */
const SNAPSHOT_WORD = /^(latest|[0-9][0-9.-]*)$/;
