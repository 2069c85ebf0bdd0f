// lb du: the accounting on hand-made inputs, then on repositories made by the
// real lb from a changing source, against figures lb has no part in: Python
// walking the snapshot trees with os.lstat, du(1) on the repository, and the
// space an actual `rm -rf` of each snapshot frees on a copy of the repository.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatBytes } from '../src/cli/format.js';
import { accountUsage, type SnapshotFiles, type StoreObject, type TreeFile } from '../src/repo/usage.js';
import { backup, lb, tempDir } from './helpers.js';

/** A tree file of `size` bytes (disk: whole 4 KiB blocks), inode `inode` with `nlink` links. */
const file = (inode: number, size: number, nlink: number): TreeFile => ({ inode, size, diskBytes: Math.ceil(size / 4096) * 4096, nlink });
const object = (inode: number, size: number): StoreObject => ({ inode, size, diskBytes: Math.ceil(size / 4096) * 4096, nlink: 2 });

describe('the accounting', () => {
  it('gives an object shared by two snapshots to neither alone, and to the older as added', () => {
    const snapshots: SnapshotFiles[] = [
      { name: 'a', files: [file(1, 100, 3)] },
      { name: 'b', files: [file(1, 100, 3)] },
    ];
    const usage = accountUsage(snapshots, [object(1, 100)]);
    expect(usage.snapshots).toEqual([
      { name: 'a', exclusiveBytes: 0, addedBytes: 100, files: 1 },
      { name: 'b', exclusiveBytes: 0, addedBytes: 0, files: 1 },
    ]);
    expect(usage.totals).toEqual({ storedBytes: 100, storedDiskBytes: 4096, apparentBytes: 200, ratio: 2, unreferencedObjects: 0, unreferencedBytes: 0 });
  });

  it('gives an object in one snapshot only to it, counted once when the snapshot links it from two paths', () => {
    const snapshots: SnapshotFiles[] = [
      { name: 'a', files: [file(1, 100, 2), file(2, 30, 3), file(2, 30, 3)] },
      { name: 'b', files: [file(3, 7, 2)] },
    ];
    const usage = accountUsage(snapshots, [object(1, 100), object(2, 30), object(3, 7)]);
    expect(usage.snapshots).toEqual([
      { name: 'a', exclusiveBytes: 130, addedBytes: 130, files: 3 },
      { name: 'b', exclusiveBytes: 7, addedBytes: 7, files: 1 },
    ]);
    expect(usage.totals).toMatchObject({ storedBytes: 137, apparentBytes: 167 });
  });

  it('does not free an object that a link outside the snapshots keeps', () => {
    // nlink 3: the store's name, the snapshot's path, and a hard link someone made elsewhere.
    const usage = accountUsage([{ name: 'a', files: [file(1, 100, 3)] }], [object(1, 100)]);
    expect(usage.snapshots[0]).toMatchObject({ exclusiveBytes: 0, addedBytes: 100 });
  });

  it('frees a tree file that is no hard link, and counts store objects no snapshot links as unreferenced, once each', () => {
    const usage = accountUsage([{ name: 'a', files: [file(5, 40, 1), file(1, 100, 2)] }], [object(1, 100), object(2, 9), object(3, 5000), object(3, 5000)]);
    expect(usage.snapshots[0]).toMatchObject({ exclusiveBytes: 140, addedBytes: 140 });
    expect(usage.totals).toEqual({
      storedBytes: 5149,
      storedDiskBytes: 5 * 4096, // 40, 100 and 9 bytes take a block each, 5000 two
      apparentBytes: 140,
      ratio: 140 / 5149,
      unreferencedObjects: 2,
      unreferencedBytes: 5009,
    });
  });

  it('gives zero figures for an empty repository', () => {
    expect(accountUsage([], [])).toEqual({
      snapshots: [],
      totals: { storedBytes: 0, storedDiskBytes: 0, apparentBytes: 0, ratio: 0, unreferencedObjects: 0, unreferencedBytes: 0 },
    });
  });
});

const FIXED_TIME = 1_700_000_000;

/**
 * Four snapshots of a changing source: duplicates with the same metadata (one
 * object) and with another mtime (a variant), then removals, an edit, a moved
 * album, additions. Objects end up linked by one snapshot, by two, by three.
 */
