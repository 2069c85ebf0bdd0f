// `lb verify REPO [--read-data [PERCENT | N/T]]`: checks the repository, exit
// status 5 when it finds damage. The command line here; the check is read/verify.ts,
// run where the repository is (so --read-data reads the objects there).
import { InvalidArgumentError, type Command } from 'commander';
import { parseObjectSubset, SubsetError, type ObjectSubset } from '../../repo/object-subset.js';
import { addOutputOptions, oneLineErrors } from '../output.js';
import { addSshOptions, readCommand, type ReadCommandOptions } from './read-repository.js';

interface VerifyOptions extends ReadCommandOptions {
  /** true for every object; a subset otherwise; undefined without --read-data. */
  readData?: ObjectSubset | true;
}

export function registerVerify(program: Command): void {
  const command = program
    .command('verify')
    .description('check that every snapshot matches its manifest and links to sound objects; exit status 5 when damage is found')
    .configureOutput(oneLineErrors('usage: lb verify [options] REPOSITORY [--read-data [PERCENT | N/T]] (lb verify --help lists the options)'))
    .argument('<repository>', 'lb repository: a local path or [user@]host:path')
    .option('--read-data [subset]', 're-hash every object, or a share of them at random (10%), or part N of T (1/7)', readDataSubset);
  addOutputOptions(addSshOptions(command), {}).action(async (repository: string, opts: VerifyOptions) => {
    const readData = opts.readData === undefined ? null : opts.readData === true ? ({ kind: 'all' } as const) : opts.readData;
    process.exitCode = await readCommand(repository, { command: 'verify', readData }, opts);
  });
}

/** Commander takes the word after --read-data as its value: a repository there gets a hint. */
function readDataSubset(text: string): ObjectSubset {
  try {
    return parseObjectSubset(text);
  } catch (error) {
    if (!(error instanceof SubsetError)) throw error;
    const hint = /^[0-9./%]+$/.test(text) ? '' : '; to re-read every object, put --read-data after the repository';
    throw new InvalidArgumentError(error.message + hint);
  }
}
