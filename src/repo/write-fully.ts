// writeSync may write less than asked (a filesystem nearly full takes what fits
// and fails only on the next write): ignoring that stores a torn file whose
// in-memory hash looks right. Every write to the repository goes through here.
import { writeSync } from 'node:fs';

export function writeFully(fd: number, data: Buffer | string): void {
  const buffer = typeof data === 'string' ? Buffer.from(data) : data;
  let offset = 0;
  while (offset < buffer.length) offset += writeSync(fd, buffer, offset, buffer.length - offset);
}
