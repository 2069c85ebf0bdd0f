// Link-Backup's seeding through a transfer disk, all local: `--showfiles` names
// the files whose content a repository lacks and writes nothing, `--filelist`
// backs up only listed paths, `--catalogonly` stores content without a snapshot.
// Oracles: Python hashing every source file against the store's object names,
// rsync building the expected subset from the same list, lstat of every path in
// the repository, and strace for what lb opens.
import { randomBytes } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, realpathSync, renameSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, lb, mountOrSkip, openedPaths, rsync, rsyncDifferences, run, settle, skipBecause, snapshots, tempDir, umount } from './helpers.js';
import { flipByte, lbBytes, lbWithStdinOpen, lstatState, missingByOracle, nulList, objectPath, rsyncSubset, sha256, slowLb, splitNul, storeContents, under } from './seeding-oracles.js';
import { TracedRun, holdAt } from './traced-run.js';

const ONE_LINE = /^lb: [^\n]+\n$/;

const NEW_NAMES = [' spaced', '-leading', 'a/x', 'a-b', 'a.txt', 'deep/er/new', 'empty', 'new\nline', Buffer.from([0xff, 0xfe])];

/**
 * A source backed up once, then changed: a file moved, one duplicated, one chmod'ed and touched (all
 * content the repository holds), a symlink, and new files with awkward names.
 */
function changedSource(): { work: string; src: string; repo: string; catalog: string } {
  const work = tempDir();
  const src = join(work, 'src');
  const repo = join(work, 'repo');
  const catalog = join(work, 'catalog.sqlite');
  mkdirSync(join(src, 'albums', 'summer'), { recursive: true });
  writeFileSync(join(src, 'albums', 'summer', 'IMG_1.jpg'), randomBytes(5000));
  writeFileSync(join(src, 'albums', 'summer', 'IMG_2.jpg'), randomBytes(6000));
  writeFileSync(join(src, 'notes.txt'), 'notes');
  backup(src, repo, catalog);
  mkdirSync(join(src, 'albums', 'moved'));
  renameSync(join(src, 'albums', 'summer', 'IMG_2.jpg'), join(src, 'albums', 'moved', 'IMG_2.jpg'));
  mkdirSync(join(src, 'dup'));
  copyFileSync(join(src, 'albums', 'summer', 'IMG_1.jpg'), join(src, 'dup', 'copy.jpg'));
  chmodSync(join(src, 'notes.txt'), 0o600);
  utimesSync(join(src, 'notes.txt'), 1_600_000_000, 1_600_000_000);
  symlinkSync('notes.txt', join(src, 'link'));
  mkdirSync(join(src, 'a'));
  mkdirSync(join(src, 'deep', 'er'), { recursive: true });
  for (const name of NEW_NAMES) writeFileSync(under(src, name), name === 'empty' ? '' : Buffer.concat([Buffer.from(name), randomBytes(100)]));
  return { work, src, repo, catalog };
}

