// Where `lb restore` may write: a directory that is missing (its parent there) or
// empty, or any directory under --overwrite; never a symlink, never inside the
// repository it reads. Checked on the target's machine, by lb or by the agent
// writing a remote target, before anything is written.
import { lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { UsageError } from '../cli/status.js';

/** Whether a real (symlink-free) absolute path is the repository or inside it. */
export type InsideRepository = (realPath: string) => boolean;

/** The check for a repository on this machine, by its root's real path. */
export function insideLocalRepository(repositoryRoot: string): InsideRepository {
  const repository = realpathSync(repositoryRoot);
  return (real) => real === repository || real.startsWith(repository + '/');
}

/** Checks the target `path` (`label`: as the user wrote it) and returns it as an absolute path. */
export function checkTarget(path: string, label: string, overwrite: boolean, inside: InsideRepository, repositoryLabel: string): string {
  path = resolve(path);
  const existing = lstatOrNull(path);
  if (existing === null) {
    const parent = dirname(path);
    if (!statOrNull(parent)?.isDirectory()) throw new UsageError(`${label}: its parent directory ${parent} does not exist`);
  } else if (existing.isSymbolicLink()) {
    throw new UsageError(`${label} is a symlink; lb restore writes into a real directory only (give the directory it points to)`);
  } else if (!existing.isDirectory()) {
    throw new UsageError(`${label} exists and is not a directory`);
  } else if (!overwrite && readdirSync(path).length > 0) {
    throw new UsageError(`${label} is not empty; restore into a new or empty directory, or give --overwrite to replace the snapshot's paths in it`);
  }
  const real = existing === null ? join(realpathSync(dirname(path)), basename(path)) : realpathSync(path);
  if (inside(real)) throw new UsageError(`${label} is inside the repository ${repositoryLabel}; restore somewhere outside it`);
  return path;
}

function lstatOrNull(path: string) {
  try {
    return lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UsageError(`${path}: ${(error as Error).message}`);
  }
}

function statOrNull(path: string) {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}