function repository(): { work: string; repo: string; names: string[] } {
  const work = tempDir();
  const source = join(work, 'src');
  const repo = join(work, 'repo');
  const catalog = join(work, 'catalog.sqlite');
  const put = (path: string, content: Buffer | string) => {
    writeFileSync(join(source, path), content);
    utimesSync(join(source, path), FIXED_TIME, FIXED_TIME);
  };
  mkdirSync(join(source, 'album'), { recursive: true });
  const a = randomBytes(20_000);
  put('album/a.jpg', a);
  put('album/b.jpg', randomBytes(7_000));
  put('notes.txt', 'n'.repeat(300));
  put('copy-of-a.jpg', a);
  writeFileSync(join(source, 'a-touched.jpg'), a);
  const names = [backup(source, repo, catalog).snapshot!];
  put('notes.txt', 'N'.repeat(450));
  const c = randomBytes(9_000);
  put('album/c.jpg', c);
  put('c-dup.jpg', c);
  names.push(backup(source, repo, catalog).snapshot!);
  renameSync(join(source, 'album'), join(source, 'album-2026'));
  unlinkSync(join(source, 'copy-of-a.jpg'));
  unlinkSync(join(source, 'album-2026/b.jpg')); // so b.jpg is held by two snapshots, once each
  put('d.bin', randomBytes(12_000));
  names.push(backup(source, repo, catalog).snapshot!);
  put('d.bin', randomBytes(13_000));
  unlinkSync(join(source, 'a-touched.jpg'));
  names.push(backup(source, repo, catalog).snapshot!);
  return { work, repo, names };
}

interface Figures {
  snapshots: { name: string; exclusiveBytes: number; addedBytes: number; files: number }[];
  totals: { storedBytes: number; storedDiskBytes: number; apparentBytes: number; unreferencedObjects: number; unreferencedBytes: number };
}

/**
 * The same figures from the trees on disk: os.walk finds every regular file of
 * each tree (not the manifest), os.lstat gives inode, links and size; an inode is
 * a snapshot's own when all its links but the store's name are in that snapshot.
 */
