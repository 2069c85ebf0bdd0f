// End-to-end: the real lb binary, the real filesystem, rsync as the oracle.
import { chmodSync, chownSync, cpSync, linkSync, lstatSync, mkdirSync, readFileSync, renameSync, symlinkSync, utimesSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, inode, settle, lb, objectCount, openedPaths, rsyncDifferences, snapshots, tempDir } from './helpers.js';

const asRoot = process.getuid?.() === 0;

/** A tree with every kind of entry the backup must keep faithfully. */
function awkwardTree(root: string): void {
  mkdirSync(join(root, 'photos', '2019', 'holiday'), { recursive: true });
  mkdirSync(join(root, 'empty'));
  writeFileSync(join(root, 'photos', '2019', 'holiday', 'IMG_0001.jpg'), randomBytes(200_000));
  writeFileSync(join(root, 'photos', '2019', 'holiday', 'IMG_0002.jpg'), randomBytes(50_000));
  writeFileSync(join(root, 'zero'), '');
  writeFileSync(Buffer.from(join(root, 'caf\xe9-latin1'), 'latin1'), 'not utf-8 name');
  writeFileSync(join(root, 'new\nline'), 'newline in name');
  writeFileSync(join(root, '-leading-dash'), 'dash');
  writeFileSync(join(root, 'spaces and ünïcode.txt'), 'unicode');
  writeFileSync(join(root, 'private'), 'secret');
  chmodSync(join(root, 'private'), 0o600);
  writeFileSync(join(root, 'script.sh'), '#!/bin/sh\n');
  chmodSync(join(root, 'script.sh'), 0o755);
  symlinkSync('photos/2019/holiday/IMG_0001.jpg', join(root, 'link-to-photo'));
  symlinkSync('does/not/exist', join(root, 'dangling'));
  linkSync(join(root, 'photos', '2019', 'holiday', 'IMG_0002.jpg'), join(root, 'hardlink-to-0002'));
  spawnSync('mkfifo', [join(root, 'fifo')]);
  utimesSync(join(root, 'zero'), 1_000_000_000, 1_000_000_000.5);
  utimesSync(join(root, 'photos', '2019', 'holiday', 'IMG_0001.jpg'), 1_500_000_000, 1_500_000_000);
  if (asRoot) {
    chownSync(join(root, 'private'), 1234, 4321);
    chownSync(join(root, 'empty'), 65534, 65534);
  }
  chmodSync(join(root, 'photos', '2019'), 0o750);
}

