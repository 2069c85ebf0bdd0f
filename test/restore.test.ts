// lb restore on repositories made by the real lb from a changing source, checked
// against rsync -a copies of the source taken right after each backup (rsync
// shares no code with lb), with lstat for inodes and link counts.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSelected } from '../src/repo/restore-feed.js';
import { backup, deepFile, lb, openedPaths, rsync, rsyncDifferences, settle, tempDir } from './helpers.js';
import { TracedRun, holdAt } from './traced-run.js';

const LATIN1 = Buffer.from('caf\xe9', 'latin1');

interface Fixture {
  work: string;
  repo: string;
  /** The snapshots, oldest first, and the source as it was when each was taken. */
  names: string[];
  asTaken: string[];
}

/** Backs the source up and keeps an rsync -a copy of it as it was then. */
function snapshot(fixture: Fixture, source: string, catalog: string): void {
  settle();
  fixture.names.push(backup(source, fixture.repo, catalog).snapshot!);
  const copy = join(fixture.work, `as-taken-${fixture.names.length}`);
  rsync(['-a', source + '/', copy + '/']);
  fixture.asTaken.push(copy);
}

/** Directory mtimes set last, as a restore must reproduce them. */
function dateDirectories(source: string, seconds: number): void {
  for (const dir of ['albums', 'empty', 'bin', '.']) utimesSync(join(source, dir), seconds, seconds);
}

/**
 * Two snapshots: albums with two files of one content, a non-UTF-8 name, a 0600
 * file, a 4755 program owned by daemon, symlinks (one dangling), an empty
 * directory; then an album renamed, a file edited, another removed, modes changed.
 */
function repository(): Fixture & { source: string } {
  const work = tempDir();
  const source = join(work, 'src');
  const catalog = join(work, 'catalog.sqlite');
  const fixture: Fixture = { work, repo: join(work, 'repo'), names: [], asTaken: [] };
  mkdirSync(join(source, 'albums', 'summer'), { recursive: true });
  mkdirSync(join(source, 'empty'));
  mkdirSync(join(source, 'bin'));
  writeFileSync(join(source, 'albums', 'summer', 'IMG_1.jpg'), 'x'.repeat(20000));
  writeFileSync(join(source, 'albums', 'summer', 'IMG_1 copy.jpg'), 'x'.repeat(20000));
  writeFileSync(join(source, 'albums', 'summer', 'IMG_2.jpg'), 'y'.repeat(3000));
  writeFileSync(Buffer.from(`${source}/albums/${LATIN1.toString('latin1')}`, 'latin1'), 'latin-1 name');
  writeFileSync(join(source, 'secret'), 'only me');
  chmodSync(join(source, 'secret'), 0o600);
  writeFileSync(join(source, 'bin', 'tool'), '#!/bin/sh\necho tool\n');
  chownSync(join(source, 'bin', 'tool'), 1, 1);
  chmodSync(join(source, 'bin', 'tool'), 0o4755);
  writeFileSync(join(source, 'notes.txt'), 'notes');
  utimesSync(join(source, 'notes.txt'), 1_600_000_000.25, 1_600_000_000.25);
  symlinkSync('albums/summer/IMG_1.jpg', join(source, 'favourite'));
  symlinkSync('/nonexistent/elsewhere', join(source, 'dangling'));
  dateDirectories(source, 1_500_000_000);
  utimesSync(join(source, 'albums', 'summer'), 1_400_000_000, 1_400_000_000);
  snapshot(fixture, source, catalog);

  renameSync(join(source, 'albums', 'summer'), join(source, 'albums', 'summer-2026'));
  writeFileSync(join(source, 'albums', 'summer-2026', 'IMG_3.jpg'), 'z'.repeat(5000));
  writeFileSync(join(source, 'notes.txt'), 'notes, edited');
  unlinkSync(join(source, 'favourite'));
  symlinkSync('albums/summer-2026/IMG_1.jpg', join(source, 'favourite'));
  chmodSync(join(source, 'secret'), 0o640);
  chmodSync(join(source, 'empty'), 0o1777);
  utimesSync(join(source, 'albums', 'summer-2026'), 1_450_000_000, 1_450_000_000);
  dateDirectories(source, 1_550_000_000);
  snapshot(fixture, source, catalog);
  return { ...fixture, source };
}