function pythonFigures(repo: string): Figures {
  const script = `
import json, os, re, sys
repo = sys.argv[1]
names = sorted(n for n in os.listdir(repo) if re.fullmatch(r'\\d{4}\\.\\d\\d\\.\\d\\d-\\d\\d\\.\\d\\d\\.\\d\\d', n))
seen, stored, disk, apparent, rows = set(), 0, 0, 0, []
for name in names:
    inodes, files = {}, 0
    for top, dirs, entries in os.walk(os.path.join(repo, name, 'tree').encode()):
        for entry in entries:
            st = os.lstat(os.path.join(top, entry))
            if not os.path.isfile(os.path.join(top, entry)) or os.path.islink(os.path.join(top, entry)):
                continue
            files += 1
            apparent += st.st_size
            count = inodes.get(st.st_ino, (0, st))[0]
            inodes[st.st_ino] = (count + 1, st)
    own = sum(st.st_size for count, st in inodes.values() if count >= st.st_nlink - 1)
    added = 0
    for ino, (count, st) in inodes.items():
        if ino not in seen:
            seen.add(ino); added += st.st_size; stored += st.st_size; disk += st.st_blocks * 512
    rows.append({'name': name, 'exclusiveBytes': own, 'addedBytes': added, 'files': files})
unref, unref_bytes = set(), 0
objects = os.path.join(repo, '.lb', 'objects')
for fanout in os.listdir(objects):
    for entry in os.listdir(os.path.join(objects, fanout)):
        st = os.lstat(os.path.join(objects, fanout, entry))
        if st.st_ino not in seen and st.st_ino not in unref:
            unref.add(st.st_ino); unref_bytes += st.st_size; stored += st.st_size; disk += st.st_blocks * 512
print(json.dumps({'snapshots': rows, 'totals': {'storedBytes': stored, 'storedDiskBytes': disk, 'apparentBytes': apparent,
    'unreferencedObjects': len(unref), 'unreferencedBytes': unref_bytes}}))
`;
  const r = spawnSync('python3', ['-c', script, repo], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Figures;
}

/** du's total, in bytes, for the given arguments (`du -s` sums each hard-linked inode once unless --count-links). */
function du(args: string[], input?: string): number {
  const r = spawnSync('du', args, { encoding: 'utf8', input });
  if (r.status !== 0) throw new Error(r.stderr);
  return Number(r.stdout.trim().split('\n').at(-1)!.split('\t')[0]);
}

/** du over the regular files under `dirs` only (no directories, manifests, logs): `extra` says how to count. */
function duOfFiles(dirs: string[], extra: string[]): number {
  const list = spawnSync('find', [...dirs, '-type', 'f', '-print0'], { encoding: 'utf8' }).stdout;
  return du(['-c', ...extra, '--files0-from=-'], list);
}

/** Store objects' names and link counts, by Python. */
function storeLinks(repo: string): Map<string, { nlink: number; size: number }> {
  const script = `
import json, os, sys
objects = os.path.join(sys.argv[1], '.lb', 'objects')
print(json.dumps({f + '/' + e: [os.lstat(os.path.join(objects, f, e)).st_nlink, os.lstat(os.path.join(objects, f, e)).st_size]
    for f in os.listdir(objects) for e in os.listdir(os.path.join(objects, f))}))
`;
  const r = spawnSync('python3', ['-c', script, repo], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const links = JSON.parse(r.stdout) as Record<string, [number, number]>;
  return new Map(Object.entries(links).map(([name, [nlink, size]]) => [name, { nlink, size }]));
}

function duJson(repo: string): Figures & { totals: { ratio: number } } {
  const r = lb(['du', repo, '--json']);
  expect(r.status, r.stderr).toBe(0);
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

describe('lb du', () => {
  it('agrees with Python walking the trees and with du(1) on the repository', () => {
    const { repo, names } = repository();
    const usage = duJson(repo);
    const python = pythonFigures(repo);
    expect(usage.snapshots.map((s) => s.name)).toEqual(names);
    expect(usage.snapshots).toEqual(python.snapshots);
    expect(usage.totals).toEqual({ ...python.totals, ratio: python.totals.apparentBytes / python.totals.storedBytes });
    // Worked by hand: only the first holds the first notes.txt (album/b.jpg is in the second too),
    // the second nothing of its own, the third and fourth their d.bin.
    expect(usage.snapshots.map((s) => s.exclusiveBytes)).toEqual([300, 0, 12_000, 13_000]);
    expect(usage.snapshots[0]!.files).toBe(5);
    // Every link a second time: du counting links minus du counting inodes is the size of every tree link.
    expect(du(['-sb', '--count-links', repo]) - du(['-sb', repo])).toBe(usage.totals.apparentBytes);
    // The store's files, each once: in bytes and in disk blocks.
    const store = join(repo, '.lb', 'objects');
    expect(duOfFiles([store], ['-b'])).toBe(usage.totals.storedBytes);
    expect(duOfFiles([store], ['-B1'])).toBe(usage.totals.storedDiskBytes);
    expect(usage.totals.unreferencedObjects).toBe(0);
    // Each object is added by exactly one snapshot.
    expect(usage.snapshots.reduce((sum, s) => sum + s.addedBytes, 0)).toBe(usage.totals.storedBytes);
    expect(usage.totals.ratio).toBeGreaterThan(1.5);
  });

  it('says what deleting each snapshot frees: exactly what rm -rf of it and collecting the objects it left unlinked frees', () => {
    const { work, repo, names } = repository();
    const usage = duJson(repo);
    expect(usage.snapshots.filter((s) => s.exclusiveBytes > 0).length).toBeGreaterThanOrEqual(3);
    for (const [i, name] of names.entries()) {
      // cp -a of the whole repository keeps its hard links.
      const copy = join(work, `copy-${i}`);
      expect(spawnSync('cp', ['-a', repo, copy]).status).toBe(0);
      const before = storeLinks(copy);
      expect([...before.values()].filter((o) => o.nlink === 1)).toEqual([]);
      const objectsBefore = du(['-sb', join(copy, '.lb', 'objects')]);
      expect(spawnSync('rm', ['-rf', join(copy, name)]).status).toBe(0);
      // The rule: deleting a snapshot frees the objects it left with one link, the store's own name (what prune collects).
      const freed = [...storeLinks(copy)].filter(([, o]) => o.nlink === 1).map(([object]) => object);
      const freedBytes = freed.reduce((sum, object) => sum + before.get(object)!.size, 0);
      expect(freedBytes, name).toBe(usage.snapshots[i]!.exclusiveBytes);
      for (const object of freed) unlinkSync(join(copy, '.lb', 'objects', object));
      expect(objectsBefore - du(['-sb', join(copy, '.lb', 'objects')]), name).toBe(usage.snapshots[i]!.exclusiveBytes);
    }
  });

  it('prints a table and the totals', () => {
    const { repo, names } = repository();
    const usage = duJson(repo);
    const r = lb(['du', repo]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^snapshot\s+only it\s+added\s+files$/);
    for (const [i, s] of usage.snapshots.entries()) {
      expect(lines[i + 1]!.split(/ {2,}/)).toEqual([names[i], formatBytes(s.exclusiveBytes), formatBytes(s.addedBytes), String(s.files)]);
    }
    const { totals } = usage;
    expect(lines.slice(names.length + 1)).toEqual([
      '4 snapshot(s); only it: what deleting it would free; added: what it linked first',
      `stored in all: ${formatBytes(totals.storedBytes)} (${formatBytes(totals.storedDiskBytes)} on disk)`,
      `all snapshots together: ${formatBytes(totals.apparentBytes)}, ${totals.ratio.toFixed(2)} times what is stored`,
      'linked by no snapshot: 0 object(s), 0 B',
    ]);
    expect(lb(['du', '--help']).stdout).toMatch(/^Usage: lb du \[options\] <repository>/);
  });

  it('counts a hand-edited tree as it is, in one warning line, and reports objects no snapshot links', () => {
    const { work, repo, names } = repository();
    const oldest = duJson(repo).snapshots[0]!;
    const latest = join(repo, names[3]!, 'tree');
    unlinkSync(join(latest, 'notes.txt'));
    copyFileSync(join(latest, 'album-2026', 'c.jpg'), join(work, 'plain'));
    renameSync(join(work, 'plain'), join(latest, 'album-2026', 'c.jpg')); // a copy: no longer a hard link
    rmSync(join(latest, 'd.bin'));
    symlinkSync('c-dup.jpg', join(latest, 'd.bin'));
    expect(spawnSync('rm', ['-rf', join(repo, names[0]!)]).status).toBe(0);
    const r = lb(['du', repo, '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      `lb: snapshot ${names[3]}: of the files its manifest lists, 1 missing from its tree (not counted), ` +
        '1 not regular files in its tree (not counted), 1 not hard links to a stored object (counted as only its own); was its tree edited by hand?\n',
    );
    const usage = JSON.parse(r.stdout) as Figures;
    const python = pythonFigures(repo);
    expect(usage.snapshots).toEqual(python.snapshots);
    expect(usage.totals).toMatchObject(python.totals);
    // Linked by none now, what prune would collect: what the deleted snapshot alone held
    // (the first notes.txt) and the last d.bin, which only the latest tree linked.
    expect(oldest.exclusiveBytes).toBe(300);
    expect(usage.totals.unreferencedBytes).toBe(oldest.exclusiveBytes + 13_000);
    expect(usage.totals.unreferencedObjects).toBe(2);
  });

  it('says so for an empty repository, with zero totals, and refuses what is not a repository in one line', () => {
    const work = tempDir();
    const repo = join(work, 'repo');
    mkdirSync(join(work, 'empty'));
    const name = backup(join(work, 'empty'), repo, join(work, 'catalog.sqlite')).snapshot!;
    rmSync(join(repo, name), { recursive: true });
    unlinkSync(join(repo, 'latest'));
    const r = lb(['du', repo]);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(r.stdout).toBe(
      `lb: the repository ${repo} holds no snapshot yet\nstored in all: 0 B (0 B on disk)\n` +
        'all snapshots together: 0 B, 0.00 times what is stored\nlinked by no snapshot: 0 object(s), 0 B\n',
    );
    expect(duJson(repo)).toEqual({
      snapshots: [],
      totals: { storedBytes: 0, storedDiskBytes: 0, apparentBytes: 0, ratio: 0, unreferencedObjects: 0, unreferencedBytes: 0 },
    });
    const notRepository = lb(['du', work]);
    expect(notRepository).toMatchObject({ status: 2, stdout: '', stderr: `lb: ${work} is not an lb repository (it has no .lb/format)\n` });
    expect(JSON.parse(lb(['du', work, '--json']).stdout)).toEqual({ status: 'error', exit: 2, error: `${work} is not an lb repository (it has no .lb/format)` });
  });
});
