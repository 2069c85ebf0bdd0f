// Running a read command on the repository it names: a local path, opened here,
// or `[user@]host:path`, where lb's agent runs the same body (read/run.ts) and
// sends back what it prints (cli/read-remote.ts).
import type { Command } from 'commander';
import type { ReadCommand } from '../../protocol/read.js';
import { openRepository } from '../../read/open.js';
import { runRead } from '../../read/run.js';
import { parseLocation, type Location } from '../../transport/address.js';
import { sshOptions, type SshCommandOptions } from '../backup/checks.js';
import { Output, UsageError, type OutputOptions } from '../output.js';
import { readRemote } from '../read-remote.js';
import { seriesFrom, type SeriesCommandOptions } from '../series-option.js';

export { resolveSnapshot } from '../../read/open.js';

export interface ReadCommandOptions extends OutputOptions, SshCommandOptions, SeriesCommandOptions {}

/** The options that reach SSH, as `lb backup` has them, for a repository on another machine. */
export function addSshOptions(command: Command): Command {
  return command
    .option('--ssh-i <file>', 'SSH identity file (private key), tried before the configured ones')
    .option('--ssh-p <port>', 'SSH port, overriding ~/.ssh/config')
    .option('--ssh-C', 'compress the SSH connection')
    .option('--accept-new-host-key', 'record an unknown host key in ~/.ssh/known_hosts and go on (a changed key is still refused)')
    .option('--remote-node <path>', "the remote's node executable (default: node from PATH)");
}

function location(repositoryArg: string): Location {
  try {
    return parseLocation(repositoryArg);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Runs `read` where the repository is and prints here; its exit status. */
export async function readCommand(repositoryArg: string, read: ReadCommand, opts: ReadCommandOptions): Promise<number> {
  const out = new Output(opts);
  const where = location(repositoryArg);
  const series = seriesFrom(opts);
  if (where.kind === 'local') return runRead(openRepository(where.path, series), read, out);
  return readRemote(where, read, out, sshOptions(opts, out.warn), series);
}