describe('lb --showfiles', () => {
  it('lists exactly the files whose content the repository lacks, in canonical order; moved, duplicated and re-moded files are held', () => {
    const { src, repo, catalog } = changedSource();
    const r = lbBytes(['--showfiles', '-0', src, repo, '--catalog', catalog]);
    expect(r.status).toBe(0);
    const listed = splitNul(r.stdout);
    expect(listed).toEqual(missingByOracle(src, repo));
    // Canonical, not plain byte order: a/x before a-b and a.txt ('/' sorts first).
    expect(listed).toEqual(NEW_NAMES.map((n) => Buffer.from(n)));
    const bytes = NEW_NAMES.reduce((sum, n) => sum + lstatSync(under(src, n)).size, 0);
    const summary = `lb: ${NEW_NAMES.length} file(s), ${bytes} B, have content that ${repo} does not hold; 4 file(s) it holds already (`;
    expect(r.stderr.startsWith(summary)).toBe(true);
    expect(r.stderr.slice(summary.length)).toMatch(/^[0-9.]+ m?s, nothing written\)\n$/);
  });

  it('without -0, warns about a name with a newline, leaves it out and exits 3; -q keeps only the warning', () => {
    const { src, repo, catalog } = changedSource();
    const r = lbBytes(['--showfiles', src, repo, '--catalog', catalog]);
    expect(r.status).toBe(3);
    const lines = NEW_NAMES.filter((n) => n !== 'new\nline').map((n) => Buffer.concat([Buffer.from(n), Buffer.from('\n')]));
    expect(r.stdout).toEqual(Buffer.concat(lines));
    const warning = 'lb: warning: new\\x0aline has a newline in its name and is not listed; use -0 to list every name\n';
    expect(r.stderr.startsWith(warning)).toBe(true);
    expect(r.stderr.slice(warning.length)).toMatch(/^lb: 8 file\(s\), [^\n]*nothing written\)\n$/);
    const quiet = lbBytes(['--showfiles', '-q', src, repo, '--catalog', catalog]);
    expect(quiet).toMatchObject({ status: 3, stderr: warning });
    expect(quiet.stdout).toEqual(r.stdout);
  });

  it('feeds `--filelist - -0`, whose snapshot holds exactly those files and their directories (rsync oracle)', () => {
    const { work, src, repo, catalog } = changedSource();
    const shown = lbBytes(['--showfiles', '-0', src, repo, '--catalog', catalog]);
    const transfer = join(work, 'transfer');
    const r = lbBytes(['--filelist', '-', '-0', src, transfer, '--json', '--catalog', catalog], shown.stdout);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout.toString())).toMatchObject({ created: true, files: { total: NEW_NAMES.length } });
    const expected = rsyncSubset(src, splitNul(shown.stdout));
    expect(rsyncDifferences(expected, join(transfer, 'latest', 'tree'))).toEqual([]);
  });

  it('writes nothing: every lstat in the repository unchanged, nothing created, no lock', () => {
    const { src, repo, catalog } = changedSource();
    const before = lstatState(repo);
    expect(lbBytes(['--showfiles', '-0', src, repo, '--catalog', catalog]).status).toBe(0);
    expect(lstatState(repo)).toEqual(before);
  });

  it('refuses a missing repository or a directory that is none, in one line, creating nothing', () => {
    const { work, src, catalog } = changedSource();
    const missing = join(work, 'nowhere');
    const r = lb(['--showfiles', src, missing, '--catalog', catalog]);
    expect(r).toMatchObject({ status: 2, stdout: '' });
    expect(r.stderr).toBe(`lb: ${missing} does not exist, so --showfiles has nothing to compare with; every source file is missing from it\n`);
    expect(existsSync(missing)).toBe(false);
    const plain = join(work, 'plain');
    mkdirSync(plain);
    writeFileSync(join(plain, 'file'), 'x');
    const before = lstatState(plain);
    const r2 = lb(['--showfiles', src, plain, '--catalog', catalog]);
    expect(r2).toMatchObject({ status: 2, stdout: '' });
    expect(r2.stderr).toMatch(/^lb: \S+ is no lb repository, so --showfiles has nothing to compare with; [^\n]*\n$/);
    expect(lstatState(plain)).toEqual(before);
  });

  it('works on a read-only bind mount of the repository', (ctx) => {
    const { work, src, repo, catalog } = changedSource();
    const readOnly = join(work, 'read-only');
    mountOrSkip(ctx, ['--bind', repo], readOnly);
    try {
      const remount = run('mount', ['-o', 'remount,ro,bind', readOnly]);
      if (!remount.ok) skipBecause(ctx, `cannot remount a bind mount read-only here: ${remount.err.trim()}`);
      expect(() => writeFileSync(join(readOnly, 'probe'), '')).toThrow(/EROFS/);
      const r = lbBytes(['--showfiles', '-0', src, readOnly, '--catalog', catalog]);
      expect(r.status).toBe(0);
      expect(splitNul(r.stdout)).toEqual(missingByOracle(src, repo));
    } finally {
      umount(readOnly);
    }
  });

  it('works while a backup holds the lock, and leaves that lock alone', async () => {
    const { work, src, repo } = changedSource();
    // A backup with a catalog of its own hashes every file: it is held (SIGSTOP) opening the first new one.
    const holder = new TracedRun(['backup', src, repo, '--catalog', join(work, 'other.sqlite')], holdAt(join(realpathSync(src), ' spaced'), 'openat', '1'));
    expect(await holder.nextHold()).toBe(true);
    const lock = join(repo, '.lb', 'lock');
    const held = readFileSync(lock, 'utf8');
    const r = lbBytes(['--showfiles', '-0', src, repo, '--catalog', join(work, 'catalog.sqlite')]);
    expect(r.status).toBe(0);
    expect(splitNul(r.stdout)).toEqual(NEW_NAMES.map((n) => Buffer.from(n)));
    expect(readFileSync(lock, 'utf8')).toBe(held);
    holder.resume();
    expect((await holder.end()).status).toBe(0);
  });

  it('counts a damaged object as not held, lists its files, and leaves the object where it is', () => {
    const work = tempDir();
    const src = join(work, 'src');
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    mkdirSync(src);
    const content = randomBytes(4000);
    writeFileSync(join(src, 'f1'), content);
    writeFileSync(join(src, 'f2'), randomBytes(4000));
    backup(src, repo, catalog);
    copyFileSync(join(src, 'f1'), join(src, 'same-as-f1'));
    settle(); // the damage comes after lb's last write, as a hand edit does
    const object = objectPath(repo, sha256(content));
    flipByte(object);
    const damaged = readFileSync(object);
    const r = lbBytes(['--showfiles', '-0', src, repo, '--catalog', catalog]);
    expect(r.status).toBe(0);
    // The oracle goes by names alone and holds f1 held: the damage is what lists it.
    expect(missingByOracle(src, repo)).toEqual([]);
    expect(splitNul(r.stdout).map(String)).toEqual(['f1', 'same-as-f1']);
    expect(readFileSync(object)).toEqual(damaged);
    expect(existsSync(join(repo, '.lb', 'quarantine'))).toBe(false);
    // A backup agrees: it sets the object aside and takes that content from the source again.
    const next = backup(src, repo, catalog, ['--always']);
    expect(next.files.new).toBe(1);
    expect(readdirSync(join(repo, '.lb', 'quarantine'))).toHaveLength(1);
  });

  it('reads no file the catalog vouches for (strace), and every file with a catalog that knows none', () => {
    const work = tempDir();
    const src = join(realpathSync(work), 'src');
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    mkdirSync(src);
    for (const name of ['old-1', 'old-2']) writeFileSync(join(src, name), randomBytes(3000));
    settle(); // past the racily-clean window, so the catalog keeps their hashes
    backup(src, repo, catalog);
    writeFileSync(join(src, 'fresh'), randomBytes(3000));
    const known = openedPaths(['--showfiles', src, repo, '--catalog', catalog]);
    expect(known.run).toMatchObject({ status: 0, stdout: 'fresh\n' });
    expect(known.opened).toContain(join(src, 'fresh'));
    expect(known.opened).not.toContain(join(src, 'old-1'));
    expect(known.opened).not.toContain(join(src, 'old-2'));
    const unknown = openedPaths(['--showfiles', src, repo, '--catalog', join(work, 'empty.sqlite')]);
    expect(unknown.run).toMatchObject({ status: 0, stdout: 'fresh\n' });
    for (const name of ['old-1', 'old-2', 'fresh']) expect(unknown.opened).toContain(join(src, name));
  });
});

