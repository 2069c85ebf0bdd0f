// Where `lb restore` may write: a local directory that is missing (its parent
// there) or empty, or any directory under --overwrite; never a symlink, never
// inside the repository it reads.
import { lstatSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseLocation } from '../../transport/address.js';
import { UsageError } from '../output.js';

/** Checks TARGET and returns it as an absolute local path. */
export function checkTarget(targetArg: string, repositoryRoot: string, overwrite: boolean): string {
  let location;
  try {
    location = parseLocation(targetArg);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (location.kind === 'remote') {
    throw new UsageError(`lb restore writes to a local directory only in this version; run it on ${location.host}, or restore here and copy`);
  }
  const path = resolve(location.path);
  const existing = lstatOrNull(path);
  if (existing === null) {
    const parent = dirname(path);
    if (!statOrNull(parent)?.isDirectory()) throw new UsageError(`${targetArg}: its parent directory ${parent} does not exist`);
  } else if (existing.isSymbolicLink()) {
    throw new UsageError(`${targetArg} is a symlink; lb restore writes into a real directory only (give the directory it points to)`);
  } else if (!existing.isDirectory()) {
    throw new UsageError(`${targetArg} exists and is not a directory`);
  } else if (!overwrite && readdirSync(path).length > 0) {
    throw new UsageError(`${targetArg} is not empty; restore into a new or empty directory, or give --overwrite to replace the snapshot's paths in it`);
  }
  const real = existing === null ? join(realpathSync(dirname(path)), basename(path)) : realpathSync(path);
  const repository = realpathSync(repositoryRoot);
  if (real === repository || real.startsWith(repository + '/')) {
    throw new UsageError(`${targetArg} is inside the repository ${repositoryRoot}; restore somewhere outside it`);
  }
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
