// A repository that was damaged by hand, lost files, or saw its clock go back:
// damage never spreads into new snapshots, and every later run still works.
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deepFile, lb, rsyncDifferences, snapshots, tempDir } from './helpers.js';
import { startSshd, type Sshd } from './sshd.js';

function run(source: string, repo: string, work: string, extra: string[] = []) {
  return lb(['backup', source, repo, '--json', '--catalog', join(work, 'catalog.sqlite'), ...extra]);
}

function ok(r: { status: number; stdout: string; stderr: string }) {
  if (r.status !== 0) throw new Error(`lb exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function photos(root: string, count = 5): void {
  mkdirSync(root, { recursive: true });
  for (let i = 0; i < count; i++) writeFileSync(join(root, `IMG_${i}.jpg`), `photo ${i} `.repeat(100 + i));
}

describe('a damaged repository', () => {
  it('does not link an object edited through a snapshot tree into the next snapshot (appended to)', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    photos(source);
    ok(run(source, repo, work));
    writeFileSync(join(repo, 'latest', 'tree', 'IMG_1.jpg'), 'x', { flag: 'a' });
    const r = run(source, repo, work, ['--always']);
    const summary = ok(r);
    expect(r.stderr).toMatch(/IMG_1|object [0-9a-f]{64}/);
    expect(r.stderr).toMatch(/quarantine/);
    expect(summary.files.linked).toBe(4);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
    expect(readdirSync(join(repo, '.lb', 'quarantine'))).toHaveLength(1);
    expect(readFileSync(join(repo, 'latest', 'log'), 'utf8')).toMatch(/^repaired: object [0-9a-f]{64}/m);
  });

  it('does not link an object whose byte was flipped with its mtime kept, even without the catalog', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    photos(source);
    ok(run(source, repo, work));
    const damaged = join(repo, 'latest', 'tree', 'IMG_2.jpg');
    const before = lstatSync(damaged);
    const fd = openSync(damaged, 'r+');
    writeSync(fd, 'X', 3);
    closeSync(fd);
    utimesSync(damaged, before.atime, before.mtime);
    rmSync(join(work, 'catalog.sqlite'));
    ok(run(source, repo, work, ['--always']));
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
    // And once more: the repaired store is sound, nothing is quarantined twice.
    ok(run(source, repo, work, ['--always']));
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
    expect(readdirSync(join(repo, '.lb', 'quarantine'))).toHaveLength(1);
  });

  it('reads no object again when nothing touched the store (no false alarm after an ordinary run)', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    photos(source);
    ok(run(source, repo, work));
    const r = run(source, repo, work, ['--always']);
    expect(ok(r).files.linked).toBe(5);
    expect(r.stderr).toBe('');
    expect(existsSync(join(repo, '.lb', 'quarantine'))).toBe(false);
  });

  it('takes a removed object from the source again', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    photos(source);
    ok(run(source, repo, work));
    const objects = join(repo, '.lb', 'objects');
    const fanout = readdirSync(objects)[0]!;
    unlinkSync(join(objects, fanout, readdirSync(join(objects, fanout))[0]!));
    writeFileSync(join(source, 'new.txt'), 'a change, so that a snapshot is made');
    const summary = ok(run(source, repo, work));
    expect(summary.files.new).toBe(2);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('does not use a snapshot whose manifest was removed as the base, and says so', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    photos(source);
    const first = ok(run(source, repo, work)).snapshot;
    writeFileSync(join(source, 'second.txt'), 'second');
    const second = ok(run(source, repo, work)).snapshot;
    unlinkSync(join(repo, second, 'manifest'));
    writeFileSync(join(source, 'third.txt'), 'third');
    const r = run(source, repo, work);
    const third = ok(r);
    expect(r.stderr).toContain(`snapshot ${second} has no manifest`);
    expect(r.stderr).toContain(`repaired to point to ${first}`);
    expect(third.created).toBe(true);
    expect(readlinkSync(join(repo, 'latest'))).toBe(third.snapshot);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('repairs a latest link left dangling by rm -rf of the newest snapshot', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    photos(source);
    utimesSync(source, 1_600_000_000, 1_600_000_000);
    const first = ok(run(source, repo, work)).snapshot;
    writeFileSync(join(source, 'second.txt'), 'second');
    const second = ok(run(source, repo, work)).snapshot;
    rmSync(join(repo, second), { recursive: true });
    const r = run(source, repo, work);
    const summary = ok(r);
    expect(r.stderr).toContain(`latest points to ${second}, which is gone; repaired to point to ${first}`);
    expect(summary.created).toBe(true);
    expect(readlinkSync(join(repo, 'latest'))).toBe(summary.snapshot);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
    // With nothing changed since the snapshot fallen back to, the repaired link alone is what the run leaves.
    rmSync(join(repo, summary.snapshot), { recursive: true });
    rmSync(join(source, 'second.txt'));
    utimesSync(source, 1_600_000_000, 1_600_000_000);
    const again = run(source, repo, work);
    expect(ok(again).created).toBe(false);
    expect(readlinkSync(join(repo, 'latest'))).toBe(first);
  });
});

describe('runs that failed on ordinary input', () => {
  it('backs up many files sharing content but not mtime (copies made across a periodic publish)', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    mkdirSync(source);
    for (let i = 0; i < 4200; i++) {
      writeFileSync(join(source, `f${i}`), 'same');
      utimesSync(join(source, `f${i}`), 1_000_000_000 + i, 1_000_000_000 + i);
    }
    const summary = ok(run(source, repo, work));
    expect(summary.files.new + summary.files.copied).toBe(4200);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('stores a path too long for the repository work directory (beyond PATH_MAX there)', () => {
    const work = tempDir();
    const source = join(work, 's');
    const repo = join(work, 'repo');
    // A file whose absolute source path is 4,080 bytes (within PATH_MAX), which under .lb/tmp/<name>/tree/ is longer.
    const { parts, file } = deepFile(source, 4080);
    expect(Buffer.byteLength(join(source, ...parts, file))).toBe(4080);
    expect(Buffer.byteLength(join(repo, '.lb', 'tmp', '2026.01.01-00.00.00', 'tree', ...parts, file))).toBeGreaterThan(4096);
    ok(run(source, repo, work));
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
    // Rebuilt from the previous manifest too (an identical prefix replayed), and removed when aborted.
    ok(run(source, repo, work, ['--always']));
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });
});

describe('snapshot names', () => {
  it('never sort before an existing snapshot, even when the clock went back', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    photos(source);
    const first = ok(run(source, repo, work)).snapshot;
    // A snapshot made while the clock was an hour ahead (or before a DST fall-back).
    const ahead = '2099.12.31-23.59.59';
    renameSync(join(repo, first), join(repo, ahead));
    unlinkSync(join(repo, 'latest'));
    symlinkSync(ahead, join(repo, 'latest'));
    writeFileSync(join(source, 'new.txt'), 'new');
    const next = ok(run(source, repo, work)).snapshot;
    expect(next).toBe('2100.01.01-00.00.00');
    expect(snapshots(repo)).toEqual([ahead, next]);
    writeFileSync(join(source, 'newer.txt'), 'newer');
    expect(ok(run(source, repo, work)).snapshot).toBe('2100.01.01-00.00.01');
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });
});

describe('the quick check when pulling', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(() => sshd?.stop());

  it('never trusts a record of another source: same name, size and mtime, other content', () => {
    const work = tempDir();
    const repo = join(work, 'repo');
    for (const [host, content] of [
      ['hostA', 'alpha-01'],
      ['hostB', 'bravo-02'],
    ] as const) {
      mkdirSync(join(work, host));
      writeFileSync(join(work, host, 'hostname'), content);
      utimesSync(join(work, host, 'hostname'), 1_600_000_000, 1_600_000_000);
    }
    for (const host of ['hostA', 'hostB']) {
      const r = lb(['backup', `root@127.0.0.1:${join(work, host)}`, repo, '--json', '--ssh-p', String(sshd.port)], sshd.env);
      ok(r);
      expect(readFileSync(join(repo, 'latest', 'tree', 'hostname'), 'utf8')).toBe(readFileSync(join(work, host, 'hostname'), 'utf8'));
      expect(rsyncDifferences(join(work, host), join(repo, 'latest', 'tree'))).toEqual([]);
    }
  });
});
