// The destination failing under a run: full (ENOSPC on a small tmpfs), read-only,
// and at the hard-link limit (a real EMLINK on an ext4 image). Real mounts: the
// tests run as root; where mounting is not allowed they say so and skip.
import { existsSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, lb, mountExt4OrSkip, mountOrSkip, rsync, rsyncDifferences, run, tempDir, umount } from './helpers.js';

function writeRandom(path: string, bytes: number): void {
  writeFileSync(path, randomBytes(bytes));
}

/** What a repository looks like from outside: its top-level names, `latest`, and whether work or a lock is left. */
function repositoryState(repo: string) {
  return {
    names: readdirSync(repo).sort(),
    latest: readlinkSync(join(repo, 'latest')),
    tmp: readdirSync(join(repo, '.lb', 'tmp')),
    locked: existsSync(join(repo, '.lb', 'lock')),
  };
}

describe('a destination that fails under the run', () => {
  it('aborts cleanly when the repository fills up, and succeeds once space is freed', (ctx) => {
    const work = tempDir();
    const mnt = join(work, 'mnt');
    mountOrSkip(ctx, ['-t', 'tmpfs', '-o', 'size=6m', 'tmpfs'], mnt);
    try {
      const src = join(work, 'src');
      const repo = join(mnt, 'repo');
      const catalog = join(work, 'catalog.sqlite');
      mkdirSync(src);
      for (let i = 0; i < 20; i++) writeRandom(join(src, `small-${i}`), 40_000);
      const first = backup(src, repo, catalog);
      const before = join(work, 'before');
      rsync(['-a', src + '/', before + '/']); // keeps directory times, which a copy by hand would touch

      for (let i = 0; i < 6; i++) writeRandom(join(src, `big-${i}`), 2_000_000);
      const full = lb(['backup', src, repo, '--catalog', catalog]);
      expect(full.status).toBe(1);
      expect(full.stderr).toMatch(/^lb: the repository filesystem is full \(no space left on device\).*; no snapshot was made and existing snapshots are untouched\n$/);
      expect(repositoryState(repo)).toEqual({ names: ['.lb', first.snapshot!, 'latest'], latest: first.snapshot, tmp: [], locked: false });
      expect(rsyncDifferences(before, join(repo, first.snapshot!, 'tree'))).toEqual([]);

      expect(run('mount', ['-o', 'remount,size=64m', mnt]).ok).toBe(true);
      const after = backup(src, repo, catalog);
      expect(after.created).toBe(true);
      expect(rsyncDifferences(src, join(repo, after.snapshot!, 'tree'))).toEqual([]);
      // Objects that reached the store before the disk filled are not sent again.
      expect(after.bytes.transferred).toBeLessThan(12_000_000);
      expect(rsyncDifferences(before, join(repo, first.snapshot!, 'tree'))).toEqual([]);
    } finally {
      umount(mnt);
    }
  });

  it('refuses a read-only repository in one line, and carries on once it is writable', (ctx) => {
    const work = tempDir();
    const mnt = join(work, 'mnt');
    mountOrSkip(ctx, ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs'], mnt);
    try {
      const src = join(work, 'src');
      const repo = join(mnt, 'repo');
      const catalog = join(work, 'catalog.sqlite');
      mkdirSync(src);
      writeRandom(join(src, 'a'), 10_000);
      const first = backup(src, repo, catalog);
      writeRandom(join(src, 'b'), 10_000);
      expect(run('mount', ['-o', 'remount,ro', mnt]).ok).toBe(true);
      const readOnly = lb(['backup', src, repo, '--catalog', catalog]);
      expect(readOnly.status).toBe(1);
      expect(readOnly.stderr).toMatch(/^lb: the repository is on a read-only filesystem; remount it read-write and run again.*\n$/);
      expect(readOnly.stderr.split('\n')).toHaveLength(2);
      expect(run('mount', ['-o', 'remount,rw', mnt]).ok).toBe(true);
      expect(repositoryState(repo)).toEqual({ names: ['.lb', first.snapshot!, 'latest'], latest: first.snapshot, tmp: [], locked: false });
      const second = backup(src, repo, catalog);
      expect(rsyncDifferences(src, join(repo, second.snapshot!, 'tree'))).toEqual([]);
    } finally {
      umount(mnt);
    }
  });

  it('makes a twin of an object at the hard-link limit (real EMLINK on ext4) and goes on', (ctx) => {
    const work = tempDir();
    const image = join(work, 'ext4.img');
    const mnt = join(work, 'mnt');
    mountExt4OrSkip(ctx, image, 96, mnt);
    try {
      // 65,010 entries of one content and metadata: one object, 10 links past ext4's 65,000.
      const src = join(work, 'src');
      const entries = 65_010;
      mkdirSync(src);
      const originals = [join(src, 'original-a'), join(src, 'original-b')];
      for (const original of originals) {
        writeFileSync(original, 'the same few bytes\n');
        utimesSync(original, 1_600_000_000, 1_600_000_000);
      }
      for (let i = 0; i < entries - 2; i++) {
        const dir = join(src, `d${Math.floor(i / 5000)}`);
        if (i % 5000 === 0) mkdirSync(dir);
        // Source copies are hard links too (two originals, each well under the source's own limit).
        linkSync(originals[i % 2]!, join(dir, `f${i}`));
      }
      utimesSync(src, 1_600_000_000, 1_600_000_000);
      const repo = join(mnt, 'repo');
      const catalog = join(work, 'catalog.sqlite');
      const first = backup(src, repo, catalog);
      expect(first.files.total).toBe(entries);
      const hash = createHash('sha256').update('the same few bytes\n').digest('hex');
      const objectDir = join(repo, '.lb', 'objects', hash.slice(0, 2));
      const objects = readdirSync(objectDir).filter((n) => n.startsWith(hash)).sort();
      expect(objects).toEqual([hash, `${hash}+1`]);
      expect(lstatSync(join(objectDir, hash)).nlink).toBe(65_000);
      expect(lstatSync(join(objectDir, `${hash}+1`)).nlink).toBe(entries - 65_000 + 2);
      expect(rsyncDifferences(src, join(repo, first.snapshot!, 'tree'), { hardLinks: false })).toEqual([]);

      // A second snapshot of the same tree needs 65,010 more links: twins +1 and +2.
      const second = backup(src, repo, catalog, ['--always']);
      expect(second.bytes.transferred).toBe(0);
      expect(readdirSync(objectDir).filter((n) => n.startsWith(hash)).sort()).toEqual([hash, `${hash}+1`, `${hash}+2`]);
      expect(rsyncDifferences(src, join(repo, second.snapshot!, 'tree'), { hardLinks: false })).toEqual([]);
      expect(readFileSync(join(repo, second.snapshot!, 'tree', 'd13', 'f65007'), 'utf8')).toBe('the same few bytes\n');
    } finally {
      umount(mnt);
    }
  });
});
