// The options of `lb backup` that choose what is taken from the source:
// rsync's --exclude/--include/--exclude-from/--include-from (in the order
// given: the first matching rule wins), --exclude-caches,
// --exclude-if-present, --one-file-system and --filelist. Every problem with
// them is one UsageError, found before anything is written.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { FileList, FileListError } from '../../scan/file-list.js';
import { FilterRules, PatternError, rulesFromFile, type RuleSource } from '../../scan/filter-rules.js';
import type { SelectionSpec } from '../../scan/selection.js';
import { describeFailure } from '../../agent/failure.js';
import { UsageError } from '../output.js';
import { argumentBytes } from '../raw-arguments.js';

export interface SelectionCommandOptions {
  /** Every rule option in command-line order (one list, so an --include before an --exclude stays before it). */
  rules?: { option: string; value: string }[];
  excludeCaches?: boolean;
  excludeIfPresent?: string[];
  oneFileSystem?: boolean;
  filelist?: string;
  null?: boolean;
}

const RULE_OPTIONS = [
  ['--exclude <pattern>', 'leave out what PATTERN matches (rsync rules: see the README; repeatable)'],
  ['--include <pattern>', 'keep what PATTERN matches, even if a later --exclude matches it (repeatable)'],
  ['--exclude-from <file>', 'read --exclude patterns from FILE, one a line ("+ " and "- " prefixes as rsync; # comments)'],
  ['--include-from <file>', 'read --include patterns from FILE, one a line'],
] as const;

export function addSelectionOptions(command: Command): Command {
  for (const [flags, description] of RULE_OPTIONS) {
    const option = flags.split(' ')[0]!;
    // All four feed one list, in the order they were given.
    command.option(flags, description, (value: string, previous: unknown) => {
      const rules = (command.getOptionValue('rules') as SelectionCommandOptions['rules']) ?? [];
      rules.push({ option, value });
      command.setOptionValue('rules', rules);
      return previous;
    });
  }
  return command
    .option('--exclude-caches', 'leave out the contents of directories holding a valid CACHEDIR.TAG (the tag is kept)')
    .option('--exclude-if-present <name>', 'leave out the contents of directories holding NAME (NAME is kept; repeatable)', collect)
    .option('-x, --one-file-system', 'do not enter mount points: they become empty directories in the snapshot')
    .option('--filelist <file>', 'back up only the paths listed in FILE ("-": standard input), relative to SOURCE')
    .option('-0, --null', 'with --filelist and --showfiles: paths are separated by NUL, not newline (safe for any name)');
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function readList(file: string, what: string): Buffer {
  try {
    return readFileSync(file === '-' ? 0 : file);
  } catch (error) {
    throw new UsageError(`cannot read the ${what} ${file === '-' ? 'from standard input' : file}: ${describeFailure(error)}`);
  }
}

function rulesOf(option: string, value: string): RuleSource[] {
  switch (option) {
    case '--exclude':
      return [{ kind: 'exclude', pattern: argumentBytes(value) }];
    case '--include':
      return [{ kind: 'include', pattern: argumentBytes(value) }];
    default:
      return rulesFromFile(readList(value, `${option.slice(2, -5)} file`), option === '--exclude-from' ? 'exclude' : 'include');
  }
}

/** The selection the options ask for, checked (patterns compiled, the file list read and its paths made sound). */
export function selectionFrom(opts: SelectionCommandOptions): SelectionSpec {
  // Refused before any of them is read: standard input from a terminal would otherwise be waited for first.
  const fromStdin = (opts.rules ?? []).filter((r) => r.option.endsWith('-from') && r.value === '-').length + (opts.filelist === '-' ? 1 : 0);
  if (fromStdin > 1) throw new UsageError('standard input ("-") can feed only one of --filelist, --exclude-from and --include-from');
  const rules = (opts.rules ?? []).flatMap(({ option, value }) => rulesOf(option, value));
  try {
    FilterRules.compile(rules);
  } catch (error) {
    if (error instanceof PatternError) throw new UsageError(error.message);
    throw error;
  }
  const tags = (opts.excludeIfPresent ?? []).map((name) => {
    const bytes = argumentBytes(name);
    if (bytes.length === 0 || bytes.includes(0x2f) || name === '.' || name === '..') {
      throw new UsageError(`--exclude-if-present wants a file name, not ${JSON.stringify(name)}`);
    }
    return bytes;
  });
  const spec: SelectionSpec = { rules, excludeCaches: opts.excludeCaches ?? false, excludeIfPresent: tags, oneFileSystem: opts.oneFileSystem ?? false };
  if (opts.filelist !== undefined) {
    const origin = opts.filelist === '-' ? 'the file list on standard input' : `the file list ${opts.filelist}`;
    try {
      spec.listed = FileList.parse(readList(opts.filelist, 'file list'), opts.null ?? false, origin).toWire();
    } catch (error) {
      if (error instanceof FileListError) throw new UsageError(error.message);
      throw error;
    }
  }
  return spec;
}

/** Every listed path must be in the local source before anything is written. */
export function checkListedPaths(spec: SelectionSpec, source: string, filelist: string | undefined): void {
  if (spec.listed === undefined) return;
  try {
    FileList.fromWire(spec.listed).check(source, filelist === '-' ? 'the file list on standard input' : `the file list ${filelist}`);
  } catch (error) {
    if (error instanceof FileListError) throw new UsageError(error.message);
    throw error;
  }
}
