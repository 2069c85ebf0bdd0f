// Reads on libuv's thread pool, so that several files are read at once: on a
// cold cache a disk answers a few reads in flight far faster than one after
// another (util-linux hardlink reads one at a time), and the hashing and
// comparing of one file's bytes overlaps the wait for another's.
import { fstatSync, read, type BigIntStats } from 'node:fs';
import { hex64, unchanged, type XxHash } from '../scan/fast-hash.js';

/** How much of a file its prefix signature covers: enough to tell most same-size files apart at one small read. */
export const PREFIX_BYTES = 4096;

function readOnce(fd: number, buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => read(fd, buffer, offset, length, position, (error, n) => (error ? reject(error) : resolve(n))));
}

/** Up to `length` bytes at `position` into the start of `buffer`: fewer only at the end of the file. */
export async function readAt(fd: number, buffer: Buffer, length: number, position: number): Promise<number> {
  let n = 0;
  for (let got = -1; got !== 0 && n < length; n += got) got = await readOnce(fd, buffer, n, length - n, position + n);
  return n;
}

/** Buffers of one size, handed out and taken back, so that reads in flight never share one and none is allocated per read. */
export class Buffers {
  private readonly free: Buffer[] = [];

  constructor(private readonly size: number) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.size);
  }

  give(buffer: Buffer): void {
    this.free.push(buffer);
  }
}

const prefixBuffers = new Buffers(PREFIX_BYTES);

/**
 * xxh64 of the first PREFIX_BYTES (all of it if smaller) of the open file, or
 * null if it is not the file `expected` describes. One check after reading
 * covers the time since the scan as well: any change moves the ctime.
 */
export async function prefixSignature(hasher: XxHash, fd: number, expected: BigIntStats, onBytes: (n: number) => void): Promise<string | null> {
  const buffer = prefixBuffers.take();
  try {
    const n = await readAt(fd, buffer, Math.min(PREFIX_BYTES, Number(expected.size)), 0);
    onBytes(n);
    if (!unchanged(fstatSync(fd, { bigint: true }), expected)) return null;
    return hex64(hasher.h64Raw(buffer.subarray(0, n)));
  } finally {
    prefixBuffers.give(buffer);
  }
}

/**
 * Runs `task` on every item, at most `limit` at a time, in order of starting. The
 * first failure stops new starts; it is thrown once every task started has ended,
 * so that nothing is still changing files when the caller cleans up.
 */
export async function forEachAtOnce<T>(items: Iterable<T>, limit: number, task: (item: T) => Promise<void>): Promise<void> {
  const next = items[Symbol.iterator]();
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    for (let item = next.next(); !item.done && !failure; item = next.next()) {
      try {
        await task(item.value);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  if (failure) throw failure.error;
}
