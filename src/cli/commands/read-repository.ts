// Opening the repository a read command names: a local path for now. Over SSH
// this needs the agent's read role, which lb does not have yet: said in one line.
import { RepositoryError } from '../../repo/layout.js';
import { RepositoryReader } from '../../repo/reader.js';
import { Repository } from '../../repo/repository.js';
import { parseLocation } from '../../transport/address.js';
import { UsageError } from '../output.js';

export function openToRead(repositoryArg: string, command: string): RepositoryReader {
  let location;
  try {
    location = parseLocation(repositoryArg);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (location.kind === 'remote') {
    if (command === 'restore') {
      throw new UsageError(
        `a remote repository cannot be restored from yet (the agent has no read role in this version); restore on ${location.host}, or copy a snapshot's tree from it (rsync -a ${repositoryArg}/latest/tree/ TARGET)`,
      );
    }
    throw new UsageError(`a remote repository cannot be read yet (the agent has no read role in this version); run lb ${command} on ${location.host} (ssh ${location.host} lb ${command} ${location.path})`);
  }
  try {
    return Repository.open(location.path, 'read');
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
