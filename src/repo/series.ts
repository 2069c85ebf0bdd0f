// Series: many sources in one repository. `REPO/<series>/` holds snapshot
// directories and a `latest` link exactly as the top level does, and shares the
// repository's one object store, lock, tmp and trash in `REPO/.lb`. A directory
// of REPO is a series when its name is a series name (diff/series-name.ts): never
// a snapshot's, never `.lb` nor anything else beginning with a dot, never `latest`.
import { lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isSeriesName, seriesNameProblem } from '../diff/series-name.js';
import { RepositoryError, RepositoryRefused } from './layout.js';

/** The user named a series the repository does not have. */
export class SeriesNotFound extends RepositoryError {}

/** The series of the repository at `root`, sorted: its directories (never a symlink) with a series name. */
export function seriesNames(root: string): string[] {
  return readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && isSeriesName(entry.name))
    .map((entry) => entry.name)
    .sort();
}

/** Refuses a name that is no series name, in one line naming the option. */
export function checkSeriesName(series: string): void {
  const problem = seriesNameProblem(series);
  if (problem !== null) throw new RepositoryRefused(`--series ${JSON.stringify(series)}: ${problem}`);
}

/** What a repository's series are, for a message: `it has series a, b` or `it has no series`. */
export function seriesOf(root: string): string {
  const names = seriesNames(root);
  return names.length === 0 ? 'it has no series' : `it has series ${names.join(', ')}`;
}

/** Refuses, in one line, a series the repository at `root` does not have (a name that is no directory there). */
export function checkSeriesExists(root: string, series: string): void {
  checkSeriesName(series);
  if (kindAt(join(root, series)) !== 'directory') throw new SeriesNotFound(`no series ${series} in ${root}; ${seriesOf(root)}`);
}

/**
 * Before a backup into a series: its directory is there, or missing (the first
 * snapshot makes it); anything else under its name (a file, a symlink) is refused,
 * as lb never writes through a symlink.
 */
export function checkSeriesWritable(root: string, series: string): void {
  checkSeriesName(series);
  const kind = kindAt(join(root, series));
  if (kind !== 'directory' && kind !== 'missing') {
    throw new RepositoryRefused(`${join(root, series)} is ${kind}, not a series directory; choose another --series name`);
  }
}

/** A series' directory, made before its first snapshot is renamed into it; a symlink or file there is refused. */
export function makeSeriesDirectory(root: string, series: string): void {
  try {
    mkdirSync(join(root, series), { mode: 0o755 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  checkSeriesWritable(root, series);
}

function kindAt(path: string): 'missing' | 'directory' | 'a symbolic link' | 'a file' | 'a special file' {
  let stat;
  try {
    stat = lstatSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'missing';
    throw error;
  }
  return stat.isDirectory() ? 'directory' : stat.isSymbolicLink() ? 'a symbolic link' : stat.isFile() ? 'a file' : 'a special file';
}
