// `lb verify REPO [--read-data [PERCENT | N/T]]`: checks the repository, exit
// status 5 when it finds damage. The command line here; the check is read/verify.ts,
// run where the repository is (so --read-data reads the objects there).
import type { Command } from 'commander';
import { parseObjectSubset, SubsetError, type ObjectSubset } from '../../repo/object-subset.js';
import { addOutputOptions, oneLineErrors } from '../output.js';
import { addSeriesOption } from '../series-option.js';
import { addSshOptions, readCommand, type ReadCommandOptions } from './read-repository.js';

interface VerifyOptions extends ReadCommandOptions {
  /** true for every object; a subset, or a word that is none (maybe the repository); undefined without --read-data. */
  readData?: ObjectSubset | NotASubset | true;
}

/** The word after --read-data when it is no subset: commander takes `lb verify --read-data REPO`'s REPO as the value. */
class NotASubset {
  constructor(
    readonly word: string,
    readonly problem: string,
  ) {}
}

export function registerVerify(program: Command): void {
  const command = program
    .command('verify')
    .description('check that every snapshot matches its manifest and links to sound objects; exit status 5 when damage is found')
    .configureOutput(oneLineErrors('usage: lb verify [options] REPOSITORY [--read-data [PERCENT | N/T]] (lb verify --help lists the options)'))
    .argument('<repository>', 'lb repository: a local path or [user@]host:path')
    .option('--read-data [subset]', 're-hash every object, or a share of them at random (10%), or part N of T (1/7)', readDataSubset);
  // `lb verify --read-data REPO`: commander took REPO for the option's value, then finds REPO missing; the action sorts it out.
  const checked = command as unknown as { missingArgument(name: string): void };
  const missingArgument = checked.missingArgument.bind(command);
  checked.missingArgument = (name) => {
    if (!(command.opts<VerifyOptions>().readData instanceof NotASubset)) missingArgument(name);
  };
  addOutputOptions(addSeriesOption(addSshOptions(command), 'whole repository'), {}).action(async (repositoryArg: string | undefined, opts: VerifyOptions) => {
    let repository = repositoryArg;
    let subset = opts.readData;
    if (subset instanceof NotASubset) {
      // `lb verify --read-data REPO`: the word was the repository, and every object is re-read.
      if (repository !== undefined || /^[0-9./%]+$/.test(subset.word)) command.error(`option '--read-data [subset]' argument '${subset.word}' is invalid. ${subset.problem}`);
      repository = subset.word;
      subset = true;
    }
    if (repository === undefined) return command.error("missing required argument 'repository'"); // not reached: commander checks it
    const readData = subset === undefined ? null : subset === true ? ({ kind: 'all' } as const) : subset;
    process.exitCode = await readCommand(repository, { command: 'verify', readData }, opts);
  });
}

function readDataSubset(text: string): ObjectSubset | NotASubset {
  try {
    return parseObjectSubset(text);
  } catch (error) {
    if (!(error instanceof SubsetError)) throw error;
    return new NotASubset(text, error.message);
  }
}
