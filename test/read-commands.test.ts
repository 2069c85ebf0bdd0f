// lb list and lb ls on repositories made by the real lb from a changing source,
// checked against the snapshot trees themselves (Python walks them: an oracle
// that shares no code with lb).
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatBytes } from '../src/cli/format.js';
import { backup, lb, tempDir } from './helpers.js';

const LATIN1 = Buffer.from('caf\xe9', 'latin1');

/** Two snapshots: photos, a non-UTF-8 name, a symlink; then a moved album, a new file, a removed one. */
function repository(): { work: string; source: string; repo: string; names: string[] } {
  const work = tempDir();
  const source = join(work, 'src');
  const repo = join(work, 'repo');
  mkdirSync(join(source, 'albums', 'summer'), { recursive: true });
  writeFileSync(join(source, 'albums', 'summer', 'IMG_1.jpg'), 'x'.repeat(2000));
  writeFileSync(join(source, 'albums', 'summer', 'IMG_2.jpg'), 'y'.repeat(3000));
  writeFileSync(Buffer.from(join(source, 'albums') + '/' + LATIN1.toString('latin1'), 'latin1'), 'latin-1 name');
  writeFileSync(join(source, 'notes.txt'), 'notes');
  symlinkSync('albums/summer/IMG_1.jpg', join(source, 'favourite'));
  utimesSync(join(source, 'notes.txt'), 1_700_000_000, 1_700_000_000);
  const catalog = join(work, 'catalog.sqlite');
  const names = [backup(source, repo, catalog).snapshot!];
  renameSync(join(source, 'albums', 'summer'), join(source, 'albums', 'summer-2026'));
  writeFileSync(join(source, 'new.txt'), 'n'.repeat(100));
  unlinkSync(join(source, 'notes.txt'));
  names.push(backup(source, repo, catalog).snapshot!);
  return { work, source, repo, names };
}

/** Every path in a tree, relative, directories with a trailing slash, as Python's os.walk finds them (raw bytes, shown as latin-1). */
function treePaths(tree: string, under = ''): string[] {
  const script = `
import os, sys
root = os.fsencode(sys.argv[1])
out = []
for top, dirs, files in os.walk(root):
    for d in dirs:
        p = os.path.relpath(os.path.join(top, d), root)
        out.append(p + b'/' if not os.path.islink(os.path.join(top, d)) else p)
    for f in files:
        out.append(os.path.relpath(os.path.join(top, f), root))
sys.stdout.buffer.write(b'\\n'.join(sorted(out)))
`;
  const r = spawnSync('python3', ['-c', script, join(tree, under)], { encoding: 'latin1' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout === '' ? [] : r.stdout.split('\n').map((p) => (under ? `${under}/${p}` : p));
}

describe('lb list', () => {
  it('shows each snapshot with its files, size and how they arrived; --json carries the same', () => {
    const { repo, names } = repository();
    const r = lb(['list', repo]);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^snapshot\s+files\s+size\s+new\s+copied\s+linked\s+new size\s+status$/);
    const row = (cells: string[]) => new RegExp(`^${cells.map((c) => c.replace(/[.*]/g, (m) => `\\${m}`)).join('\\s+')}$`);
    expect(lines[1]).toMatch(row([names[0]!, '4', formatBytes(5017), '4', '0', '0', formatBytes(5017), 'ok']));
    expect(lines[2]).toMatch(row([names[1]!, '*', '4', formatBytes(5112), '1', '0', '3', formatBytes(100), 'ok']));
    expect(lines[3]).toBe('2 snapshot(s); * is latest');
    const json = JSON.parse(lb(['list', repo, '--json']).stdout);
    expect(json.map((s: { name: string }) => s.name)).toEqual(names);
    expect(json[1]).toMatchObject({ files: 4, bytes: 5112, new: 1, copied: 0, linked: 3, newBytes: 100, status: 'ok', latest: true });
  });

  it('refuses a directory that is not a repository in one line (over SSH too: test/remote-read.test.ts)', () => {
    const work = tempDir();
    const r = lb(['list', work]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`lb: ${work} is not an lb repository (it has no .lb/format)\n`);
  });
});

describe('lb ls', () => {
  it('lists what a directory holds, or with -R everything beneath it, exactly as the tree on disk has it', () => {
    const { repo, names } = repository();
    const tree = join(repo, names[1]!, 'tree');
    const all = lb(['ls', repo, '-R'], {});
    expect(all.status, all.stderr).toBe(0);
    const shown = all.stdout.trim().split('\n').map((line) => line.replace(/ -> .*$/, '').replace(/\\xe9/, '\xe9'));
    expect(shown.sort()).toEqual(treePaths(tree));
    const top = lb(['ls', repo]).stdout.trim().split('\n');
    expect(top).toEqual(['albums/', 'favourite -> albums/summer/IMG_1.jpg', 'new.txt']);
    const album = lb(['ls', repo, 'albums/summer-2026']).stdout.trim().split('\n');
    expect(album).toEqual(['albums/summer-2026/IMG_1.jpg', 'albums/summer-2026/IMG_2.jpg']);
    // The first snapshot, named by a unique prefix, and one file.
    let shared = 0;
    while (names[0]![shared] === names[1]![shared]) shared++;
    const old = lb(['ls', repo, names[0]!.slice(0, shared + 1), 'notes.txt', '-l']);
    expect(old.status, old.stderr).toBe(0);
    expect(old.stdout).toMatch(/^-rw-r--r--  \S+\s+5 B  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  new     notes\.txt\n$/);
  });

  it('gives a name that is not UTF-8 escaped on a terminal and exact in --json', () => {
    const { repo } = repository();
    expect(lb(['ls', repo, 'albums']).stdout).toContain('albums/caf\\xe9\n');
    const entries = JSON.parse(lb(['ls', repo, 'albums', '--json']).stdout) as { path: string; pathBase64?: string }[];
    const latin = entries.find((e) => e.pathBase64 !== undefined)!;
    expect(Buffer.from(latin.pathBase64!, 'base64')).toEqual(Buffer.concat([Buffer.from('albums/'), LATIN1]));
    expect(entries.filter((e) => e.pathBase64 === undefined).map((e) => e.path)).toEqual(['albums/summer-2026']);
  });

  it('refuses an unknown or ambiguous snapshot, a path not in it, and a path going up, in one line each', () => {
    const { repo, names } = repository();
    const unknown = lb(['ls', repo, '1999.01']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(new RegExp(`^lb: no snapshot 1999\\.01 in .*; the nearest are ${names[0]!.replace(/\./g, '\\.')} and ${names[1]!.replace(/\./g, '\\.')}\\n$`));
    if (names[0]!.slice(0, 4) === names[1]!.slice(0, 4)) {
      const ambiguous = lb(['ls', repo, names[0]!.slice(0, 4)]);
      expect(ambiguous.status).toBe(2);
      expect(ambiguous.stderr).toMatch(/could be any of 2 snapshots/);
    }
    const missing = lb(['ls', repo, 'latest', 'albums/winter']);
    expect(missing).toMatchObject({ status: 2, stderr: `lb: no albums/winter in snapshot ${names[1]}\n`, stdout: '' });
    const missingJson = lb(['ls', repo, 'latest', 'albums/winter', '--json']);
    expect(JSON.parse(missingJson.stdout)).toMatchObject({ status: 'error', exit: 2 });
    expect(lb(['ls', repo, 'latest', '../etc'])).toMatchObject({ status: 2, stderr: 'lb: ../etc: a path inside a snapshot cannot go up with ..\n' });
  });
});
