// writeSync may write less than asked (a filesystem nearly full takes what fits
// and fails only on the next write): ignoring that stores a torn file whose
// in-memory hash looks right. Every write to the repository goes through here.
import { writeSync } from 'node:fs';

/** Write all of `data`, at `position` when given, else at the file's current offset. */
export function writeFully(fd: number, data: Buffer | string, position?: number): void {
  const buffer = typeof data === 'string' ? Buffer.from(data) : data;
  let offset = 0;
  while (offset < buffer.length) {
    const at = position === undefined ? null : position + offset;
    offset += writeSync(fd, buffer, offset, buffer.length - offset, at);
  }
}