describe('lb --filelist', () => {
  function tree(): { work: string; src: string; catalog: string } {
    const work = tempDir();
    const src = join(work, 'src');
    mkdirSync(join(src, 'keep', 'inner', 'deeper'), { recursive: true });
    mkdirSync(join(src, 'other'));
    mkdirSync(join(src, 'deep', 'path', 'to'), { recursive: true });
    for (const file of ['keep/a', 'keep/inner/b', 'keep/inner/deeper/c', 'keep/Thumbs.db', 'keep/inner/Thumbs.db', 'other/d', 'top', 'deep/path/to/file', 'deep/path/sibling']) {
      writeFileSync(join(src, file), `${file} ${'.'.repeat(50)}`);
    }
    symlinkSync('../top', join(src, 'keep', 'link'));
    symlinkSync('keep', join(src, 'keep-link'));
    utimesSync(join(src, 'deep', 'path'), 1_500_000_000, 1_500_000_000);
    return { work, src, catalog: join(work, 'catalog.sqlite') };
  }

  it('refuses each bad list in one line and writes nothing, not even the repository or the catalog', () => {
    const { work, src, catalog } = tree();
    const cases: [string, Buffer | null, string[], RegExp][] = [
      ['absolute', Buffer.from('top\n/etc/passwd\n'), [], /"\/etc\/passwd", an absolute path/],
      ['dot-dot', Buffer.from('keep/../../x\n'), [], /"keep\/\.\.\/\.\.\/x", with a '\.\.' in it/],
      ['nul', Buffer.from('top\0x\n'), [], /a path with a NUL byte/],
      ['missing', Buffer.from('keep/a\nkeep/nope\n'), [], /"keep\/nope", which is not in the source/],
      ['through-file', Buffer.from('top/x\n'), [], /paths inside "top", which is not a directory/],
      ['through-symlink', Buffer.from('keep-link/a\0'), ['-0'], /paths inside "keep-link", which is a symlink/],
      ['symlink-and-through-it', Buffer.from('keep-link\nkeep-link/inner\n'), [], /paths inside "keep-link", which is a symlink/],
      ['unreadable', null, [], /^lb: cannot read the file list \S+\/unreadable: .*ENOENT/],
    ];
    for (const [name, list, extra, message] of cases) {
      const listFile = join(work, name);
      if (list) writeFileSync(listFile, list);
      const repo = join(work, `repo-${name}`);
      const r = lb(['--filelist', listFile, ...extra, src, repo, '--catalog', catalog]);
      expect(r, name).toMatchObject({ status: 2, stdout: '' });
      expect(r.stderr, name).toMatch(ONE_LINE);
      expect(r.stderr, name).toMatch(message);
      expect(existsSync(repo), name).toBe(false);
    }
    const directory = lb(['--filelist', join(work, 'src'), src, join(work, 'repo'), '--catalog', catalog]);
    expect(directory).toMatchObject({ status: 2, stdout: '' });
    expect(directory.stderr).toMatch(/^lb: cannot read the file list [^\n]*EISDIR[^\n]*\n$/);
    expect(existsSync(catalog)).toBe(false);
    // Into an existing repository: nothing in it changes.
    const repo = join(work, 'repo');
    backup(src, repo, catalog);
    const before = lstatState(repo);
    const r = lb(['--filelist', join(work, 'missing'), src, repo, '--catalog', catalog]);
    expect(r.status).toBe(2);
    expect(lstatState(repo)).toEqual(before);
  });

  it('takes a listed directory whole, with the directories leading to a listed file, and still applies excludes (rsync oracle)', () => {
    const { work, src, catalog } = tree();
    const list = [Buffer.from('keep'), Buffer.from('deep/path/to/file')];
    const repo = join(work, 'repo');
    const r = lbBytes(['--filelist', '-', '-0', '--exclude', 'Thumbs.db', src, repo, '--catalog', catalog], nulList(list));
    expect(r.status).toBe(0);
    const expected = rsyncSubset(src, list, ['-r', '--exclude', 'Thumbs.db']);
    expect(existsSync(join(expected, 'keep', 'inner', 'deeper', 'c'))).toBe(true); // the oracle took the directory whole
    expect(rsyncDifferences(expected, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('takes everything for `.`, excludes applied', () => {
    const { work, src, catalog } = tree();
    const repo = join(work, 'repo');
    const r = lbBytes(['--filelist', '-', '--exclude', 'Thumbs.db', src, repo, '--catalog', catalog], Buffer.from('./\n'));
    expect(r.status).toBe(0);
    const expected = join(work, 'expected');
    rsync(['-a', '--exclude', 'Thumbs.db', src + '/', expected + '/']);
    expect(rsyncDifferences(expected, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('makes a snapshot of the bare root for an empty list, and then none while the list stays empty', () => {
    const { work, src, catalog } = tree();
    const repo = join(work, 'repo');
    const r = lbBytes(['--filelist', '-', src, repo, '--json', '--catalog', catalog], Buffer.from('\n'));
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout.toString())).toMatchObject({ created: true, files: { total: 0 }, directories: 1, symlinks: 0 });
    expect(readdirSync(join(repo, 'latest', 'tree'))).toEqual([]);
    const again = lbBytes(['--filelist', '-', src, repo, '--json', '--catalog', catalog], Buffer.alloc(0));
    expect(again.status).toBe(0);
    expect(JSON.parse(again.stdout.toString())).toMatchObject({ created: false });
    expect(snapshots(repo)).toHaveLength(1);
  });
});

describe('lb --catalogonly', () => {
  /** A repository holding a snapshot of other content, and a source it holds none of (one file a re-moded duplicate). */
  function setup(): { work: string; src: string; repo: string; catalog: string } {
    const work = tempDir();
    const src = join(work, 'src');
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    mkdirSync(join(work, 'other'));
    writeFileSync(join(work, 'other', 'old'), randomBytes(2000));
    backup(join(work, 'other'), repo, catalog);
    mkdirSync(join(src, 'album', '2024'), { recursive: true });
    for (let i = 0; i < 5; i++) writeFileSync(join(src, 'album', '2024', `IMG_${i}.jpg`), randomBytes(3000 + i));
    copyFileSync(join(src, 'album', '2024', 'IMG_0.jpg'), join(src, 'album', 'copy.jpg'));
    chmodSync(join(src, 'album', 'copy.jpg'), 0o600);
    writeFileSync(join(src, 'notes'), 'notes');
    return { work, src, repo, catalog };
  }

  /** What `lb list` and `latest` say, and the snapshot directories. */
  function repositoryView(repo: string) {
    return { list: lb(['list', repo]).stdout, latest: readlinkSync(join(repo, 'latest')), snapshots: snapshots(repo) };
  }

  /** Every object's bytes hash to its name: nothing in the store claims content it does not have. */
  function expectSoundStore(repo: string): Record<string, string> {
    const contents = storeContents(repo);
    for (const [name, hash] of Object.entries(contents)) expect(name.slice(0, 64), name).toBe(hash);
    return contents;
  }

  it('stores the content of a plain tree without a snapshot; verify passes; the next backup transfers nothing', () => {
    const { src, repo, catalog } = setup();
    const view = repositoryView(repo);
    const r = lb(['--catalogonly', src, repo, '--json', '--catalog', catalog]);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ snapshot: null, bytes: { transferred: 15_015 } });
    expect(summary.files.new + summary.files.held).toBe(7);
    expect(repositoryView(repo)).toEqual(view);
    expect(missingByOracle(src, repo)).toEqual([]);
    expectSoundStore(repo);
    // Objects no snapshot links to are not damage.
    const verify = lb(['verify', repo, '--read-data']);
    expect(verify).toMatchObject({ status: 0, stderr: '' });
    expect(verify.stdout).toMatch(/: no problems\n$/);
    const next = backup(src, repo, catalog);
    expect(next.files.new).toBe(0);
    expect(next.bytes.transferred).toBe(0);
    expect(rsyncDifferences(src, join(repo, next.snapshot!, 'tree'))).toEqual([]);
  });

  it('lists with -v what it stored and what was held, as a backup lists its entries', () => {
    const { src, repo, catalog } = setup();
    writeFileSync(join(src, 'held'), readFileSync(join(repo, 'latest', 'tree', 'old')));
    const r = lb(['--catalogonly', '-v', src, repo, '--catalog', catalog]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^new    album\/2024\/IMG_3\.jpg$/m);
    expect(r.stdout).toMatch(/^linked held$/m);
    expect(r.stdout).toMatch(/^made   album\/2024\/$/m);
  });

  it("carries Link-Backup's Example 5: --showfiles | --filelist onto a transfer repository, --catalogonly from it, then a backup that transfers nothing", () => {
    const { work, src, repo, catalog } = changedSource();
    const transfer = join(work, 'transfer');
    const shown = lbBytes(['--showfiles', '-0', src, repo, '--catalog', catalog]);
    expect(lbBytes(['--filelist', '-', '-0', src, transfer, '-q', '--catalog', catalog], shown.stdout).status).toBe(0);
    const view = repositoryView(repo);
    const r = lb(['--catalogonly', transfer, repo, '--json', '--catalog', catalog]);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(JSON.parse(r.stdout)).toMatchObject({ snapshot: null, files: { new: NEW_NAMES.length, held: 0 } });
    expect(repositoryView(repo)).toEqual(view);
    expect(missingByOracle(src, repo)).toEqual([]);
    expectSoundStore(repo);
    expect(lbBytes(['--showfiles', src, repo, '--catalog', catalog])).toMatchObject({ status: 0, stdout: Buffer.alloc(0) });
    // The objects' names are their hashes: with a catalog that knows nothing, held objects are still not read.
    const again = openedPaths(['--catalogonly', transfer, repo, '--catalog', join(work, 'empty.sqlite')]);
    expect(again.run.status).toBe(0);
    expect(again.opened.filter((path) => /\/\.lb\/objects\/[0-9a-f]{2}\/[0-9a-f]{64}/.test(path))).toEqual([]);
    const next = backup(src, repo, catalog);
    expect(next.files.new).toBe(0);
    expect(next.bytes.transferred).toBe(0);
    expect(rsyncDifferences(src, join(repo, next.snapshot!, 'tree'))).toEqual([]);
  });

  it('stores a damaged object of the transfer repository under its true hash, never under the name it claims', () => {
    const { work, src, repo, catalog } = changedSource();
    const transfer = join(work, 'transfer');
    const shown = lbBytes(['--showfiles', '-0', src, repo, '--catalog', catalog]);
    expect(lbBytes(['--filelist', '-', '-0', src, transfer, '-q', '--catalog', catalog], shown.stdout).status).toBe(0);
    const victim = join(src, 'a-b');
    const claimed = sha256(readFileSync(victim));
    const object = objectPath(transfer, claimed);
    settle();
    flipByte(object);
    const actual = sha256(readFileSync(object));
    // No warning today: the data sent is hashed as it goes, and the object lands under what it hashes to.
    expect(lb(['--catalogonly', transfer, repo, '--catalog', catalog, '-q'])).toMatchObject({ status: 0, stdout: '' });
    const names = Object.keys(expectSoundStore(repo));
    expect(names.filter((name) => name.startsWith(claimed))).toEqual([]);
    expect(names.filter((name) => name.startsWith(actual))).toHaveLength(1);
    // So the backup takes that one file's content from the source, and nothing else.
    const next = backup(src, repo, catalog);
    expect(next.files.new).toBe(1);
    expect(next.bytes.transferred).toBe(lstatSync(victim).size);
    expect(rsyncDifferences(src, join(repo, next.snapshot!, 'tree'))).toEqual([]);
  });

  it('refuses --filelist and excludes with a repository as the source, whose objects it stores whole; its tree takes them', () => {
    const { work, src, repo, catalog } = changedSource();
    const list = join(work, 'list');
    writeFileSync(list, 'albums/summer/IMG_2.jpg\n');
    const target = join(work, 'target');
    for (const selection of [['--filelist', list], ['--exclude', 'notes.txt']]) {
      // Paths of a tree never match the object store's: without the refusal, this stored nothing, silently.
      const r = lb(['--catalogonly', ...selection, repo, target, '--catalog', catalog]);
      expect(r).toMatchObject({ status: 2, stdout: '' });
      expect(r.stderr).toBe(`lb: ${repo} is an lb repository, whose objects --catalogonly stores whole: --filelist and the options that leave things out choose paths of a tree; give one of its snapshot trees (${repo}/latest/tree) instead\n`);
      expect(existsSync(target)).toBe(false);
    }
    const tree = lb(['--catalogonly', '--filelist', list, join(repo, 'latest', 'tree'), target, '--json', '--catalog', catalog]);
    expect(tree.status).toBe(0);
    expect(JSON.parse(tree.stdout)).toMatchObject({ files: { new: 1, held: 0 } });
    expect(Object.keys(storeContents(target)).map((name) => name.slice(0, 64))).toEqual([sha256(readFileSync(join(src, 'albums', 'moved', 'IMG_2.jpg')))]);
  });

  it('keeps what it stored when the time budget runs out (exit status 4), and the next run completes', async () => {
    const work = tempDir();
    const src = join(work, 'src');
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    mkdirSync(src);
    for (let i = 0; i < 5; i++) writeFileSync(join(src, `a-small-${i}`), randomBytes(10_000));
    const big = join(src, 'z-big');
    writeFileSync(big, randomBytes(12 * 1024 * 1024));
    backup(src, join(work, 'warm-up'), catalog); // the catalog knows every hash: the runs below only send
    // Each 1 MiB read of z-big takes 300 ms, so its 3.6 s do not fit in the 2.4 s budget; the small files do, by far.
    const first = await slowLb(realpathSync(big), 300, ['--catalogonly', src, repo, '--catalog', catalog, '--minutes', '0.04']);
    expect(first.status).toBe(4);
    expect(first.stdout).toMatch(/^lb: time budget of 0\.04 minute\(s\) used up; no snapshot made/);
    expect(snapshots(repo)).toEqual([]);
    const stored = Object.values(expectSoundStore(repo));
    expect(stored).toHaveLength(5);
    expect(missingByOracle(src, repo).map(String)).toEqual(['z-big']);
    const second = lb(['--catalogonly', src, repo, '--json', '--catalog', catalog]);
    expect(second.status).toBe(0);
    expect(JSON.parse(second.stdout)).toMatchObject({ snapshot: null, files: { new: 1, held: 5 } });
    expect(missingByOracle(src, repo)).toEqual([]);
    expect(snapshots(repo)).toEqual([]);
    const next = backup(src, repo, catalog);
    expect(next.files.new).toBe(0);
    expect(next.bytes.transferred).toBe(0);
  });
});

describe('seeding options that cannot go together', () => {
  it('are refused in one line before anything is written', () => {
    const work = tempDir();
    const src = join(work, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'file'), 'x');
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    const combos: [string[], RegExp][] = [
      [['--showfiles', '--catalogonly'], /^lb: --showfiles and --catalogonly cannot go together: /],
      [['--showfiles', '--verify'], /^lb: --showfiles and --verify cannot go together: /],
      [['--showfiles', '--always'], /^lb: --showfiles and --always cannot go together: /],
      [['--showfiles', '--minutes', '5'], /^lb: --showfiles and --minutes cannot go together: /],
      [['--showfiles', '--json'], /^lb: --showfiles and --json cannot go together: /],
      [['--showfiles', '-v'], /^lb: --showfiles and --verbose cannot go together: /],
      [['--catalogonly', '--verify'], /^lb: --catalogonly and --verify cannot go together: /],
      [['--catalogonly', '--always'], /^lb: --catalogonly and --always cannot go together: /],
      [['-0'], /^lb: -0 separates the paths of --showfiles or --filelist; give one of them$/m],
      [['--catalogonly', '-0'], /^lb: -0 separates/],
      [['--filelist', '-', '--exclude-from', '-'], /^lb: standard input \("-"\) can feed only one of --filelist, --exclude-from and --include-from$/m],
      [['--exclude-from', '-', '--include-from', '-'], /^lb: standard input \("-"\) can feed only one/],
    ];
    for (const [combo, message] of combos) {
      const r = lb([...combo, src, repo, '--catalog', catalog]);
      expect(r.status, combo.join(' ')).toBe(2);
      // With --json the refusal is also the JSON object on stdout, as for every refused --json run.
      if (combo.includes('--json')) expect(JSON.parse(r.stdout)).toMatchObject({ status: 'error', exit: 2 });
      else expect(r.stdout, combo.join(' ')).toBe('');
      expect(r.stderr, combo.join(' ')).toMatch(ONE_LINE);
      expect(r.stderr, combo.join(' ')).toMatch(message);
      expect(existsSync(repo), combo.join(' ')).toBe(false);
    }
    expect(existsSync(catalog)).toBe(false);
  });

  it('refuses two readers of standard input at once without waiting for it to end (a terminal never ends it)', async () => {
    const work = tempDir();
    mkdirSync(join(work, 'src'));
    for (const combo of [['--filelist', '-', '--exclude-from', '-'], ['--exclude-from', '-', '--include-from', '-']]) {
      const r = await lbWithStdinOpen([...combo, join(work, 'src'), join(work, 'repo')], 5000);
      expect(r, combo.join(' ')).toMatchObject({ endedAlone: true, status: 2 });
      expect(r.stderr).toMatch(/^lb: standard input \("-"\) can feed only one of [^\n]*\n$/);
    }
  });
});
