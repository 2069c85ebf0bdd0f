// Opening the repository a read command names, and the snapshot it names, with
// what is wrong said as a bad command line (exit status 2), here or in the agent.
import { RepositoryError } from '../repo/layout.js';
import type { RepositoryReader } from '../repo/reader.js';
import { Repository } from '../repo/repository.js';
import { UsageError } from '../cli/status.js';

export function openRepository(path: string): RepositoryReader {
  try {
    return Repository.open(path, 'read');
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
