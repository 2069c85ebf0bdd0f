// A twin made at the hard-link limit while its object is still staged. New
// objects wait in the staging area under temporary names until their batch is
// published; a twin is made in the store at once, so it must take the object's
// name, not the temporary one. A whole backup reaches this only when 65,000
// links are made within one publishing interval (5 s), so the store is driven
// here directly, on a real ext4 filesystem with its real limit.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ObjectGuard } from '../src/repo/object-guard.js';
import { ObjectStore } from '../src/repo/objects.js';
import { StagingFiles } from '../src/repo/staging-files.js';
import { WritePool } from '../src/repo/write-pool.js';
import { mountExt4OrSkip, tempDir, umount } from './helpers.js';

describe('a twin of a staged object', () => {
  it('is named after the object, and every tree link lands on the object or its twin', async (ctx) => {
    const work = tempDir();
    const mnt = join(work, 'mnt');
    mountExt4OrSkip(ctx, join(work, 'ext4.img'), 64, mnt);
    try {
      const lbDir = join(mnt, '.lb');
      const objects = join(lbDir, 'objects');
      const incoming = join(lbDir, 'tmp', 'incoming');
      const tree = join(mnt, 'tree');
      for (const dir of [objects, incoming, tree]) mkdirSync(dir, { recursive: true });
      const pool = new WritePool();
      const store = new ObjectStore(objects, new StagingFiles(incoming), false, new ObjectGuard(lbDir, 0n, () => {}), pool);

      const content = Buffer.from('the same few bytes\n');
      const hash = createHash('sha256').update(content).digest('hex');
      const meta = { mode: 0o644, uid: process.getuid!(), gid: process.getgid!(), mtimeNs: 1_600_000_000_000_000_000n };
      const { path, fd } = store.staging.tempFile();
      writeSync(fd, content);
      const written = Promise.resolve();
      const name = store.adopt(path, hash, meta, content.length, true, { fd, written, failed: () => false, sizeToSet: null });
      expect(name).toBe(hash);
      const staged = store.pathOf(name);
      expect(staged.startsWith(incoming)).toBe(true);

      const links = 65_010;
      for (let d = 0; d < links / 5000; d++) mkdirSync(join(tree, `d${d}`));
      for (let i = 0; i < links; i++) {
        store.linkInto(staged, Buffer.from(join(tree, `d${Math.floor(i / 5000)}`, `f${i}`)));
        if (i % 1000 === 999) await pool.room();
      }
      await pool.drain();

      const storeDir = join(objects, hash.slice(0, 2));
      expect(readdirSync(objects)).toEqual([hash.slice(0, 2)]);
      expect(readdirSync(storeDir)).toEqual([`${hash}+1`]);
      const linked = readdirSync(tree, { recursive: true, withFileTypes: true }).filter((e) => e.isFile());
      expect(linked).toHaveLength(links);
      await store.publish();
      expect(readdirSync(storeDir).sort()).toEqual([hash, `${hash}+1`]);
    } finally {
      umount(mnt);
    }
  }, 120_000);
});
