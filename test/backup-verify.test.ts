// lb backup --verify: the real lb, on real sources and repositories; the world is
// changed between the snapshot's publication and the comparison by holding lb
// (strace SIGSTOP) at the comparison's first step, its opening of the
// repository's format file (the repository side opened it once before, to write).
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, linkSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readlinkSync, readSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ReadLog } from '../src/agent/read-log.js';
import { sourceDifferences, type EntryFacts } from '../src/diff/source-match.js';
import { backup, lb, settle, snapshots, tempDir } from './helpers.js';
import { TracedRun, failAt, holdAt, type Finished } from './traced-run.js';

interface VerifySummary {
  snapshot: string | null;
  created: boolean;
  status: string;
  verify: {
    snapshot: string;
    checked: { entries: number; filesReread: number; objectsReread: number; bytesRead: number };
    differences: { side: string; path?: string; detail: string; snapshot?: string }[];
    differenceCount: number;
  } | null;
}

function makeSource(work: string): string {
  const source = join(work, 'src');
  mkdirSync(join(source, 'album'), { recursive: true });
  writeFileSync(join(source, 'album', 'one.jpg'), 'one'.repeat(100));
  writeFileSync(join(source, 'album', 'two.jpg'), 'two'.repeat(100));
  writeFileSync(join(source, 'notes.txt'), 'notes');
  chownSync(join(source, 'notes.txt'), 4321, 4321); // ids no name stands for here: kept as numbers (the tests run as root)
  writeFileSync(Buffer.from(join(source, 'caf\xe9.txt'), 'latin1'), 'latin-1 name');
  symlinkSync('album/one.jpg', join(source, 'favourite'));
  settle(); // past the racily-clean window, so the catalog vouches for these files next time
  return source;
}

/** Entries of makeSource's tree: the root, album/, two photos, notes.txt, café.txt, favourite. */
const ENTRIES = 7;
const FILES = 4;

function verifyRun(source: string, repo: string, catalog: string, extra: string[] = []): { status: number; summary: VerifySummary; stderr: string } {
  const r = lb(['backup', source, repo, '--json', '--verify', '--catalog', catalog, ...extra]);
  return { status: r.status, summary: JSON.parse(r.stdout) as VerifySummary, stderr: r.stderr };
}

/** Overwrites one byte in place, keeping the file's size and mtime to the nanosecond: only its content tells. */
function flipByte(path: string, at = 0): void {
  const { mtimeNs } = lstatSync(path, { bigint: true });
  const fd = openSync(path, 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, at);
  writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, at);
  closeSync(fd);
  // utimes takes seconds as a double, which cannot carry every nanosecond; touch -d takes them as text.
  const ns = (mtimeNs % 1_000_000_000n).toString().padStart(9, '0');
  expect(spawnSync('touch', ['-m', '-d', `@${mtimeNs / 1_000_000_000n}.${ns}`, path]).status).toBe(0);
  expect(lstatSync(path, { bigint: true }).mtimeNs).toBe(mtimeNs);
}

/** Resolves with the thread stopped by the `count`th injected SIGSTOP, once strace's log says it is stopped (its whole process is). */
async function stopped(trace: string, count: number): Promise<number> {
  for (const started = Date.now(); Date.now() - started < 30_000; await new Promise((resolve) => setTimeout(resolve, 5))) {
    const text = existsSync(trace) ? readFileSync(trace, 'utf8') : '';
    const injected = [...text.matchAll(/^(\d+) +--- SIGSTOP \{si_signo=SIGSTOP, si_code=SI_KERNEL\}/gm)][count - 1];
    if (injected && new RegExp(`^${injected[1]} +--- stopped by SIGSTOP ---$`, 'm').test(text.slice(injected.index))) return Number(injected[1]);
  }
  throw new Error(`lb never stopped ${count} time(s): ${existsSync(trace) ? readFileSync(trace, 'utf8') : 'no trace'}`);
}

/**
 * A --verify run held after it published its snapshot, before it compares: `change` runs then.
 * Both processes open the format file once: the repository side (an agent) to write, then lb to compare.
 */
async function heldBeforeComparing(source: string, repo: string, catalog: string, change: () => void): Promise<Finished> {
  const args = ['backup', source, repo, '--json', '--verify', '--catalog', catalog];
  const run = new TracedRun(args, holdAt(join(repo, '.lb', 'format'), 'openat'));
  const agent = await stopped(run.trace, 1);
  process.kill(agent, 'SIGCONT');
  const comparing = await stopped(run.trace, 2);
  expect(comparing).not.toBe(agent);
  change();
  process.kill(comparing, 'SIGCONT');
  return run.end();
}

