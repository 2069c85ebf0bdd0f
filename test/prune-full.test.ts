// A full disk cannot stop a prune, which only frees space: the block lb keeps in
// .lb/reserve makes room for the lock file, the trash is there from the start, and
// the marks a prune writes only to save later work give way to ENOSPC. A tmpfs
// has no root reserve, so it is full for root too.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statfsSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, lb, mountOrSkip, snapshots, tempDir, umount } from './helpers.js';

function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

describe('lb prune on a full disk', () => {
  it('takes the lock with the reserve, removes, collects and frees, then keeps a reserve again', (ctx) => {
    const work = tempDir();
    const disk = join(work, 'disk');
    mountOrSkip(ctx, ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs'], disk);
    try {
      const src = join(work, 'src');
      const repo = join(disk, 'repo');
      mkdirSync(src);
      for (let i = 0; i < 4; i++) {
        writeFileSync(join(src, 'photo.jpg'), randomBytes(300_000)); // each snapshot its own content
        backup(src, repo, join(work, 'catalog.sqlite'), ['--always']);
        spawnSync('sleep', ['1.1']);
      }
      expect(existsSync(join(repo, '.lb', 'reserve'))).toBe(true);
      expect(existsSync(join(repo, '.lb', 'trash'))).toBe(true);
      const fill = spawnSync('sh', ['-c', `head -c 20000000 /dev/zero > ${join(disk, 'filler')}`], { encoding: 'utf8' });
      expect(fill.stderr).toMatch(/No space left on device/);
      expect(freeBytes(disk)).toBeLessThan(4096);
      const kept = snapshots(repo).at(-1)!;

      const r = lb(['prune', repo, '--keep-last', '1', '--json']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const outcome = JSON.parse(r.stdout) as { removed: string[]; freed: { objects: number; bytes: number } };
      expect(outcome.removed).toHaveLength(3);
      expect(outcome.freed.bytes).toBe(900_000);
      expect(snapshots(repo)).toEqual([kept]);
      expect(readdirSync(join(repo, '.lb', 'trash'))).toEqual([]);
      expect(existsSync(join(repo, '.lb', 'lock'))).toBe(false);
      expect(freeBytes(disk)).toBeGreaterThan(800_000);
      // Room again: the reserve is back for the next full disk, and the repository is sound.
      expect(existsSync(join(repo, '.lb', 'reserve'))).toBe(true);
      expect(lb(['verify', repo, '--read-data'])).toMatchObject({ status: 0, stderr: '' });
    } finally {
      umount(disk);
    }
  });
});
