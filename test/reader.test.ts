// The repository opened to read: on repositories made by the real lb, on a
// read-only mount, and with the snapshot names a user types.
import { mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Repository } from '../src/repo/repository.js';
import { RepositoryError } from '../src/repo/layout.js';
import { MANIFEST_HEADER } from '../src/repo/manifest.js';
import { backup, mountOrSkip, run, tempDir, umount } from './helpers.js';

/** A repository with three snapshots of a changing source. */
function threeSnapshots(): { repo: string; names: string[]; source: string } {
  const work = tempDir();
  const source = join(work, 'src');
  const repo = join(work, 'repo');
  mkdirSync(join(source, 'album'), { recursive: true });
  writeFileSync(join(source, 'album', 'a.jpg'), 'a'.repeat(1000));
  writeFileSync(join(source, 'b.txt'), 'b'.repeat(10));
  const catalog = join(work, 'catalog.sqlite');
  const names = [backup(source, repo, catalog).snapshot!];
  writeFileSync(join(source, 'album', 'c.jpg'), 'c'.repeat(300));
  names.push(backup(source, repo, catalog).snapshot!);
  writeFileSync(join(source, 'copy.jpg'), 'c'.repeat(300));
  names.push(backup(source, repo, catalog).snapshot!);
  return { repo, names, source };
}

/** Empty snapshot directories with bare manifests: enough for name resolution. */
function namedOnly(names: string[]): string {
  const repo = join(tempDir(), 'repo');
  mkdirSync(join(repo, '.lb'), { recursive: true });
  writeFileSync(join(repo, '.lb', 'format'), 'lb repository\nformat 1\nhash sha256\n');
  for (const name of names) {
    mkdirSync(join(repo, name));
    writeFileSync(join(repo, name, 'manifest'), MANIFEST_HEADER + '\n');
  }
  return repo;
}

describe('a repository opened to read', () => {
  it('lists complete snapshots and streams their manifests, with summaries as the backup counted them', () => {
    const { repo, names } = threeSnapshots();
    const reader = Repository.open(repo, 'read');
    expect(reader.snapshots()).toEqual(names);
    expect(reader.resolve()).toBe(names[2]);
    const paths = [...reader.records(names[1]!)].map((r) => r.path.toString());
    expect(paths).toEqual(['', 'album', 'album/a.jpg', 'album/c.jpg', 'b.txt']);
    const first = reader.summary(names[0]!);
    expect(first).toEqual({ files: 2, bytes: 1010, new: 2, copied: 0, linked: 0, newBytes: 1010, directories: 2, symlinks: 0, hardLinks: 0, status: 'ok' });
    const third = reader.summary(names[2]!);
    expect(third).toMatchObject({ files: 4, bytes: 1610, new: 0, newBytes: 0, status: 'ok' });
    expect(third.copied + third.linked).toBe(4);
    // Without its summary file (a snapshot of an older lb) the manifest gives the same figures.
    unlinkSync(join(repo, names[2]!, 'summary'));
    expect(reader.summary(names[2]!)).toEqual({ ...third, status: null });
  });

  it('works on a read-only mount of the repository, beside a lock held by a running backup', (ctx) => {
    const { repo, names } = threeSnapshots();
    writeFileSync(join(repo, '.lb', 'lock'), JSON.stringify({ host: 'elsewhere', pid: 1, since: '2026-01-01T00:00:00Z' }) + '\n');
    const mnt = join(tempDir(), 'ro');
    mountOrSkip(ctx, ['--bind', repo], mnt);
    try {
      expect(run('mount', ['-o', 'remount,bind,ro', mnt]).ok).toBe(true);
      const reader = Repository.open(mnt, 'read');
      expect(reader.snapshots()).toEqual(names);
      expect([...reader.records(reader.resolve('latest'))].map((r) => r.path.toString())).toEqual(['', 'album', 'album/a.jpg', 'album/c.jpg', 'b.txt', 'copy.jpg']);
      expect(reader.summary(names[0]!).files).toBe(2);
    } finally {
      umount(mnt);
    }
  });

  it('does not count a snapshot directory without its manifest, nor follow a dangling latest', () => {
    const { repo, names } = threeSnapshots();
    rmSync(join(repo, names[2]!, 'manifest'));
    const reader = Repository.open(repo, 'read');
    expect(reader.snapshots()).toEqual(names.slice(0, 2));
    expect(reader.resolve()).toBe(names[1]);
    rmSync(join(repo, names[1]!), { recursive: true });
    expect(reader.resolve('latest')).toBe(names[0]);
  });

  it('refuses, in one line each, what is not a repository it can read', () => {
    const work = tempDir();
    expect(() => Repository.open(join(work, 'missing'), 'read')).toThrow(new RepositoryError(`${join(work, 'missing')} does not exist, so it is no lb repository`));
    writeFileSync(join(work, 'file'), '');
    expect(() => Repository.open(join(work, 'file'), 'read')).toThrow(`${join(work, 'file')} is not a directory, so not an lb repository`);
    const future = namedOnly([]);
    writeFileSync(join(future, '.lb', 'format'), 'lb repository\nformat 9\nhash sha256\n');
    expect(() => Repository.open(future, 'read')).toThrow(/of a format this lb does not know/);
  });
});

describe('snapshot names as a user types them', () => {
  const names = ['2026.10.31-03.00.00', '2026.11.01-03.00.00', '2026.11.02-03.00.00', '2026.11.02-15.30.00', '2027.01.01-00.00.00'];

  it('takes a full name, a unique prefix, or latest', () => {
    const reader = Repository.open(namedOnly(names), 'read');
    expect(reader.resolve('2026.11.01-03.00.00')).toBe('2026.11.01-03.00.00');
    expect(reader.resolve('2026.10')).toBe('2026.10.31-03.00.00');
    expect(reader.resolve('2027')).toBe('2027.01.01-00.00.00');
    expect(reader.resolve('2026.11.02-15')).toBe('2026.11.02-15.30.00');
    expect(reader.resolve()).toBe('2027.01.01-00.00.00');
  });

  it('names the candidates of an ambiguous prefix, and the nearest snapshots of an unknown name', () => {
    const reader = Repository.open(namedOnly(names), 'read');
    expect(() => reader.resolve('2026.11')).toThrow('2026.11 could be any of 3 snapshots (2026.11.01-03.00.00, 2026.11.02-03.00.00, 2026.11.02-15.30.00); give more of the name');
    expect(() => reader.resolve('2026.11.05')).toThrow(/no snapshot 2026\.11\.05 in .*; the nearest are 2026\.11\.02-15\.30\.00 and 2027\.01\.01-00\.00\.00$/);
    expect(() => reader.resolve('1999')).toThrow(/the nearest are 2026\.10\.31-03\.00\.00 and 2026\.11\.01-03\.00\.00$/);
    expect(() => reader.resolve('2030')).toThrow(/the nearest are 2026\.11\.02-15\.30\.00 and 2027\.01\.01-00\.00\.00$/);
  });

  it('says when the repository holds no snapshot yet', () => {
    const repo = namedOnly([]);
    expect(() => Repository.open(repo, 'read').resolve()).toThrow(`the repository ${repo} holds no snapshot yet`);
  });
});
