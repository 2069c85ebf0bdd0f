// What the repository side says when the destination fails under it: one line
// naming the cause and what to do, instead of a bare errno.
const REMEDY: Record<string, string> = {
  ENOSPC: 'the repository filesystem is full (no space left on device); free some space and run again',
  EDQUOT: 'the disk quota on the repository filesystem is used up; free some space and run again',
  EROFS: 'the repository is on a read-only filesystem; remount it read-write and run again',
  EACCES: 'permission denied in the repository; run lb as a user who may write there',
  EPERM: 'operation not permitted in the repository; run lb as a user who may write there',
  EIO: 'input/output error on the repository disk; check the disk before running again',
};

const SAFE = 'no snapshot was made and existing snapshots are untouched';

export function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const errno = error as NodeJS.ErrnoException;
  const remedy = errno.code ? REMEDY[errno.code] : undefined;
  if (!remedy) return error.message;
  const where = errno.path ? ` (at ${errno.path})` : '';
  return `${remedy}${where}; ${SAFE}`;
}
