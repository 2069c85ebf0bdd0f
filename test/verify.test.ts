// lb verify on repositories made by the real lb, damaged by hand one way at a
// time; what links to what is found by an independent oracle (Python walking the
// trees and the store by inode), and what lb opens by strace.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseObjectSubset, subsetTakes } from '../src/repo/object-subset.js';
import { parseObjectName } from '../src/repo/verify-store.js';
import { backup, lb, mountOrSkip, openedPaths, run, tempDir, umount } from './helpers.js';
import { flipByte } from './seeding-oracles.js';

const LATIN1 = Buffer.from('caf\xe9', 'latin1');
const X = 'x'.repeat(2000);
const X_HASH = createHash('sha256').update(X).digest('hex');

/**
 * Three snapshots of a changing source: a content stored once and linked by two
 * paths in each snapshot, a moved album, a non-UTF-8 name, a symlink, a chmod
 * (a variant object), a removed and an added file.
 */
function repository(): { repo: string; names: string[] } {
  const work = tempDir();
  const source = join(work, 'src');
  const repo = join(work, 'repo');
  mkdirSync(join(source, 'albums', 'summer'), { recursive: true });
  writeFileSync(join(source, 'albums', 'summer', 'IMG_1.jpg'), X);
  writeFileSync(join(source, 'albums', 'copy.jpg'), X);
  for (const same of ['albums/summer/IMG_1.jpg', 'albums/copy.jpg']) utimesSync(join(source, same), 1_700_000_000, 1_700_000_000);
  writeFileSync(join(source, 'albums', 'summer', 'IMG_2.jpg'), 'y'.repeat(3000));
  writeFileSync(Buffer.concat([Buffer.from(join(source, 'albums') + '/'), LATIN1]), 'latin-1 name');
  writeFileSync(join(source, 'notes.txt'), 'notes');
  symlinkSync('albums/summer/IMG_1.jpg', join(source, 'favourite'));
  const catalog = join(work, 'catalog.sqlite');
  const names = [backup(source, repo, catalog).snapshot!];
  renameSync(join(source, 'albums', 'summer'), join(source, 'albums', 'summer-2026'));
  writeFileSync(join(source, 'new.txt'), 'n'.repeat(100));
  unlinkSync(join(source, 'notes.txt'));
  names.push(backup(source, repo, catalog).snapshot!);
  chmodSync(join(source, 'new.txt'), 0o600);
  writeFileSync(join(source, 'extra.txt'), X);
  names.push(backup(source, repo, catalog).snapshot!);
  return { repo, names };
}

