// The command-line checks of `lb backup`, made before anything is written:
// each bad operand or option is one UsageError (exit status 2).
import { accessSync, constants, existsSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import { describeFailure } from '../../agent/failure.js';
import { sourceProblemLine } from '../../agent/source-root.js';
import { RepositoryRefused, holdsNothing, refuseMissingParent } from '../../repo/repository.js';
import { checkSeriesWritable } from '../../repo/series.js';
import { checkListable } from '../../scan/walk.js';
import type { RunPurpose } from '../../protocol/messages.js';
import type { SshOptions } from '../../transport/ssh.js';
import { UsageError } from '../output.js';

/** The options of `lb backup` that reach SSH. */
export interface SshCommandOptions {
  sshI?: string;
  sshP?: string;
  sshC?: boolean;
  acceptNewHostKey?: boolean;
  remoteNode?: string;
}

export function checkSource(source: string): string {
  let stat;
  try {
    stat = statSync(source);
  } catch {
    throw new UsageError(sourceProblemLine(source, 'missing'));
  }
  if (!stat.isDirectory()) throw new UsageError(sourceProblemLine(source, 'not-a-directory'));
  checkListable(source);
  return realpathSync(source);
}

const REPOSITORY_CHOICE = 'give a new or empty directory, or an existing lb repository';

/** Before anything is written (the catalog, say): the repository, or the directory that would hold it, must be writable. */
function checkWritable(repository: string): void {
  try {
    accessSync(existsSync(repository) ? repository : dirname(repository), constants.W_OK);
  } catch (error) {
    throw new Error(describeFailure(error));
  }
}

/** `path` is `directory` or lies beneath it; both absolute and resolved. `/` holds everything. */
function isWithin(path: string, directory: string): boolean {
  const rest = relative(directory, path);
  return rest === '' || (rest !== '..' && !rest.startsWith('../') && !isAbsolute(rest));
}

export function checkRepository(repository: string, source: string | null, purpose: RunPurpose = 'backup', series: string | null = null): string {
  const absolute = resolve(repository);
  // --showfiles reads a repository that must already be one (a read-only one will do).
  if (purpose === 'showfiles') {
    if (!existsSync(resolve(absolute, '.lb', 'format'))) {
      throw new UsageError(`${repository} ${existsSync(absolute) ? 'is no lb repository' : 'does not exist'}, so --showfiles has nothing to compare with; every source file is missing from it`);
    }
    return absolute;
  }
  if (source !== null) {
    // Resolve through the nearest existing ancestor, so a repository to be created inside the source is caught too.
    let existing = absolute;
    while (!existsSync(existing)) existing = resolve(existing, '..');
    const real = resolve(realpathSync(existing), absolute.slice(existing.length).replace(/^\//, ''));
    if (isWithin(real, source)) {
      throw new UsageError(`repository ${repository} lies inside the source ${source}; choose a repository outside it`);
    }
  }
  if (existsSync(absolute)) {
    const stat = statSync(absolute);
    if (!stat.isDirectory()) throw new UsageError(`repository ${repository} exists and is not a directory; ${REPOSITORY_CHOICE}`);
    if (!existsSync(resolve(absolute, '.lb', 'format')) && !holdsNothing(absolute)) {
      throw new UsageError(`repository ${repository} is not empty and not an lb repository, so lb will not write there; ${REPOSITORY_CHOICE}`);
    }
    if (series !== null) {
      try {
        checkSeriesWritable(absolute, series);
      } catch (error) {
        throw error instanceof RepositoryRefused ? new UsageError(error.message) : error;
      }
    }
  } else {
    try {
      refuseMissingParent(absolute);
    } catch (error) {
      throw error instanceof RepositoryRefused ? new UsageError(error.message) : error;
    }
  }
  checkWritable(absolute);
  return absolute;
}

export function sshOptions(opts: SshCommandOptions, notice: (line: string) => void): SshOptions {
  let port: number | undefined;
  if (opts.sshP !== undefined) {
    port = /^[0-9]{1,5}$/.test(opts.sshP) ? Number(opts.sshP) : 0;
    if (port < 1 || port > 65535) throw new UsageError(`--ssh-p wants a port number from 1 to 65535, not ${opts.sshP}`);
  }
  return {
    identityFile: opts.sshI,
    port,
    compress: opts.sshC ?? false,
    acceptNewHostKey: opts.acceptNewHostKey ?? false,
    remoteNode: opts.remoteNode,
    onNotice: notice,
  };
}

export function budgetMs(minutes: string | undefined): number | undefined {
  if (minutes === undefined) return undefined;
  const value = Number(minutes);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--minutes wants a positive number of minutes, not ${minutes}`);
  return Math.round(value * 60_000);
}