describe('lb backup (local)', () => {
  it('makes a snapshot the rsync oracle finds identical to the source', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    mkdirSync(source);
    awkwardTree(source);
    const summary = backup(source, repo, join(work, 'catalog.sqlite'));
    expect(summary.created).toBe(true);
    const tree = join(repo, 'latest', 'tree');
    // The oracle sees the FIFO in the source; lb skips it by design, so that is the one line allowed.
    const diffs = rsyncDifferences(source, tree);
    expect(diffs.filter((d) => !d.endsWith(' fifo'))).toEqual([]);
    expect(diffs.length).toBe(1);
    expect(summary.skipped.map((s) => s.path)).toEqual(['fifo']);
    expect(existsSync(join(tree, 'fifo'))).toBe(false);
    // Source hard links stay hard links; every regular file is a link to an object.
    expect(inode(join(tree, 'hardlink-to-0002'))).toBe(inode(join(tree, 'photos', '2019', 'holiday', 'IMG_0002.jpg')));
    expect(lstatSync(join(tree, 'zero')).nlink).toBeGreaterThanOrEqual(2);
    expect(readFileSync(Buffer.from(join(tree, 'caf\xe9-latin1'), 'latin1'), 'utf8')).toBe('not utf-8 name');
    expect(existsSync(join(repo, summary.snapshot!, 'manifest'))).toBe(true);
    expect(existsSync(join(repo, summary.snapshot!, 'log'))).toBe(true);
  });

  it('links moved and renamed directories without reading or transferring them', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    for (let d = 0; d < 4; d++) {
      mkdirSync(join(source, 'albums', `album${d}`), { recursive: true });
      for (let f = 0; f < 5; f++) writeFileSync(join(source, 'albums', `album${d}`, `p${f}.jpg`), randomBytes(20_000 + f));
    }
    settle();
    const first = backup(source, repo, catalog);
    expect(first.files.new).toBe(20);

    mkdirSync(join(source, 'sorted'));
    renameSync(join(source, 'albums', 'album1'), join(source, 'sorted', 'Holiday 2019'));
    renameSync(join(source, 'albums', 'album2'), join(source, 'albums', 'renamed'));
    const { run, opened } = openedPaths(['backup', source, repo, '--json', '--catalog', catalog]);
    expect(run.status).toBe(0);
    const second = JSON.parse(run.stdout);
    expect(second.created).toBe(true);
    expect(second.files).toEqual({ new: 0, copied: 0, linked: 20, total: 20 });
    expect(second.bytes.transferred).toBe(0);
    expect(opened.filter((p) => p.startsWith(source) && p.endsWith('.jpg'))).toEqual([]);
    const [before, after] = snapshots(repo);
    for (let f = 0; f < 5; f++) {
      expect(inode(join(repo, after!, 'tree', 'sorted', 'Holiday 2019', `p${f}.jpg`))).toBe(inode(join(repo, before!, 'tree', 'albums', 'album1', `p${f}.jpg`)));
    }
    expect(rsyncDifferences(source, join(repo, after!, 'tree'))).toEqual([]);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('copies a duplicate with a new mtime on the destination, transferring nothing', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    mkdirSync(source);
    writeFileSync(join(source, 'original.jpg'), randomBytes(300_000));
    utimesSync(join(source, 'original.jpg'), 1_600_000_000, 1_600_000_000);
    backup(source, repo, catalog);
    const objectsBefore = objectCount(repo);

    cpSync(join(source, 'original.jpg'), join(source, 'copy.jpg'));
    utimesSync(join(source, 'copy.jpg'), 1_700_000_000, 1_700_000_000);
    const second = backup(source, repo, catalog);
    expect(second.files).toEqual({ new: 0, copied: 1, linked: 1, total: 2 });
    expect(second.bytes.transferred).toBe(0);
    expect(objectCount(repo)).toBe(objectsBefore + 1);
    const tree = join(repo, 'latest', 'tree');
    expect(inode(join(tree, 'copy.jpg'))).not.toBe(inode(join(tree, 'original.jpg')));
    expect(rsyncDifferences(source, tree)).toEqual([]);
  });

  it('reads no file contents and makes no snapshot when nothing changed', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    mkdirSync(join(source, 'a'), { recursive: true });
    for (let f = 0; f < 10; f++) writeFileSync(join(source, 'a', `f${f}`), randomBytes(1000));
    settle();
    backup(source, repo, catalog);

    const { run, opened } = openedPaths(['backup', source, repo, '--json', '--catalog', catalog]);
    expect(run.status).toBe(0);
    const second = JSON.parse(run.stdout);
    expect(second.created).toBe(false);
    expect(second.snapshot).toBeNull();
    expect(second.bytes.read).toBe(0);
    const sourceFiles = opened.filter((p) => p.startsWith(join(source, 'a') + '/'));
    expect(sourceFiles).toEqual([]);
    expect(snapshots(repo).length).toBe(1);

    const forced = backup(source, repo, catalog, ['--always']);
    expect(forced.created).toBe(true);
    expect(snapshots(repo).length).toBe(2);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('follows deletions, edits and mode changes into the next snapshot', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    mkdirSync(join(source, 'd'), { recursive: true });
    for (const n of ['a', 'b', 'c', 'z']) writeFileSync(join(source, 'd', n), n.repeat(100));
    backup(source, repo, catalog);
    const first = snapshots(repo)[0]!;

    spawnSync('rm', [join(source, 'd', 'z')]);
    writeFileSync(join(source, 'd', 'b'), 'rewritten');
    chmodSync(join(source, 'd', 'c'), 0o640);
    const second = backup(source, repo, catalog);
    expect(second.created).toBe(true);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
    // The earlier snapshot is untouched.
    expect(readdirSync(join(repo, first, 'tree', 'd')).sort()).toEqual(['a', 'b', 'c', 'z']);
    expect(readFileSync(join(repo, first, 'tree', 'd', 'b'), 'utf8')).toBe('b'.repeat(100));

    // Only a deletion at the very end of the walk must still count as a change.
    spawnSync('rm', [join(source, 'd', 'c')]);
    expect(backup(source, repo, catalog).created).toBe(true);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('with a fresh catalog, re-reads unknown files but re-sends nothing already stored', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    mkdirSync(source);
    writeFileSync(join(source, 'f'), 'one');
    backup(source, repo, join(work, 'c1.sqlite'));
    writeFileSync(join(source, 'g'), 'two');
    // A fresh catalog: every file is unknown to it, so each is hashed (read) once and nothing is re-sent.
    const second = backup(source, repo, join(work, 'c2.sqlite'));
    expect(second.files).toEqual({ new: 1, copied: 0, linked: 1, total: 2 });
    expect(second.bytes.transferred).toBe(3);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });
});

describe('lb backup refuses bad command lines and writes nothing', () => {
  it('refuses a non-empty directory that is not a repository', () => {
    const work = tempDir();
    mkdirSync(join(work, 'src'));
    mkdirSync(join(work, 'other'));
    writeFileSync(join(work, 'other', 'keep.txt'), 'precious');
    const r = lb(['backup', join(work, 'src'), join(work, 'other'), '--catalog', join(work, 'c.sqlite')]);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/not empty and not an lb repository/);
    expect(readdirSync(join(work, 'other'))).toEqual(['keep.txt']);
  });

  it('accepts the short form lb SRC DST', () => {
    const work = tempDir();
    mkdirSync(join(work, 'src'));
    writeFileSync(join(work, 'src', 'f'), 'x');
    const r = lb([join(work, 'src'), join(work, 'repo'), '--catalog', join(work, 'c.sqlite')]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^lb: snapshot \d{4}\.\d{2}\.\d{2}-\d{2}\.\d{2}\.\d{2} of /);
    expect(r.stdout).toMatch(/1 new, 0 copied, 0 linked/);
  });

  it('with -v lists every entry of the new snapshot, those before the first change too', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    mkdirSync(join(source, 'album'), { recursive: true });
    writeFileSync(join(source, 'album', 'a.jpg'), 'a');
    writeFileSync(join(source, 'b.txt'), 'b');
    utimesSync(source, 1_600_000_000, 1_600_000_000);
    backup(source, repo, join(work, 'catalog.sqlite'));
    writeFileSync(join(source, 'z.txt'), 'z'); // sorts last: everything before it is unchanged
    utimesSync(source, 1_600_000_000, 1_600_000_000);
    const r = lb(['backup', source, repo, '-v', '--catalog', join(work, 'catalog.sqlite')]);
    expect(r.status, r.stderr).toBe(0);
    const listed = r.stdout.split('\n').filter((line) => /^(new|copied|linked|made) /.test(line));
    expect(listed).toEqual(['made   /', 'made   album/', 'linked album/a.jpg', 'linked b.txt', 'new    z.txt']);
  });
});