describe('lb backup --verify', () => {
  it('verifies a clean first run: every entry compared, every file re-read, every stored object re-hashed', () => {
    const work = tempDir();
    const source = makeSource(work);
    const repo = join(work, 'repo');
    const { status, summary, stderr } = verifyRun(source, repo, join(work, 'catalog'));
    expect(status, stderr).toBe(0);
    expect(summary.status).toBe('ok');
    expect(summary.verify).toMatchObject({ snapshot: summary.snapshot, differences: [], differenceCount: 0 });
    const bytes = 300 + 300 + 5 + 12;
    expect(summary.verify!.checked).toEqual({ entries: ENTRIES, filesReread: FILES, objectsReread: FILES, bytesRead: 2 * bytes });

    const text = lb(['backup', source, repo, '--verify', '--always', '--catalog', join(work, 'catalog')]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^ {2}verified: 7 entries, 0 files re-read, 0 stored objects re-hashed \(0 B read in all\); snapshot \S+ matches the source$/m);
    expect(lb(['backup', source, repo, '-q', '--verify', '--always', '--catalog', join(work, 'catalog')])).toMatchObject({ status: 0, stdout: '', stderr: '' });
  });

  it('reports an object this run stored, changed behind its back before the comparison, naming the path (exit status 6)', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');
    const first = backup(source, repo, catalog).snapshot!;
    writeFileSync(join(source, 'album', 'three.jpg'), 'three'.repeat(100));
    const finished = await heldBeforeComparing(source, repo, catalog, () => {
      // Published already: `latest` names the new snapshot.
      const published = readlinkSync(join(repo, 'latest'));
      expect(published).not.toBe(first);
      flipByte(join(repo, published, 'tree', 'album', 'three.jpg'), 7);
    });
    expect(finished.status, finished.stderr).toBe(6);
    const summary = JSON.parse(finished.stdout) as VerifySummary;
    expect(summary.status).toBe('differs');
    expect(summary.created).toBe(true);
    expect(summary.verify!.differences).toEqual([
      expect.objectContaining({ side: 'repository', kind: 'rotten', snapshot: summary.snapshot, path: 'album/three.jpg', detail: expect.stringMatching(/^its object, stored by this run, hashes to [0-9a-f]{64}, not to its recorded [0-9a-f]{64}$/) }),
    ]);
    expect(summary.verify!.differenceCount).toBe(1);
    expect(finished.stderr).toMatch(new RegExp(`^lb: verify: ${summary.snapshot} album/three\\.jpg: its object, stored by this run, hashes to`, 'm'));
    expect(finished.stderr).toMatch(/^lb: verify: snapshot \S+ differs from the source in 1 place\(s\)/m);
    // The source's copy, re-read, still matches: the difference is the repository's alone.
    expect(summary.verify!.checked).toMatchObject({ entries: ENTRIES + 1, filesReread: 1, objectsReread: 1 });
  });

  it('reports a manifest damaged before the comparison, and compares up to the damage without failing otherwise', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');
    backup(source, repo, catalog);
    writeFileSync(join(source, 'zz.txt'), 'last in the walk');
    const finished = await heldBeforeComparing(source, repo, catalog, () => {
      appendFileSync(join(repo, readlinkSync(join(repo, 'latest')), 'manifest'), 'not a record\n');
    });
    expect(finished.status, finished.stderr).toBe(6);
    const summary = JSON.parse(finished.stdout) as VerifySummary;
    const kinds = summary.verify!.differences.map((d) => [d.side, (d as { kind?: string }).kind ?? d.path]);
    expect(kinds).toEqual([
      ['repository', 'manifest'],
      ['repository', 'manifest'],
      ['source', '.'],
    ]);
    expect(summary.verify!.differences[2]!.detail).toBe('the comparison with the source stopped: corrupt manifest line');
    // Every sound record was compared, zz.txt's object re-hashed and the file read again.
    expect(summary.verify!.checked).toMatchObject({ entries: ENTRIES + 1, filesReread: 1, objectsReread: 1 });
  });

  it('reports a source changed after the snapshot was published: content of a file it read, metadata, an added and a removed file', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');
    backup(source, repo, catalog);
    mkdirSync(join(source, 'later'));
    writeFileSync(join(source, 'later', 'read.txt'), 'read by the second run');
    writeFileSync(join(source, 'later', 'gone.txt'), 'removed before the comparison');
    writeFileSync(join(source, 'later', 'mode.txt'), 'chmod before the comparison');
    const finished = await heldBeforeComparing(source, repo, catalog, () => {
      flipByte(join(source, 'later', 'read.txt')); // same size, same mtime
      unlinkSync(join(source, 'later', 'gone.txt'));
      writeFileSync(join(source, 'later', 'new.txt'), 'added before the comparison');
      chmodSync(join(source, 'later', 'mode.txt'), 0o600);
      chownSync(join(source, 'later', 'mode.txt'), 4321, 0);
      flipByte(join(source, 'notes.txt')); // not read by this run (the catalog knew it): not compared by content
    });
    expect(finished.status, finished.stderr).toBe(6);
    const summary = JSON.parse(finished.stdout) as VerifySummary;
    expect(summary.status).toBe('differs');
    const differences = summary.verify!.differences;
    expect(differences.map((d) => [d.side, d.path])).toEqual([
      ['source', 'later'],
      ['source', 'later/gone.txt'],
      ['source', 'later/mode.txt'],
      ['source', 'later/new.txt'],
      ['source', 'later/read.txt'],
    ]);
    // Adding and removing files changed the directory's mtime: a true difference too.
    expect(differences[0]!.detail).toMatch(/^differs from the snapshot: mtime \d+ ns, not \d+$/);
    expect(differences[1]!.detail).toBe('in the snapshot, not in the source');
    expect(differences[2]!.detail).toBe('differs from the snapshot: mode 600, not 644, uid 4321, not 0');
    expect(differences[3]!.detail).toBe('in the source, not in the snapshot');
    expect(differences[4]!.detail).toMatch(/^content differs from the snapshot: it hashes to [0-9a-f]{64}, the snapshot holds [0-9a-f]{64}$/);
    for (const d of differences) expect(finished.stderr).toContain(`lb: verify: ${d.path}: ${d.detail}\n`);
    // The three files this run read (gone.txt is no longer there to read); its three stored objects.
    expect(summary.verify!.checked).toMatchObject({ entries: ENTRIES + 4, filesReread: 2, objectsReread: 3 });
  });

  it('compares source hard links: a group verifies, a link broken before the comparison is reported', async () => {
    const work = tempDir();
    const source = join(work, 'src');
    mkdirSync(join(source, 'a'), { recursive: true });
    writeFileSync(join(source, 'a', 'photo.jpg'), 'one inode, two names');
    linkSync(join(source, 'a', 'photo.jpg'), join(source, 'same.jpg'));
    settle();
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');
    const clean = verifyRun(source, repo, catalog);
    expect(clean.status, clean.stderr).toBe(0);
    expect(clean.summary.verify).toMatchObject({ differenceCount: 0, checked: { entries: 4, filesReread: 2 } });

    const finished = await heldBeforeComparing(source, repo, catalog, () => {
      // A copy with the same content and metadata: only the link is gone.
      const copy = join(source, 'same.jpg.tmp');
      expect(spawnSync('cp', ['-p', join(source, 'same.jpg'), copy]).status).toBe(0);
      renameSync(copy, join(source, 'same.jpg'));
    });
    expect(finished.status, finished.stderr).toBe(6);
    const summary = JSON.parse(finished.stdout) as VerifySummary;
    expect(summary.verify!.differences).toEqual([
      expect.objectContaining({ side: 'source', path: '.' }), // the rename changed the root's mtime
      { side: 'source', path: 'same.jpg', detail: 'differs from the snapshot: a hard link to an earlier path in the snapshot, not in the source' },
    ]);
  });

  it('compares an unchanged run with latest, re-reading what this run read', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');
    const latest = backup(source, repo, catalog).snapshot!;

    const unchanged = verifyRun(source, repo, catalog);
    expect(unchanged.status, unchanged.stderr).toBe(0);
    expect(unchanged.summary).toMatchObject({ snapshot: null, created: false, status: 'ok' });
    expect(unchanged.summary.verify).toMatchObject({ snapshot: latest, differenceCount: 0 });
    // The catalog vouched for every file: nothing read, nothing to read again; no object stored.
    expect(unchanged.summary.verify!.checked).toEqual({ entries: ENTRIES, filesReread: 0, objectsReread: 0, bytesRead: 0 });

    // Without the catalog every file is read, so every file is read again, and compared with latest's records.
    rmSync(catalog);
    const finished = await heldBeforeComparing(source, repo, catalog, () => flipByte(join(source, 'album', 'two.jpg'), 10));
    expect(finished.status, finished.stderr).toBe(6);
    const summary = JSON.parse(finished.stdout) as VerifySummary;
    expect(summary).toMatchObject({ snapshot: null, created: false, status: 'differs' });
    expect(summary.verify!.snapshot).toBe(latest);
    expect(summary.verify!.differences).toEqual([expect.objectContaining({ side: 'source', path: 'album/two.jpg', detail: expect.stringMatching(/^content differs/) })]);
    expect(summary.verify!.checked).toMatchObject({ entries: ENTRIES, filesReread: FILES, objectsReread: 0 });
    expect(snapshots(repo)).toEqual([latest]);
  });

  it('does not report again what a partial run left out, and re-reads exactly the files it read after the gap', async () => {
    const work = tempDir();
    const source = join(work, 'src');
    mkdirSync(join(source, 'b'), { recursive: true });
    writeFileSync(join(source, 'd.txt'), 'd'.repeat(1000));
    settle();
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');
    backup(source, repo, catalog);
    // In the walk's order: a.txt (cannot be read), b/, b/c.txt (read), d.txt (the catalog knows it: not read).
    writeFileSync(join(source, 'a.txt'), 'unreadable');
    writeFileSync(join(source, 'b', 'c.txt'), 'c'.repeat(10));
    const args = ['backup', source, repo, '--json', '--verify', '--catalog', catalog];
    const finished = await new TracedRun(args, failAt(join(source, 'a.txt'), 'openat', 'EIO')).end();
    expect(finished.status, finished.stderr).toBe(3);
    const summary = JSON.parse(finished.stdout) as VerifySummary;
    expect(summary.status).toBe('partial');
    expect(summary.verify).toMatchObject({ differences: [], differenceCount: 0 });
    // c.txt read again from the source and its new object re-hashed: 10 + 10 bytes, not d.txt's 1000.
    expect(summary.verify!.checked).toEqual({ entries: 4, filesReread: 1, objectsReread: 1, bytesRead: 20 });
  });

  it('compares nothing when the time budget ran out and no snapshot was made', () => {
    const work = tempDir();
    const source = makeSource(work);
    const repo = join(work, 'repo');
    const { status, summary, stderr } = verifyRun(source, repo, join(work, 'catalog'), ['--minutes', '0.00001']);
    expect(status, stderr).toBe(4);
    expect(summary).toMatchObject({ status: 'incomplete', snapshot: null, verify: null });
    expect(stderr).toContain('  not verified: no snapshot was made\n');
  });
});

