// Opening the repository a read command names, and the snapshot it names, with
// what is wrong said as a bad command line (exit status 2), here or in the agent.
import { RepositoryError } from '../repo/layout.js';
import type { RepositoryReader } from '../repo/reader.js';
import { Repository } from '../repo/repository.js';
import { displayName } from '../cli/names.js';
import { UsageError } from '../cli/status.js';
import { firstMissingPath } from '../repo/restore-feed.js';

/** With `series`, that series of it (refused in one line, naming the series there are, when it has none such). */
export function openRepository(path: string, series: string | null = null): RepositoryReader {
  try {
    return Repository.open(path, 'read', series);
  } catch (error) {
    throw error instanceof RepositoryError ? new UsageError(error.message) : error;
  }
}

/** The snapshot the user names (a full name, a unique prefix, or latest), as a bad command line when it is none. */
export function resolveSnapshot(reader: RepositoryReader, wanted: string | undefined): string {
  try {
    return reader.resolve(wanted);
  } catch (error) {
    throw error instanceof RepositoryError ? new UsageError(error.message) : error;
  }
}

/** The --path words of a restore, each required in the snapshot, as a bad command line when one is not. */
export function checkPathsInSnapshot(reader: RepositoryReader, snapshot: string, paths: Buffer[]): void {
  const missing = firstMissingPath(reader, snapshot, paths);
  if (missing !== null) throw new UsageError(`no ${displayName(missing)} in snapshot ${snapshot}; nothing restored`);
}
