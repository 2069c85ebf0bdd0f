// `lb log REPO PATH`: the history of one path across every snapshot, oldest first.
// The command line here; the history itself is read/log.ts, run where the repository is.
import type { Command } from 'commander';
import { displayName } from '../names.js';
import { UsageError, addOutputOptions, oneLineErrors } from '../output.js';
import { addSeriesOption } from '../series-option.js';
import { addSshOptions, readCommand, type ReadCommandOptions } from './read-repository.js';

interface LogOptions extends ReadCommandOptions {
  pathBase64?: string;
}

export function registerLog(program: Command): void {
  const command = program
    .command('log')
    .description('the history of PATH across every snapshot: when it appeared, changed, went (and where to) and came back')
    .configureOutput(oneLineErrors('usage: lb log [options] REPOSITORY PATH (lb log --help lists the options)'))
    .argument('<repository>', 'lb repository: a local path or [user@]host:path')
    .argument('[path]', 'a path inside the snapshots (a file, directory or symlink)')
    .option('--path-base64 <b64>', 'the path as base64 of its bytes, for a name that is not UTF-8 (instead of PATH)');
  addOutputOptions(addSeriesOption(addSshOptions(command), 'top level'), {}).action(async (repository: string, path: string | undefined, opts: LogOptions) => {
    // The path first: a bad one is said before any connection is made.
    const wanted = wantedPath(path, opts.pathBase64);
    process.exitCode = await readCommand(repository, { command: 'log', path: wanted }, opts);
  });
}

/** The path the user names, as the manifest spells it: relative, no empty or `.` components, no `..`. */
function wantedPath(path: string | undefined, base64: string | undefined): Buffer {
  if ((path === undefined) === (base64 === undefined)) throw new UsageError('lb log needs one path: PATH or --path-base64 B64');
  let bytes: Buffer;
  if (base64 !== undefined) {
    bytes = Buffer.from(base64, 'base64');
    if (bytes.length === 0 || bytes.toString('base64').replace(/=+$/, '') !== base64.replace(/=+$/, '')) throw new UsageError(`--path-base64 ${base64}: not base64`);
  } else bytes = Buffer.from(path!);
  const parts: Buffer[] = [];
  for (let start = 0; start <= bytes.length; ) {
    const slash = bytes.indexOf(0x2f, start);
    const end = slash < 0 ? bytes.length : slash;
    const part = bytes.subarray(start, end);
    if (part.equals(DOTDOT)) throw new UsageError(`${displayName(bytes)}: a path inside a snapshot cannot go up with ..`);
    if (part.length > 0 && !part.equals(DOT)) parts.push(part);
    start = end + 1;
  }
  if (parts.length === 0) throw new UsageError('lb log needs a path inside the snapshots, not their root');
  return Buffer.concat(parts.flatMap((part, i) => (i === 0 ? [part] : [SLASH, part])));
}

const DOT = Buffer.from('.');
const DOTDOT = Buffer.from('..');
const SLASH = Buffer.from('/');