describe('source-match (unit)', () => {
  const file: EntryFacts = { type: 'file', size: 5, mtimeNs: 1_700_000_000_123_456_789n, mode: 0o644, uid: 1000, gid: 100, target: null };

  it('finds nothing between equal entries, and names each field that differs, the source first', () => {
    expect(sourceDifferences(file, { ...file })).toEqual([]);
    expect(sourceDifferences({ ...file, size: 6, mtimeNs: file.mtimeNs + 1n, mode: 0o600, uid: 0, gid: 0 }, file)).toEqual([
      'size 6, not 5',
      'mtime 1700000000123456790 ns, not 1700000000123456789',
      'mode 600, not 644',
      'uid 0, not 1000',
      'gid 0, not 100',
    ]);
  });

  it('says only the type when the types differ; ignores a symlink’s mode, compares its target', () => {
    expect(sourceDifferences({ ...file, type: 'dir', size: 0 }, file)).toEqual(['a directory in the source, a file in the snapshot']);
    const link: EntryFacts = { ...file, type: 'symlink', size: 0, mode: 0o777, target: Buffer.from('a') };
    expect(sourceDifferences({ ...link, mode: 0o755 }, link)).toEqual([]);
    expect(sourceDifferences({ ...link, target: Buffer.from('b') }, link)).toEqual(['another link target']);
  });
});

describe('read log (unit)', () => {
  it('maps the entries read onto the manifest records, passing over the entries that could not be read', () => {
    const log = new ReadLog();
    // Entries 0..9; 2 and 6 could not be read (no records), 3, 7 and 9 were read; 9 well past the first byte.
    for (const index of [3, 7, 9, 20_000]) log.read(index);
    log.unreadable(2, Buffer.from('two'));
    log.unreadable(6, Buffer.from('six'));
    const next = log.recordReads();
    const records = Array.from({ length: 8 }, () => next());
    // Records are entries 0, 1, 3, 4, 5, 7, 8, 9.
    expect(records).toEqual([false, false, true, false, false, true, false, true]);
    expect(log.excused.map(String)).toEqual(['two', 'six']);
  });
});
