// SparseWriter and zeroBlockRuns on real files: content exact, zero blocks left as
// holes (st_blocks counts what is allocated), whatever the chunking and positions.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, ftruncateSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { HOLE_BLOCK, SparseWriter, copySparse, zeroBlockRuns } from '../src/repo/sparse-write.js';
import { tempDir } from './helpers.js';

const MiB = 1024 * 1024;

/** Bytes allocated on disk. */
function allocated(path: string): number {
  return statSync(path).blocks * 512;
}

/** Writes `content` through a SparseWriter in chunks of `chunk` bytes, from `from` on (after a truncate to it). */
function writeSparse(path: string, content: Buffer, chunk: number, from = 0): void {
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    ftruncateSync(fd, from);
    const writer = new SparseWriter(fd);
    for (let at = from; at < content.length; at += chunk) writer.write(content.subarray(at, Math.min(at + chunk, content.length)), at);
    writer.finish(content.length);
  } finally {
    closeSync(fd);
  }
}

/** 16 MiB: zeros, 1 MiB of data at 4 MiB, a few bytes at 10 MiB + 5, zeros to the end. */
function holey(): { content: Buffer; data: number } {
  const content = Buffer.alloc(16 * MiB);
  randomBytes(MiB).copy(content, 4 * MiB);
  content.write('x', 10 * MiB + 5);
  return { content, data: MiB + HOLE_BLOCK };
}

describe('zeroBlockRuns', () => {
  it('cuts at aligned blocks, the parts of blocks at the chunk ends included', () => {
    const chunk = Buffer.alloc(5 * HOLE_BLOCK);
    chunk[3 * HOLE_BLOCK + 7] = 1;
    expect([...zeroBlockRuns(chunk, 0)]).toEqual([
      { start: 0, end: 3 * HOLE_BLOCK, zero: true },
      { start: 3 * HOLE_BLOCK, end: 4 * HOLE_BLOCK, zero: false },
      { start: 4 * HOLE_BLOCK, end: 5 * HOLE_BLOCK, zero: true },
    ]);
    // Lying 100 bytes past a block boundary: a byte in its first block makes that part of a block data, not the next.
    const shifted = Buffer.alloc(3 * HOLE_BLOCK);
    shifted[HOLE_BLOCK - 101] = 1;
    expect([...zeroBlockRuns(shifted, 100)]).toEqual([
      { start: 0, end: HOLE_BLOCK - 100, zero: false },
      { start: HOLE_BLOCK - 100, end: 3 * HOLE_BLOCK, zero: true },
    ]);
    expect([...zeroBlockRuns(Buffer.alloc(10), 0)]).toEqual([{ start: 0, end: 10, zero: true }]);
    expect([...zeroBlockRuns(Buffer.alloc(0), 0)]).toEqual([]);
    const data = randomBytes(2 * HOLE_BLOCK);
    expect([...zeroBlockRuns(data, 0)]).toEqual([{ start: 0, end: 2 * HOLE_BLOCK, zero: false }]);
  });
});

describe('SparseWriter', () => {
  it('writes the exact content and leaves zero blocks unallocated, trailing ones included', () => {
    const dir = tempDir();
    const { content, data } = holey();
    for (const chunk of [MiB, 3 * HOLE_BLOCK + 17, 1000]) {
      const path = join(dir, `c${chunk}`);
      writeSparse(path, content, chunk);
      expect(readFileSync(path).equals(content)).toBe(true);
      // Chunks smaller than a block, or cutting blocks, still leave every zero block a hole.
      expect(allocated(path), `chunks of ${chunk}`).toBeLessThanOrEqual(data);
    }
  });

  it('makes a leading hole, and a file of only zeros takes no blocks', () => {
    const dir = tempDir();
    const content = Buffer.concat([Buffer.alloc(8 * MiB), randomBytes(MiB)]);
    writeSparse(join(dir, 'lead'), content, MiB);
    expect(readFileSync(join(dir, 'lead')).equals(content)).toBe(true);
    expect(allocated(join(dir, 'lead'))).toBeLessThanOrEqual(MiB + HOLE_BLOCK);
    writeSparse(join(dir, 'zeros'), Buffer.alloc(3 * MiB), MiB);
    expect(statSync(join(dir, 'zeros')).size).toBe(3 * MiB);
    expect(allocated(join(dir, 'zeros'))).toBe(0);
  });

  it('resumes at an offset after a truncate, keeping the prefix already written', () => {
    const dir = tempDir();
    const { content, data } = holey();
    const path = join(dir, 'resumed');
    // An interrupted transfer: the first 6 MiB written, plus garbage beyond that the truncate removes.
    writeFileSync(path, Buffer.concat([content.subarray(0, 6 * MiB), randomBytes(MiB)]));
    writeSparse(path, content, MiB, 6 * MiB);
    expect(readFileSync(path).equals(content)).toBe(true);
    // The prefix was written dense here (writeFileSync); the resumed part is sparse.
    expect(allocated(path)).toBeLessThanOrEqual(6 * MiB + data);
  });

  it('refuses to write behind what it wrote: skipped zeros are only right over unwritten bytes', () => {
    const fd = openSync(join(tempDir(), 'f'), constants.O_RDWR | constants.O_CREAT, 0o600);
    try {
      const writer = new SparseWriter(fd);
      writer.write(randomBytes(HOLE_BLOCK), HOLE_BLOCK);
      expect(() => writer.write(Buffer.alloc(HOLE_BLOCK), 0)).toThrow(/behind/);
    } finally {
      closeSync(fd);
    }
  });

  it('copySparse keeps the holes of a stored file and copies a dense one whole', () => {
    const dir = tempDir();
    const { content, data } = holey();
    writeSparse(join(dir, 'object'), content, MiB);
    copySparse(join(dir, 'object'), join(dir, 'copy'));
    expect(readFileSync(join(dir, 'copy')).equals(content)).toBe(true);
    expect(allocated(join(dir, 'copy'))).toBeLessThanOrEqual(data + 4 * HOLE_BLOCK);
    const dense = randomBytes(3 * MiB + 5);
    writeFileSync(join(dir, 'dense'), dense);
    copySparse(join(dir, 'dense'), join(dir, 'dense-copy'));
    expect(readFileSync(join(dir, 'dense-copy')).equals(dense)).toBe(true);
    expect(() => copySparse(join(dir, 'object'), join(dir, 'copy'))).toThrow(/EEXIST/);
  });
});