/** Every regular file under `dir` (lstat, not following symlinks), by relative path. */
function regularFiles(dir: string, under = ''): { path: string; ino: number; nlink: number }[] {
  const found: { path: string; ino: number; nlink: number }[] = [];
  for (const name of readdirSync(Buffer.from(join(dir, under), 'latin1'), { encoding: 'buffer' })) {
    const relative = under === '' ? name.toString('latin1') : `${under}/${name.toString('latin1')}`;
    const full = Buffer.from(join(dir, relative), 'latin1');
    const stat = lstatSync(full);
    if (stat.isDirectory()) found.push(...regularFiles(dir, relative));
    else if (stat.isFile()) found.push({ path: relative, ino: stat.ino, nlink: stat.nlink });
  }
  return found;
}

function restore(args: string[]) {
  return lb(['restore', ...args]);
}

describe('lb restore', () => {
  it('gives back the latest and an older snapshot exactly as the source was, in files of their own', () => {
    const { work, repo, names, asTaken } = repository();
    const latest = join(work, 'latest');
    const r = restore([repo, latest]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`restored ${names[1]} into ${latest}: 8 files, 5 directories, 2 symlinks, 48.1 kB; no problems\n`);
    expect(rsyncDifferences(asTaken[1]!, latest, { hardLinks: false })).toEqual([]);

    // Owners are this machine's numbers in the snapshot already: --numeric-ids restores the same.
    const numeric = join(work, 'numeric');
    expect(restore([repo, numeric, '--numeric-ids']).status).toBe(0);
    expect(rsyncDifferences(asTaken[1]!, numeric, { hardLinks: false })).toEqual([]);
    expect(lstatSync(join(numeric, 'bin', 'tool')).uid).toBe(1);

    const older = join(work, 'older');
    const o = restore([repo, names[0]!, older, '--json']);
    expect(o.status, o.stderr).toBe(0);
    const summary = JSON.parse(o.stdout);
    expect(summary).toMatchObject({ status: 'ok', snapshot: names[0], files: 7, directories: 5, symlinks: 2, problems: [] });
    expect(rsyncDifferences(asTaken[0]!, older, { hardLinks: false })).toEqual([]);

    // Copies, never links: no restored file is an inode of the repository, and the two
    // files that share one object in the repository came back as separate files.
    const repositoryInodes = new Set(regularFiles(repo).map((f) => f.ino));
    for (const tree of [latest, older]) {
      const restored = regularFiles(tree);
      expect(restored.length).toBeGreaterThan(6);
      for (const file of restored) {
        expect(repositoryInodes.has(file.ino), file.path).toBe(false);
        expect(file.nlink, file.path).toBe(1);
      }
    }
    expect(lstatSync(join(latest, 'albums', 'summer-2026', 'IMG_1 copy.jpg')).ino).not.toBe(lstatSync(join(latest, 'albums', 'summer-2026', 'IMG_1.jpg')).ino);
  });

  it('--path restores one subtree and the directories leading to it, nothing else', () => {
    const { work, repo, asTaken } = repository();
    const target = join(work, 'part');
    const r = restore([repo, target, '--path', 'albums/summer-2026']);
    expect(r.status, r.stderr).toBe(0);
    expect(readdirSync(target)).toEqual(['albums']);
    expect(readdirSync(join(target, 'albums'))).toEqual(['summer-2026']);
    const subtree = (root: string) => join(root, 'albums', 'summer-2026');
    expect(rsyncDifferences(subtree(asTaken[1]!), subtree(target), { hardLinks: false })).toEqual([]);
    // The directory leading to it has its recorded metadata too.
    expect(lstatSync(join(target, 'albums')).mtimeMs).toBe(1_550_000_000_000);

    const missing = restore([repo, join(work, 'none'), '--path', 'albums/summer-2026', '--path', 'albums/winter']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^lb: no albums\/winter in snapshot \S+; nothing restored\n$/);
    expect(existsSync(join(work, 'none'))).toBe(false);
  });

  it('refuses a target that is not empty, inside the repository, a symlink, or without a parent, writing nothing', () => {
    const { work, repo } = repository();
    const full = join(work, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'keep'), 'mine');
    const cases: [string, RegExp][] = [
      [full, /is not empty; restore into a new or empty directory, or give --overwrite/],
      [join(repo, 'restored'), /is inside the repository/],
      [join(work, 'no', 'such', 'parent'), /its parent directory \S+ does not exist/],
    ];
    symlinkSync(join(work, 'elsewhere'), join(work, 'link'));
    mkdirSync(join(work, 'elsewhere'));
    cases.push([join(work, 'link'), /is a symlink/]);
    for (const [target, message] of cases) {
      const r = restore([repo, target]);
      expect(r.status, target).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^lb: .*${message.source}.*\n$`));
    }
    expect(readdirSync(full)).toEqual(['keep']);
    expect(existsSync(join(repo, 'restored'))).toBe(false);
    expect(readdirSync(join(work, 'elsewhere'))).toEqual([]);
  });

  it('--overwrite replaces the snapshot paths, leaves other files alone, and never writes through a symlink in the target', () => {
    const { work, repo, asTaken } = repository();
    const target = join(work, 'target');
    const elsewhere = join(work, 'elsewhere');
    mkdirSync(target);
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'outside'), 'outside');
    symlinkSync(elsewhere, join(target, 'albums')); // where the snapshot has a directory
    symlinkSync(join(elsewhere, 'outside'), join(target, 'notes.txt')); // where it has a file
    writeFileSync(join(target, 'secret'), 'an older secret');
    writeFileSync(join(target, 'mine'), 'not in any snapshot');

    const r = restore([repo, target, '--overwrite']);
    expect(r.status).toBe(3);
    expect(r.stderr).toBe('lb: albums: a symlink is in the way of this directory; left alone, with everything the snapshot holds beneath it\n');
    expect(readdirSync(elsewhere)).toEqual(['outside']);
    expect(readFileSync(join(elsewhere, 'outside'), 'utf8')).toBe('outside');
    expect(readlinkSync(join(target, 'albums'))).toBe(elsewhere);
    expect(lstatSync(join(target, 'notes.txt')).isFile()).toBe(true);
    expect(readFileSync(join(target, 'mine'), 'utf8')).toBe('not in any snapshot');
    // Apart from the refused directory and the file of the user's own, the target is the snapshot.
    expect(rsyncDifferences(asTaken[1]!, target, { hardLinks: false })).toEqual([
      '*deleting   mine',
      'cd+++++++++ albums/',
      '>f+++++++++ albums/caf\\#351',
      'cd+++++++++ albums/summer-2026/',
      '>f+++++++++ albums/summer-2026/IMG_1 copy.jpg',
      '>f+++++++++ albums/summer-2026/IMG_1.jpg',
      '>f+++++++++ albums/summer-2026/IMG_2.jpg',
      '>f+++++++++ albums/summer-2026/IMG_3.jpg',
    ]);
  });

  it('reads a content shared by several paths from the repository once, and gives it to each path even when its first cannot be written', () => {
    const work = tempDir();
    const source = join(work, 'src');
    const repo = join(work, 'repo');
    for (const dir of ['a', 'b', 'c']) mkdirSync(join(source, dir), { recursive: true });
    const shared = 'shared content '.repeat(1000);
    writeFileSync(join(source, 'a', 'one'), shared);
    writeFileSync(join(source, 'b', 'two'), shared);
    chmodSync(join(source, 'b', 'two'), 0o600);
    utimesSync(join(source, 'b', 'two'), 1_300_000_000, 1_300_000_000);
    writeFileSync(join(source, 'c', 'three'), shared);
    for (const dir of ['a', 'b', 'c', '.']) utimesSync(join(source, dir), 1_500_000_000, 1_500_000_000);
    settle();
    const name = backup(source, repo, join(work, 'catalog.sqlite')).snapshot!;
    const stored = (path: string) => join(repo, name, 'tree', path);

    const whole = join(work, 'whole');
    const traced = openedPaths(['restore', repo, whole]);
    expect(traced.run.status, traced.run.stderr).toBe(0);
    expect(rsyncDifferences(source, whole, { hardLinks: false })).toEqual([]);
    expect(traced.opened.filter((p) => p.startsWith(join(repo, name, 'tree')))).toEqual([stored('a/one')]);
    // The snapshot's summary says it holds no source hard link: no second pass over its manifest for link groups,
    // as for a summary written before the count existed.
    const manifestOpens = (opened: string[]) => opened.filter((p) => p === join(repo, name, 'manifest')).length;
    const summaryFile = join(repo, name, 'summary');
    const { hardLinks, ...older } = JSON.parse(readFileSync(summaryFile, 'utf8')) as Record<string, unknown>;
    expect(hardLinks).toBe(0);
    writeFileSync(summaryFile, JSON.stringify(older) + '\n');
    const withoutCount = openedPaths(['restore', repo, join(work, 'again')]);
    expect(withoutCount.run.status, withoutCount.run.stderr).toBe(0);
    expect(manifestOpens(traced.opened)).toBe(manifestOpens(withoutCount.opened) - 1);

    // A directory in the way of the first path: the content arrived, and the others are copied from it.
    const target = join(work, 'target');
    mkdirSync(join(target, 'a', 'one'), { recursive: true });
    writeFileSync(join(target, 'a', 'one', 'mine'), 'mine');
    const r = restore([repo, target, '--overwrite']);
    expect(r.status).toBe(3);
    expect(r.stderr).toBe('lb: a/one: a directory is in the way; left alone\n');
    expect(readdirSync(target).sort()).toEqual(['a', 'b', 'c']);
    expect(lstatSync(target).mtimeMs).toBe(1_500_000_000_000);
    for (const path of ['b/two', 'c/three']) expect(readFileSync(join(target, path), 'utf8')).toBe(shared);
    expect(rsyncDifferences(join(source, 'b'), join(target, 'b'), { hardLinks: false })).toEqual([]);

    // The first path's tree entry gone (damage): the next path is given the content from the repository.
    unlinkSync(stored('a/one'));
    const damaged = join(work, 'damaged');
    const d = restore([repo, damaged]);
    expect(d.status).toBe(5);
    expect(d.stderr).toBe("lb: a/one: it is missing from the snapshot's tree in the repository (a damaged snapshot); left out\n");
    expect(rsyncDifferences(source, damaged, { hardLinks: false })).toEqual(['>f+++++++++ a/one']);
  });

  it('leaves out a file whose object is damaged or whose tree entry is gone, says so, restores the rest and exits 5', () => {
    const { work, repo, names, asTaken } = repository();
    const damaged = join(repo, names[1]!, 'tree', 'albums', 'summer-2026', 'IMG_2.jpg');
    const flip = spawnSync('python3', ['-c', `
import os, sys
p = sys.argv[1]
st = os.lstat(p)
with open(p, 'r+b') as f:
    b = f.read(1)
    f.seek(0)
    f.write(bytes([b[0] ^ 1]))
os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
`, damaged]);
    expect(flip.status, String(flip.stderr)).toBe(0);
    unlinkSync(join(repo, names[1]!, 'tree', 'secret'));
    const target = join(work, 'target');
    const r = restore([repo, target]);
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/^lb: albums\/summer-2026\/IMG_2\.jpg: its content in the repository does not match its SHA-256 [0-9a-f]{64} \(a damaged object\); left out\nlb: secret: it is missing from the snapshot's tree in the repository \(a damaged snapshot\); left out\n$/);
    expect(r.stdout).toMatch(/: 6 files, .*; 2 problems\n$/);
    expect(rsyncDifferences(asTaken[1]!, target, { hardLinks: false })).toEqual(['>f+++++++++ secret', '>f+++++++++ albums/summer-2026/IMG_2.jpg']);
    expect(readdirSync(join(target, 'albums', 'summer-2026')).filter((n) => n.startsWith('.lb-'))).toEqual([]);

    const json = restore([repo, join(work, 'again'), '--json']);
    expect(json.status).toBe(5);
    const summary = JSON.parse(json.stdout);
    expect(summary).toMatchObject({ status: 'damaged', files: 6, symlinks: 2 });
    expect(summary.problems.map((p: { path: string }) => p.path)).toEqual(['albums/summer-2026/IMG_2.jpg', 'secret']);
  });

  it('--dry-run lists every path it would write and writes nothing', () => {
    const { work, repo, asTaken } = repository();
    const target = join(work, 'target');
    const r = restore([repo, target, '--dry-run']);
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(target)).toBe(false);
    const lines = r.stdout.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^would restore \S+: 8 files, 5 directories, 2 symlinks, 48\.1 kB$/);
    const find = spawnSync('find', ['.', '-mindepth', '1', '-printf', '%P\\n'], { cwd: asTaken[1], encoding: 'latin1' });
    const expected = ['.', ...find.stdout.trim().split('\n').map((p) => p.replace(/\xe9/g, '\\xe9'))];
    expect(lines.slice(0, -1).sort()).toEqual(expected.sort());

    const json = restore([repo, target, '--dry-run', '--json', '--path', 'albums']);
    expect(json.status, json.stderr).toBe(0);
    const entries = JSON.parse(json.stdout) as { type: string; path: string; pathBase64?: string }[];
    expect(entries.map((e) => e.path)).toEqual(['.', 'albums', 'albums/caf\\xe9', 'albums/summer-2026', 'albums/summer-2026/IMG_1 copy.jpg', 'albums/summer-2026/IMG_1.jpg', 'albums/summer-2026/IMG_2.jpg', 'albums/summer-2026/IMG_3.jpg']);
    expect(Buffer.from(entries[2]!.pathBase64!, 'base64').equals(Buffer.from('albums/caf\xe9', 'latin1'))).toBe(true);
    expect(existsSync(target)).toBe(false);
  });
});

describe('lb restore beyond PATH_MAX', () => {
  it("restores a path longer than PATH_MAX in the snapshot's tree into a target where it is longer still", () => {
    const work = tempDir();
    const source = join(work, 's');
    const repo = join(work, 'repo');
    // A file whose source path is 4,080 bytes, and a symlink beside it: beyond PATH_MAX under the repository.
    const { parts, file } = deepFile(source, 4080, (name) => symlinkSync(name, 'link'));
    backup(source, repo, join(work, 'catalog.sqlite'));
    const target = join(work, 't'.repeat(40));
    expect(Buffer.byteLength(join(target, ...parts, file))).toBeGreaterThan(4096);
    const r = restore([repo, target]);
    expect(r.status, r.stderr).toBe(0);
    expect(rsyncDifferences(source, target, { hardLinks: false })).toEqual([]);
  });
});

describe('what a restore with --path selects', () => {
  const b = (path: string) => Buffer.from(path);
  it('takes the subtrees asked for and the directories leading to them, and nothing beside them', () => {
    const paths = [b('albums/summer'), b('notes.txt')];
    const chosen = ['', 'albums', 'albums/summer', 'albums/summer/a.jpg', 'albums/summer/deep/b.jpg', 'notes.txt'];
    const left = ['albums/summer-2026', 'albums/summerx/a.jpg', 'albums/other', 'bin', 'notes.txt.bak', 'notes'];
    for (const path of chosen) expect(isSelected(b(path), paths), path).toBe(true);
    for (const path of left) expect(isSelected(b(path), paths), path).toBe(false);
    expect(isSelected(b('anything/at/all'), [])).toBe(true);
    expect(isSelected(b('anything'), [b('')])).toBe(true);
  });
});

describe('lb restore interrupted', () => {
  it('stops at Ctrl-C between files: exit 130, one line, every file written whole, no temporary left', async () => {
    const work = tempDir();
    const source = join(work, 'source');
    const repo = join(work, 'repo');
    mkdirSync(join(source, 'album'), { recursive: true });
    for (let i = 0; i < 1000; i++) writeFileSync(join(source, 'album', `p${String(i).padStart(4, '0')}.jpg`), `photo ${i} `.repeat(2000 + i));
    utimesSync(join(source, 'album'), 1_500_000_000, 1_500_000_000);
    settle();
    const name = backup(source, repo, join(work, 'catalog.sqlite')).snapshot!;
    const target = join(work, 'target');
    // Held as it opens the 101st file in the snapshot; the signal waits for it to go on.
    const run = new TracedRun(['restore', repo, target], holdAt(join(repo, name, 'tree', 'album', 'p0100.jpg'), 'openat'));
    expect(await run.nextHold()).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the restore yields to the signal handler at its next chance
    run.signal('SIGINT');
    run.resume();
    const r = await run.end();
    expect(r.status).toBe(130);
    expect(r.stderr).toMatch(/^lb: interrupted; the restore into \S+ is incomplete \(\d+ files written whole, none half\)\n$/);
    const written = readdirSync(join(target, 'album'));
    expect(written.filter((n) => n.startsWith('.lb-restore-'))).toEqual([]);
    expect(written.length).toBeGreaterThan(100);
    expect(written.length).toBeLessThan(1000);
    for (const n of written) expect(readFileSync(join(target, 'album', n)).equals(readFileSync(join(source, 'album', n))), n).toBe(true);
    // The directories written so far got their metadata all the same.
    expect(lstatSync(join(target, 'album')).mtimeMs).toBe(1_500_000_000_000);
  });
});
