// Runs of zero bytes become holes, as `cp --sparse=auto` makes them: a 2 GiB disk
// image holding 20 MB of data must not take 2 GiB in the repository or in a restore.
// A whole aligned block of zeros is not written (the file reads as zeros there
// anyway), and the size is set at the end, so a trailing hole is right too. Every
// writer of object or restored content goes through SparseWriter; the source side
// finds the same blocks with zeroBlockRuns to send them as a count, not as bytes.
import type { Hash } from 'node:crypto';
import { closeSync, constants, copyFileSync, fstatSync, ftruncateSync, openSync, readSync } from 'node:fs';
import { writeFully } from './write-fully.js';

/**
 * Zeros are skipped in aligned blocks of this size: the allocation unit of ext4,
 * xfs, btrfs and tmpfs. (st_blksize is the preferred I/O size, which some
 * filesystems report as far larger.) A smaller real block only loses some holes.
 */
export const HOLE_BLOCK = 4096;

const ZERO_BLOCK = Buffer.alloc(HOLE_BLOCK);

/** One part of a chunk: [start, end) relative to the chunk, all zeros or not. */
export interface BlockRun {
  start: number;
  end: number;
  zero: boolean;
}

/**
 * Cuts `chunk`, which lies at `position` in its file, into maximal runs of data and
 * of zeros, in pieces aligned on HOLE_BLOCK in the file: each piece is a block, or
 * the part of one at either end of the chunk, and is zero when all its bytes are.
 */
export function* zeroBlockRuns(chunk: Buffer, position: number): Generator<BlockRun> {
  let runStart = 0;
  let zero = false;
  for (let at = 0; at < chunk.length; ) {
    const next = Math.min(chunk.length, at + HOLE_BLOCK - ((position + at) % HOLE_BLOCK));
    const piece = chunk.subarray(at, next);
    const pieceZero = piece.equals(ZERO_BLOCK.subarray(0, piece.length));
    if (pieceZero !== zero && at > runStart) {
      yield { start: runStart, end: at, zero };
      runStart = at;
    }
    zero = pieceZero;
    at = next;
  }
  if (chunk.length > runStart) yield { start: runStart, end: chunk.length, zero };
}

/** A MiB of zeros, shared: never written to. */
export const ZEROS = Buffer.alloc(1024 * 1024);

/** Feeds `length` zero bytes to a hash (a run of zeros that arrived as its length), a shared buffer at a time. */
export function hashZeros(hasher: Hash, length: number): void {
  for (let left = length; left > 0; left -= ZEROS.length) hasher.update(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left));
}

/**
 * Writes a file that is empty from the first position on (new, or truncated to where
 * writing resumes), chunk by chunk at forward-moving positions, leaving zero blocks
 * as holes; finish() sets the size. Unwritten bytes read as zeros, so the zero part
 * of a block cut by a chunk's end is skipped too: small chunks still leave holes.
 */
export class SparseWriter {
  private end = 0;
  /** Where the last bytes actually written end: the file's size unless it ends in a hole. */
  private dataEnd = 0;

  constructor(
    private readonly fd: number,
    /** How a run of data is written; at once unless told otherwise (the repository side's pool). */
    private readonly writeAt: (data: Buffer, position: number) => void = (data, position) => writeFully(fd, data, position),
  ) {}

  write(chunk: Buffer, position: number): void {
    if (position < this.end) throw new Error(`sparse write at ${position}, behind ${this.end} already written`);
    this.end = position + chunk.length;
    for (const run of zeroBlockRuns(chunk, position)) {
      if (run.zero) continue;
      this.writeAt(chunk.subarray(run.start, run.end), position + run.start);
      this.dataEnd = position + run.end;
    }
  }

  /** The file's logical size: holes skipped at its end are in it, nothing beyond it is. */
  finish(size: number): void {
    if (this.sizeToSet(size) !== null) ftruncateSync(this.fd, size);
  }

  /** The size finish() would set, or null when the writes already made the file that long. */
  sizeToSet(size: number): number | null {
    return this.dataEnd === size ? null : size;
  }
}

/** Why FICLONE alone can fail: the filesystem, or this pair of files, cannot share extents. */
const CANNOT_CLONE = new Set(['ENOTSUP', 'EOPNOTSUPP', 'EXDEV', 'EINVAL', 'ENOSYS', 'ENOTTY']);

const COPY_CHUNK = 1024 * 1024;

/**
 * Copies a stored file to a new path (which must not exist), keeping its holes: a
 * reflink where the filesystem shares extents; else, for a file with holes, a copy
 * through SparseWriter (the kernel's copy, copy_file_range or sendfile, fills them
 * in); a file without holes keeps the kernel's copy.
 */
export function copySparse(sourcePath: string, destinationPath: string): void {
  const source = openSync(sourcePath, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const stat = fstatSync(source);
    if (stat.blocks * 512 >= stat.size) {
      copyFileSync(sourcePath, destinationPath, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
      return;
    }
    try {
      copyFileSync(sourcePath, destinationPath, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE);
      return;
    } catch (error) {
      if (!CANNOT_CLONE.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
    }
    const output = openSync(destinationPath, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      const writer = new SparseWriter(output);
      const buffer = Buffer.allocUnsafe(COPY_CHUNK);
      let size = 0;
      for (let n; (n = readSync(source, buffer, 0, COPY_CHUNK, size)) > 0; size += n) writer.write(buffer.subarray(0, n), size);
      writer.finish(size);
    } finally {
      closeSync(output);
    }
  } finally {
    closeSync(source);
  }
}