function python(script: string, ...args: string[]): string {
  const r = spawnSync('python3', ['-c', script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

/** Every tree path (snapshot and path bytes as hex) that is the same inode as `object`, by Python. */
function linksOf(repo: string, object: string): string[] {
  const script = `
import os, sys
repo, obj = os.fsencode(sys.argv[1]), os.lstat(sys.argv[2])
for snap in sorted(os.listdir(repo)):
    tree = os.path.join(repo, snap, b'tree')
    if snap.startswith(b'.') or not os.path.isdir(tree) or os.path.islink(os.path.join(repo, snap)): continue
    for top, dirs, files in os.walk(tree):
        for f in files:
            st = os.lstat(os.path.join(top, f))
            if (st.st_dev, st.st_ino) == (obj.st_dev, obj.st_ino):
                print(snap.decode(), os.path.relpath(os.path.join(top, f), tree).hex())
`;
  return python(script, repo, object).trim().split('\n').filter(Boolean).sort();
}

/** The store's objects and their apparent sizes, by Python. */
function storeFigures(repo: string): { objects: number; bytes: number; paths: string[] } {
  const script = `
import os, sys, json
store = os.path.join(sys.argv[1], '.lb', 'objects')
paths = [os.path.join(store, d, n) for d in os.listdir(store) for n in os.listdir(os.path.join(store, d))]
print(json.dumps({'objects': len(paths), 'bytes': sum(os.lstat(p).st_size for p in paths), 'paths': paths}))
`;
  return JSON.parse(python(script, repo));
}

interface JsonProblem {
  kind: string;
  snapshot?: string;
  path?: string;
  pathBase64?: string;
  object?: string;
  detail: string;
  links?: { snapshot: string; path: string; pathBase64?: string }[];
}
interface JsonReport {
  problems: JsonProblem[];
  checked: { snapshots: number; entries: number; objects: number; objectsRead: number; bytesRead: number };
  status: string;
}

function verifyJson(repo: string, ...extra: string[]): { status: number; report: JsonReport } {
  const r = lb(['verify', repo, '--json', ...extra]);
  expect(r.stderr).toBe('');
  return { status: r.status, report: JSON.parse(r.stdout) as JsonReport };
}

/** A problem's path as exact bytes, in hex, as the oracle gives it. */
function hexPath(p: { path?: string; pathBase64?: string }): string {
  return p.pathBase64 !== undefined ? Buffer.from(p.pathBase64, 'base64').toString('hex') : Buffer.from(p.path!).toString('hex');
}

describe('lb verify on a sound repository', () => {
  it('says nothing but its closing line and exits 0', () => {
    const { repo, names } = repository();
    const r = lb(['verify', repo]);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(r.stdout).toMatch(/^checked 3 snapshots, \d+ entries, \d+ objects; no object data read: no problems\n$/);
    const { status, report } = verifyJson(repo, '--read-data');
    expect(status).toBe(0);
    const store = storeFigures(repo);
    expect(report).toMatchObject({ problems: [], status: 'ok', checked: { snapshots: names.length, objects: store.objects, objectsRead: store.objects, bytesRead: store.bytes } });
  });

  it('takes `lb verify --read-data REPO` as re-reading every object of REPO, and refuses a word that is neither', () => {
    const { repo } = repository();
    const store = storeFigures(repo);
    const r = lb(['verify', '--read-data', repo, '--json']);
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as JsonReport).checked).toMatchObject({ objectsRead: store.objects, bytesRead: store.bytes });
    const both = lb(['verify', '--read-data', 'everything', repo]);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/^lb: option '--read-data \[subset\]' argument 'everything' is invalid\. .*\n$/);
    const none = lb(['verify']);
    expect(none).toMatchObject({ status: 2, stdout: '' });
    expect(none.stderr).toMatch(/^lb: missing required argument 'repository'; usage: lb verify/);
  });

  it('reads each object exactly once with --read-data, whatever links to it, and opens no tree file', () => {
    const { repo } = repository();
    expect(linksOf(repo, join(repo, '.lb', 'objects', X_HASH.slice(0, 2), X_HASH)).length).toBe(6);
    const { run: r, opened } = openedPaths(['verify', repo, '--read-data']);
    expect(r.status, r.stderr).toBe(0);
    const store = storeFigures(repo);
    const objectsOpened = opened.filter((p) => p.includes('/.lb/objects/') && /[0-9a-f]{64}/.test(p));
    expect(objectsOpened.sort()).toEqual([...store.paths].sort());
    expect(opened.filter((p) => /\/tree\/.*\.(jpg|txt)$/.test(p))).toEqual([]);
  });

  it('reads every object once over the parts 1/2 and 2/2, and about half of them with 50%', () => {
    const { repo } = repository();
    const store = storeFigures(repo);
    const first = verifyJson(repo, '--read-data', '1/2').report.checked;
    const second = verifyJson(repo, '--read-data', '2/2').report.checked;
    expect(first.objectsRead + second.objectsRead).toBe(store.objects);
    expect(first.bytesRead + second.bytesRead).toBe(store.bytes);
    // Part N of T: the objects whose hash's first byte is N-1 modulo T, as restic splits packs.
    const inFirst = store.paths.filter((p) => parseInt(p.split('/').at(-1)!.slice(0, 2), 16) % 2 === 0).length;
    expect(first.objectsRead).toBe(inFirst);
  });

  it('takes about the share asked for at random', () => {
    const work = tempDir();
    const source = join(work, 'src');
    mkdirSync(source);
    for (let i = 0; i < 200; i++) writeFileSync(join(source, `f${i}`), `content ${i}\n`.repeat(50));
    const repo = join(work, 'repo');
    backup(source, repo, join(work, 'catalog.sqlite'));
    const half = verifyJson(repo, '--read-data', '50%').report.checked;
    expect(half.objects).toBe(200);
    // 200 draws of one half: outside 60…140 has a chance below one in a billion.
    expect(half.objectsRead).toBeGreaterThan(60);
    expect(half.objectsRead).toBeLessThan(140);
    expect(Math.abs(half.bytesRead - half.objectsRead * storeFigures(repo).bytes / 200)).toBeLessThan(half.bytesRead * 0.05);
  });

  it('takes objects being added by a running backup and its work in .lb/tmp for what they are: not problems', () => {
    const { repo, names } = repository();
    const fresh = 'stored by a run still going';
    const hash = createHash('sha256').update(fresh).digest('hex');
    mkdirSync(join(repo, '.lb', 'objects', hash.slice(0, 2)), { recursive: true });
    writeFileSync(join(repo, '.lb', 'objects', hash.slice(0, 2), hash), fresh);
    mkdirSync(join(repo, '.lb', 'tmp', '2099.01.01-00.00.00', 'tree'), { recursive: true });
    writeFileSync(join(repo, '.lb', 'tmp', '2099.01.01-00.00.00', 'tree', 'half-made'), '');
    writeFileSync(join(repo, '.lb', 'lock'), JSON.stringify({ host: 'elsewhere', pid: 1, since: '2026-01-01T00:00:00Z' }) + '\n');
    const { status, report } = verifyJson(repo, '--read-data');
    expect(report.problems).toEqual([]);
    expect(status).toBe(0);
    expect(report.checked.snapshots).toBe(names.length);
  });

  it('works on a read-only mount', (ctx) => {
    const { repo } = repository();
    const mnt = join(tempDir(), 'ro');
    mountOrSkip(ctx, ['--bind', repo], mnt);
    try {
      expect(run('mount', ['-o', 'remount,bind,ro', mnt]).ok).toBe(true);
      const r = lb(['verify', mnt, '--read-data']);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
    } finally {
      umount(mnt);
    }
  });
});

