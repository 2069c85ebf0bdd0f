// The SHA-256 of a stored file, read once from start to end: what an object
// must hash to, checked before reuse (object-guard.ts) and by `lb verify --read-data`.
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, readSync } from 'node:fs';

/** Reused: every read here is synchronous, so no two hashes share it at once. */
const scratch = Buffer.allocUnsafe(1024 * 1024);

/** Never through a symlink; `onBytes` is told each read's size. */
export function sha256OfFile(path: string | Buffer, onBytes?: (n: number) => void): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const hasher = createHash('sha256');
    for (let n; (n = readSync(fd, scratch, 0, scratch.length, null)) > 0; ) {
      hasher.update(scratch.subarray(0, n));
      onBytes?.(n);
    }
    return hasher.digest('hex');
  } finally {
    closeSync(fd);
  }
}