describe('lb verify on a damaged repository', () => {
  it('finds a flipped byte only with --read-data, naming every path in every snapshot that links to the object', () => {
    const { repo } = repository();
    const object = join(repo, '.lb', 'objects', X_HASH.slice(0, 2), X_HASH);
    flipByte(object);
    const plain = lb(['verify', repo]);
    expect(plain.status, plain.stdout).toBe(0);
    const { status, report } = verifyJson(repo, '--read-data');
    expect(status).toBe(5);
    expect(report.status).toBe('damaged');
    expect(report.problems).toHaveLength(1);
    const rotten = report.problems[0]!;
    expect(rotten).toMatchObject({ kind: 'rotten', object: `.lb/objects/${X_HASH.slice(0, 2)}/${X_HASH}` });
    const linked = rotten.links!.map((l) => `${l.snapshot} ${hexPath(l)}`).sort();
    expect(linked).toEqual(linksOf(repo, object));
    expect(linked).toHaveLength(6);
    const text = lb(['verify', repo, '--read-data']);
    expect(text.status).toBe(5);
    const lines = text.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^object \\.lb/objects/../${X_HASH}: its content hashes to [0-9a-f]{64}, not to its name; linked from `));
    const shown = lines[0]!.split('; linked from ')[1]!.split(', ');
    expect(shown.sort()).toEqual(linksOf(repo, object).map((l) => l.replace(/ (.*)$/, (_, h: string) => ` ${Buffer.from(h, 'hex')}`)).sort());
    expect(lines[1]).toMatch(/: 1 problem$/);
  });

  it('finds a tree file deleted, naming a non-UTF-8 path exactly', () => {
    const { repo, names } = repository();
    const latin = Buffer.concat([Buffer.from('albums/'), LATIN1]);
    unlinkSync(Buffer.concat([Buffer.from(join(repo, names[1]!, 'tree') + '/'), latin]));
    const { status, report } = verifyJson(repo);
    expect(status).toBe(5);
    const missing = report.problems.filter((p) => p.kind === 'missing');
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatchObject({ snapshot: names[1], pathBase64: latin.toString('base64') });
    expect(lb(['verify', repo]).stdout).toContain(`${names[1]} albums/caf\\xe9: in the manifest but not in the tree\n`);
  });

  it('finds a stray file added in a tree', () => {
    const { repo, names } = repository();
    writeFileSync(join(repo, names[0]!, 'tree', 'albums', 'summer', 'IMG_3.jpg'), 'added by hand');
    const { status, report } = verifyJson(repo);
    expect(status).toBe(5);
    expect(report.problems.filter((p) => p.kind === 'unlisted')).toEqual([
      { kind: 'unlisted', snapshot: names[0], path: 'albums/summer/IMG_3.jpg', detail: 'in the tree but not in the manifest' },
    ]);
  });

  it('finds stray files in the store: a name that is no object name, a hash part that is not 64 hex digits', () => {
    const { repo } = repository();
    const fanout = join(repo, '.lb', 'objects', X_HASH.slice(0, 2));
    writeFileSync(join(fanout, 'notes.txt'), '');
    writeFileSync(join(fanout, X_HASH.slice(0, 63)), '');
    writeFileSync(join(fanout, X_HASH.toUpperCase()), '');
    writeFileSync(join(repo, '.lb', 'objects', 'zz'), '');
    const { status, report } = verifyJson(repo);
    expect(status).toBe(5);
    const strays = report.problems.filter((p) => p.kind === 'stray').map((p) => p.object).sort();
    const at = `.lb/objects/${X_HASH.slice(0, 2)}`;
    expect(strays).toEqual([`${at}/${X_HASH.slice(0, 63)}`, `${at}/${X_HASH.toUpperCase()}`, `${at}/notes.txt`, '.lb/objects/zz'].sort());
    expect(report.problems).toHaveLength(4);
  });

  it('finds a manifest cut in the middle of a line, even one cut only of its last newline', () => {
    for (const cut of [30, 1]) {
      const { repo, names } = repository();
      const manifest = join(repo, names[1]!, 'manifest');
      truncateSync(manifest, readFileSync(manifest).length - cut);
      const { status, report } = verifyJson(repo);
      expect(status, `cut ${cut}`).toBe(5);
      const found = report.problems.filter((p) => p.kind === 'manifest');
      expect(found, `cut ${cut}`).toHaveLength(1);
      expect(found[0]).toMatchObject({ snapshot: names[1] });
      expect(found[0]!.detail).toMatch(/cut short/);
    }
  });

  it('finds a manifest cut at a line boundary by the tree entries it lacks (the format has no end marker)', () => {
    const { repo, names } = repository();
    const manifest = join(repo, names[1]!, 'manifest');
    const lines = readFileSync(manifest, 'utf8').split('\n');
    // Header, records, and the empty string after the last newline: keep all but the last two records.
    writeFileSync(manifest, lines.slice(0, -3).join('\n') + '\n');
    const dropped = lines.slice(-3, -1).map((line) => line.split('\t')[2]);
    const { status, report } = verifyJson(repo);
    expect(status).toBe(5);
    expect(report.problems.filter((p) => p.kind === 'manifest')).toEqual([]);
    const unlisted = report.problems.filter((p) => p.kind === 'unlisted');
    expect(unlisted.map((p) => p.path)).toEqual(dropped);
    expect(unlisted.every((p) => p.snapshot === names[1])).toBe(true);
  });

  it('finds a manifest whose header line is cut: not a complete snapshot', () => {
    const { repo, names } = repository();
    truncateSync(join(repo, names[0]!, 'manifest'), 5);
    const { status, report } = verifyJson(repo);
    expect(status).toBe(5);
    expect(report.problems).toEqual([expect.objectContaining({ kind: 'snapshot', snapshot: names[0] })]);
    expect(report.checked.snapshots).toBe(names.length - 1);
  });

  it('finds a chmod of a tree file at every path sharing its inode, in every snapshot', () => {
    const { repo, names } = repository();
    chmodSync(join(repo, names[0]!, 'tree', 'albums', 'copy.jpg'), 0o600);
    const { status, report } = verifyJson(repo);
    expect(status).toBe(5);
    const object = join(repo, '.lb', 'objects', X_HASH.slice(0, 2), X_HASH);
    const changed = report.problems.filter((p) => p.kind === 'metadata');
    expect(changed.map((p) => `${p.snapshot} ${hexPath(p)}`).sort()).toEqual(linksOf(repo, object));
    expect(changed.every((p) => p.detail === 'differs from the manifest: mode 600, not 644')).toBe(true);
    expect(report.problems).toHaveLength(6);
  });

  it('finds a broken latest: dangling, pointing to a snapshot without a manifest, or not a link', () => {
    const { repo, names } = repository();
    const latest = join(repo, 'latest');
    rmSync(latest);
    symlinkSync('2099.01.01-00.00.00', latest);
    const dangling = verifyJson(repo);
    expect(dangling.status).toBe(5);
    expect(dangling.report.problems).toEqual([{ kind: 'latest', detail: 'latest points to 2099.01.01-00.00.00, which is not a complete snapshot' }]);
    rmSync(latest);
    writeFileSync(latest, names[2]!);
    expect(verifyJson(repo).report.problems).toEqual([{ kind: 'latest', detail: 'latest is a file, not a symbolic link to a snapshot' }]);
    rmSync(latest);
    const r = lb(['verify', repo]);
    expect(r.status).toBe(5);
    expect(r.stdout.split('\n')[0]).toBe('latest is missing; it should point to the newest snapshot');
  });

  it('finds a tree file that is no longer a hard link to its object', () => {
    const { repo, names } = repository();
    const file = join(repo, names[2]!, 'tree', 'new.txt');
    // A copy in its place, with the same content and metadata: only its inode differs.
    python(`
import os, shutil, sys
p = sys.argv[1]; st = os.lstat(p)
shutil.copy2(p, p + '.copy'); os.rename(p + '.copy', p)
os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
`, file);
    const { report } = verifyJson(repo);
    const link = report.problems.filter((p) => p.kind === 'link');
    expect(link).toHaveLength(1);
    expect(link[0]).toMatchObject({ snapshot: names[2], path: 'new.txt' });
    expect(link[0]!.detail).toMatch(/^not a hard link to a stored object of its content [0-9a-f]{64}$/);
  });
});

describe('lb verify on a bad command line', () => {
  it('refuses a subset it does not know, in one line each', () => {
    const { repo } = repository();
    for (const bad of ['0%', '101%', '3/2', '0/4', '1/257', 'half']) {
      const r = lb(['verify', repo, '--read-data', bad]);
      expect(r.status, bad).toBe(2);
      expect(r.stderr.trim().split('\n'), bad).toHaveLength(1);
    }
    const none = lb(['verify', tempDir()]);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/is not an lb repository/);
  });
});

describe('object subsets and names', () => {
  it('parses shares and parts as restic does, and refuses the rest', () => {
    expect(parseObjectSubset('10%')).toEqual({ kind: 'share', percent: 10 });
    expect(parseObjectSubset('2.5%')).toEqual({ kind: 'share', percent: 2.5 });
    expect(parseObjectSubset('100%')).toEqual({ kind: 'all' });
    expect(parseObjectSubset('3/7')).toEqual({ kind: 'part', part: 3, parts: 7 });
    expect(parseObjectSubset('1/1')).toEqual({ kind: 'all' });
    for (const bad of ['0%', '100.5%', '%', '10', '0/3', '4/3', '1/0', '1/257', '-1/2', '1/2/3']) expect(() => parseObjectSubset(bad), bad).toThrow();
  });

  it('puts every hash in exactly one of T parts, by its first byte, and draws shares from the random source', () => {
    for (const parts of [2, 7, 256]) {
      for (let byte = 0; byte < 256; byte++) {
        const hash = byte.toString(16).padStart(2, '0') + '0'.repeat(62);
        const taking = Array.from({ length: parts }, (_, i) => subsetTakes({ kind: 'part', part: i + 1, parts }, hash)).filter(Boolean);
        expect(taking).toHaveLength(1);
        expect(subsetTakes({ kind: 'part', part: (byte % parts) + 1, parts }, hash)).toBe(true);
      }
    }
    const share = { kind: 'share', percent: 10 } as const;
    expect(subsetTakes(share, X_HASH, () => 0.09)).toBe(true);
    expect(subsetTakes(share, X_HASH, () => 0.1)).toBe(false);
  });

  it('reads object names as docs/FORMAT.md gives them', () => {
    expect(parseObjectName(X_HASH)).toEqual({ hash: X_HASH, variant: null, twin: null });
    expect(parseObjectName(`${X_HASH}.4755.0.100.-1000000000+2`)).toEqual({ hash: X_HASH, variant: { mode: 0o4755, uid: 0, gid: 100, mtimeNs: -1000000000n }, twin: 2 });
    expect(parseObjectName(`${X_HASH}+1`)).toEqual({ hash: X_HASH, variant: null, twin: 1 });
    for (const bad of [X_HASH.slice(1), X_HASH.toUpperCase(), `${X_HASH}.8.0.0.1`, `${X_HASH}.644.0.0`, `${X_HASH}+0`, `${X_HASH}.tmp`, `${X_HASH}.17777.0.0.1`]) {
      expect(parseObjectName(bad), bad).toBeNull();
    }
  });
});
