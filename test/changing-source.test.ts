// Source files changing, vanishing or failing while lb reads them. Faults are
// injected at the syscall level with strace, filtered to one path (-P): either
// a real error (inject=…:error=EIO), or a SIGSTOP that holds lb at a known
// syscall while the test changes the file, then lets it go on with SIGCONT.
// The test waits for strace to report the stop, so nothing races on timing.
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lb, rsync, rsyncDifferences, settle, snapshots, tempDir } from './helpers.js';
import { TracedRun, failAt, holdAt, type Finished } from './traced-run.js';

const MiB = 1024 * 1024;
/** Read in several 1 MiB chunks, and above the 4 MiB the source side keeps in memory between hashing and sending. */
const LARGE = 6 * MiB + 12345;
/** Read in several chunks, but kept in memory: the bytes hashed are the bytes sent. */
const MEDIUM = 3 * MiB + 4321;
/** Also above the 8 MiB from which the repository side keeps a transfer resumable. */
const RESUMABLE_LARGE = 9 * MiB + 777;

function backupArgs(source: string, repo: string, catalog: string): string[] {
  return ['backup', source, repo, '--json', '--catalog', catalog];
}

interface JsonSummary {
  snapshot: string | null;
  created: boolean;
  status: string;
  warnings: string[];
  bytes: { read: number; transferred: number };
}

function summaryOf(run: Finished): JsonSummary {
  return JSON.parse(run.stdout) as JsonSummary;
}

function plainBackup(source: string, repo: string, catalog: string): { status: number; summary: JsonSummary; stderr: string } {
  const r = lb(backupArgs(source, repo, catalog));
  return { status: r.status, summary: JSON.parse(r.stdout) as JsonSummary, stderr: r.stderr };
}

// ---------- what a snapshot holds ----------

/** A version of a file: its content's SHA-256 and the metadata that goes with it. */
interface Version {
  sha: string;
  size: number;
  mtimeNs: bigint;
  mode: number;
}

function versionOf(path: string): Version {
  const stat = lstatSync(path, { bigint: true });
  return {
    sha: createHash('sha256').update(readFileSync(path)).digest('hex'),
    size: Number(stat.size),
    mtimeNs: stat.mtimeNs,
    mode: Number(stat.mode & 0o7777n),
  };
}

/** The manifest record for a plain ASCII name (format 2: src/repo/manifest.ts). */
function manifestRecord(repo: string, snapshot: string, name: string): Omit<Version, 'sha'> & { hash: string } | undefined {
  for (const line of readFileSync(join(repo, snapshot, 'manifest'), 'utf8').split('\n')) {
    const f = line.split('\t');
    if (f.length === 11 && f[1] === 'f' && f[2] === name) {
      return { hash: f[3]!, size: Number(f[4]), mtimeNs: BigInt(f[5]!), mode: parseInt(f[6]!, 8) };
    }
  }
  return undefined;
}

function objectInodes(repo: string): Set<bigint> {
  const inodes = new Set<bigint>();
  const objects = join(repo, '.lb', 'objects');
  for (const fanout of readdirSync(objects)) {
    for (const name of readdirSync(join(objects, fanout))) inodes.add(lstatSync(join(objects, fanout, name), { bigint: true }).ino);
  }
  return inodes;
}

/**
 * The snapshot holds `name` as exactly one of `versions`: the stored object's
 * SHA-256 is the manifest's hash, and the tree entry's size, mtime and mode are
 * that version's own. Returns which version.
 */
function expectWholeVersion(repo: string, snapshot: string, name: string, versions: Record<string, Version>): string {
  const record = manifestRecord(repo, snapshot, name);
  expect(record, `${name} in the manifest`).toBeDefined();
  const treePath = join(repo, snapshot, 'tree', name);
  expect(objectInodes(repo).has(lstatSync(treePath, { bigint: true }).ino), 'the tree entry is a link to an object').toBe(true);
  const stored = versionOf(treePath);
  expect(stored.sha, 'the object matches its recorded hash').toBe(record!.hash);
  expect(stored.size).toBe(record!.size);
  expect(stored.mode).toBe(record!.mode);
  // Node's utimes keeps whole microseconds (src/repo/objects.ts): the tree's mtime is within that of the manifest's.
  expect(Math.abs(Number(stored.mtimeNs - record!.mtimeNs))).toBeLessThan(2000);
  const which = Object.keys(versions).find((key) => versions[key]!.sha === stored.sha);
  expect(which, `${name} holds one whole version, not a mix`).toBeDefined();
  const version = versions[which!]!;
  expect({ size: record!.size, mtimeNs: record!.mtimeNs, mode: record!.mode }, 'the recorded metadata is that version’s own').toEqual({
    size: version.size,
    mtimeNs: version.mtimeNs,
    mode: version.mode,
  });
  return which!;
}

/** Interrupted transfers kept for resuming; the directory is removed after a complete run. */
function partialsLeft(repo: string): string[] {
  const partial = join(repo, '.lb', 'partial');
  return existsSync(partial) ? readdirSync(partial) : [];
}

/**
 * rsync's differences, optionally leaving one name out (a file the snapshot rightly
 * lacks or holds in an older version) or directory times (see expectDirectoryAsScanned).
 */
function differences(source: string, tree: string, options: { except?: string; omitDirTimes?: boolean } = {}): string[] {
  const flags = options.omitDirTimes ? '-rlptgoDHnO' : '-rlptgoDHn';
  const except = options.except ? [`--exclude=/${options.except}`] : [];
  const r = rsync([flags, '--checksum', '--itemize-changes', '--delete', ...except, source + '/', tree + '/']);
  return r.stdout.split('\n').filter((line) => line.trim() !== '');
}

/**
 * A name removed or renamed in the source after the scan changes the directory's
 * mtime then; the snapshot keeps the mtime scanned (within utimes' microsecond).
 */
function expectDirectoryAsScanned(tree: string, scannedMtimeNs: bigint): void {
  expect(Math.abs(Number(lstatSync(tree, { bigint: true }).mtimeNs - scannedMtimeNs))).toBeLessThan(2000);
}

/** Bytes of the ordinary files makeSource() puts around the one under test. */
const OTHERS = 30_000 + 70_000 + 'the last file\n'.length;

/** A source with a few ordinary files around the one under test. */
function makeSource(work: string): string {
  const source = join(work, 'src');
  mkdirSync(join(source, 'sub'), { recursive: true });
  writeFileSync(join(source, 'a-before'), randomBytes(30_000));
  writeFileSync(join(source, 'sub', 'z-after'), randomBytes(70_000));
  writeFileSync(join(source, 'zz-last'), 'the last file\n');
  return source;
}

function expectReported(run: Finished, summary: JsonSummary, name: string, reason: RegExp): void {
  expect(run.status, run.stderr).toBe(3);
  expect(summary.status).toBe('partial');
  expect(summary.warnings).toHaveLength(1);
  expect(summary.warnings[0]).toContain(JSON.stringify(name));
  expect(summary.warnings[0]).toMatch(reason);
  expect(summary.warnings[0]).toMatch(/not in this snapshot/);
  expect(run.stderr).toContain(JSON.stringify(name));
}

/**
 * Runs a backup held at `hold`, writes `content` over `file` there, and lets
 * it finish; the run must succeed. Returns its summary and the version written.
 */
async function rewriteWhileHeld(args: string[], hold: string[], file: string, content: Buffer | string): Promise<{ summary: JsonSummary; rewritten: Version }> {
  const run = new TracedRun(args, hold);
  expect(await run.nextHold()).toBe(true);
  writeFileSync(file, content);
  const rewritten = versionOf(file);
  run.resume();
  const finished = await run.end();
  expect(finished.status, finished.stderr).toBe(0);
  return { summary: summaryOf(finished), rewritten };
}

/** The snapshot holds `name` whole as `expected` of `versions`, and every other file as in the source. */
function expectStoredAs(repo: string, snapshot: string, name: string, versions: Record<string, Version>, expected: string, source: string): void {
  expect(expectWholeVersion(repo, snapshot, name, versions)).toBe(expected);
  if (expected === 'rewritten') expect(rsyncDifferences(source, join(repo, snapshot, 'tree'))).toEqual([]);
  else expect(differences(source, join(repo, snapshot, 'tree'), { except: name })).toEqual([]);
}

/**
 * A source with one large file whose hash a first backup, into another
 * repository, put in the catalog: a run into the returned `repo` reads the
 * file only to send it, so a fault injected on its reads hits the transfer.
 */
function sourceWithCachedLargeFile(work: string, name: string): { source: string; file: string; catalog: string; repo: string } {
  const source = makeSource(work);
  const file = join(source, name);
  writeFileSync(file, randomBytes(RESUMABLE_LARGE));
  const catalog = join(work, 'catalog');
  settle(); // past the racily-clean window, so the first run caches every hash
  const first = plainBackup(source, join(work, 'repo-a'), catalog);
  expect(first.status, first.stderr).toBe(0);
  return { source, file, catalog, repo: join(work, 'repo-b') };
}

/** The next plain run succeeds, status "ok", and its snapshot matches the source. */
function expectNextRunFaithful(source: string, repo: string, catalog: string): JsonSummary {
  const next = plainBackup(source, repo, catalog);
  expect(next.status, next.stderr).toBe(0);
  expect(next.summary.status).toBe('ok');
  expect(rsyncDifferences(source, join(repo, next.summary.snapshot!, 'tree'))).toEqual([]);
  return next.summary;
}

// ---------- the tests ----------

describe('a file rewritten while lb reads it is stored whole or reported, never torn', () => {
  it('a large file rewritten between two chunks of its hashing is stored as the new version', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const file = join(source, 'large');
    writeFileSync(file, randomBytes(LARGE));
    const old = versionOf(file);
    const repo = join(work, 'repo');

    // Held after the first 1 MiB read: the rest of that read comes from the new content.
    const { summary, rewritten } = await rewriteWhileHeld(backupArgs(source, repo, join(work, 'catalog')), holdAt(file, 'read', '1'), file, randomBytes(LARGE - 5000));
    expectStoredAs(repo, summary.snapshot!, 'large', { old, rewritten }, 'rewritten', source);
  });

  it('a medium file, kept in memory from hashing to sending, rewritten between two chunks is stored as the new version', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const file = join(source, 'medium');
    writeFileSync(file, randomBytes(MEDIUM));
    const old = versionOf(file);
    const repo = join(work, 'repo');

    // Same size: only the stat's times tell.
    const { summary, rewritten } = await rewriteWhileHeld(backupArgs(source, repo, join(work, 'catalog')), holdAt(file, 'read', '1'), file, randomBytes(MEDIUM));
    expectStoredAs(repo, summary.snapshot!, 'medium', { old, rewritten }, 'rewritten', source);
  });

  it('a small file rewritten after its one read, before the check that follows, is stored as the new version', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const file = join(source, 'small');
    writeFileSync(file, 'first version of a small file\n');
    const old = versionOf(file);
    const repo = join(work, 'repo');

    const { summary, rewritten } = await rewriteWhileHeld(backupArgs(source, repo, join(work, 'catalog')), holdAt(file, 'read', '1'), file, 'changed version, a small file\n');
    expect(rewritten.size).toBe(old.size); // same size: only the stat's times tell
    expectStoredAs(repo, summary.snapshot!, 'small', { old, rewritten }, 'rewritten', source);
  });

  it('a small file rewritten after it was hashed, before it was sent, is stored as the version read, with that version’s metadata', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const file = join(source, 'small');
    writeFileSync(file, 'the version lb reads\n');
    const old = versionOf(file);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');

    // statx on the path: the walk's lstat, then the open file's stat before and after reading; hold after the last.
    const { summary, rewritten } = await rewriteWhileHeld(backupArgs(source, repo, catalog), holdAt(file, 'statx', '3'), file, 'the version written after lb read the file\n');
    expectStoredAs(repo, summary.snapshot!, 'small', { old, rewritten }, 'old', source);

    // The next run finds the new version.
    const next = plainBackup(source, repo, catalog);
    expect(next.status, next.stderr).toBe(0);
    expectStoredAs(repo, next.summary.snapshot!, 'small', { old, rewritten }, 'rewritten', source);
  });

  it('a large file rewritten while it is being sent (hash from the catalog, content new to the repository) is stored as the new version', async () => {
    // A fresh repository with the same catalog: no file is hashed, each is read once, to be sent.
    const { source, file, catalog, repo } = sourceWithCachedLargeFile(tempDir(), 'large');
    const old = versionOf(file);
    // Same size: only the stat's times tell.
    const { summary, rewritten } = await rewriteWhileHeld(backupArgs(source, repo, catalog), holdAt(file, 'read', '1'), file, randomBytes(RESUMABLE_LARGE));
    // The torn send and its retry, and nothing hashed: the fault hit the transfer.
    expect(summary.bytes.read).toBe(2 * RESUMABLE_LARGE + OTHERS);
    expectStoredAs(repo, summary.snapshot!, 'large', { old, rewritten }, 'rewritten', source);
    expect(partialsLeft(repo)).toEqual([]);
  });

  it('a file that grows while being hashed is read again, not byte by byte past its old end', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const file = join(source, 'growing');
    writeFileSync(file, randomBytes(LARGE));
    const old = versionOf(file);
    const repo = join(work, 'repo');

    const run = new TracedRun(backupArgs(source, repo, join(work, 'catalog')), holdAt(file, 'read', '1'));
    expect(await run.nextHold()).toBe(true);
    appendFileSync(file, randomBytes(64 * 1024));
    const grown = versionOf(file);
    run.resume();
    const finished = await run.end();

    expect(finished.status, finished.stderr).toBe(0);
    const summary = summaryOf(finished);
    expect(expectWholeVersion(repo, summary.snapshot!, 'growing', { old, grown })).toBe('grown');
    expect(rsyncDifferences(source, join(repo, summary.snapshot!, 'tree'))).toEqual([]);
    // Hashing (twice at most) and sending, each in 1 MiB reads plus one to see the end.
    const chunks = Math.ceil(grown.size / MiB) + 1;
    expect(run.calls('read').length).toBeLessThanOrEqual(3 * chunks);
  });
});

describe('a file replaced (written aside, renamed over it) between the scan and its read', () => {
  /** Hold lb right after the walk's lstat of `file`, replace it as editors save, then let lb go on. */
  async function replaceAfterScan(
    source: string,
    repo: string,
    file: string,
    content: string,
    mode: number,
  ): Promise<{ run: Finished; saved: Version; scannedDirMtimeNs: bigint }> {
    const run = new TracedRun(backupArgs(source, repo, join(source, '..', 'catalog')), holdAt(file, 'statx', '1'));
    expect(await run.nextHold()).toBe(true);
    const scannedDirMtimeNs = lstatSync(source, { bigint: true }).mtimeNs;
    writeFileSync(file + '.saving', content, { mode });
    chmodSync(file + '.saving', mode); // whatever the umask
    renameSync(file + '.saving', file);
    const saved = versionOf(file);
    run.resume();
    return { run: await run.end(), saved, scannedDirMtimeNs };
  }

  it('with the same mode: stored as the new version', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const file = join(source, 'document');
    writeFileSync(file, 'draft\n', { mode: 0o644 });
    const old = versionOf(file);
    const repo = join(work, 'repo');

    const { run, saved, scannedDirMtimeNs } = await replaceAfterScan(source, repo, file, 'final text, saved while lb ran\n', 0o644);
    expect(run.status, run.stderr).toBe(0);
    const snapshot = summaryOf(run).snapshot!;
    expect(expectWholeVersion(repo, snapshot, 'document', { old, saved })).toBe('saved');
    expect(differences(source, join(repo, snapshot, 'tree'), { omitDirTimes: true })).toEqual([]);
    expectDirectoryAsScanned(join(repo, snapshot, 'tree'), scannedDirMtimeNs);
  });

  it('made private (0600): never stored with the old, wider mode; either whole with its own mode, or reported', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const file = join(source, 'secret');
    writeFileSync(file, 'nothing yet\n', { mode: 0o644 });
    const old = versionOf(file);
    const repo = join(work, 'repo');

    const { run, saved, scannedDirMtimeNs } = await replaceAfterScan(source, repo, file, 'the password is swordfish\n', 0o600);
    expect(saved.mode).toBe(0o600);
    const summary = summaryOf(run);
    const tree = join(repo, summary.snapshot!, 'tree');
    // Either is right; lb reports it today, as the source side sends no mode with what it read.
    if (existsSync(join(tree, 'secret'))) {
      expect(run.status, run.stderr).toBe(0);
      expect(expectWholeVersion(repo, summary.snapshot!, 'secret', { old, saved })).toBe('saved');
    } else {
      expectReported(run, summary, 'secret', /mode|owner/);
    }
    expect(differences(source, tree, { except: 'secret', omitDirTimes: true })).toEqual([]);
    expectDirectoryAsScanned(tree, scannedDirMtimeNs);

    const next = plainBackup(source, repo, join(work, 'catalog'));
    expect(next.status, next.stderr).toBe(0);
    expect(expectWholeVersion(repo, next.summary.snapshot!, 'secret', { old, saved })).toBe('saved');
    expect(rsyncDifferences(source, join(repo, next.summary.snapshot!, 'tree'))).toEqual([]);
  });
});

describe('a file that keeps changing through every attempt is reported and left out', () => {
  /** Rewrite the file at every read lb makes of it, until lb ends; returns how many rewrites. */
  async function rewriteAtEveryRead(run: TracedRun, file: string, size: number): Promise<number> {
    let rewrites = 0;
    while (await run.nextHold()) {
      writeFileSync(file, randomBytes(size));
      rewrites++;
      run.resume();
    }
    return rewrites;
  }

  it('while being hashed: a warning naming it, exit status 3, the rest faithful; the next run takes it', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const file = join(source, 'restless');
    writeFileSync(file, randomBytes(LARGE));
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');

    const run = new TracedRun(backupArgs(source, repo, catalog), holdAt(file, 'read'));
    expect(await rewriteAtEveryRead(run, file, LARGE)).toBeGreaterThan(2);
    const finished = await run.end();

    const summary = summaryOf(finished);
    expectReported(finished, summary, 'restless', /kept changing/);
    const tree = join(repo, summary.snapshot!, 'tree');
    expect(existsSync(join(tree, 'restless'))).toBe(false);
    expect(manifestRecord(repo, summary.snapshot!, 'restless')).toBeUndefined();
    expect(differences(source, tree, { except: 'restless' })).toEqual([]);

    expectNextRunFaithful(source, repo, catalog);
  });

  it('while being sent: the partial transfer is dropped, the rest faithful; the next run takes it', async () => {
    const { source, file, catalog, repo } = sourceWithCachedLargeFile(tempDir(), 'restless');
    const run = new TracedRun(backupArgs(source, repo, catalog), holdAt(file, 'read'));
    expect(await rewriteAtEveryRead(run, file, RESUMABLE_LARGE)).toBeGreaterThan(2);
    const finished = await run.end();

    const summary = summaryOf(finished);
    expectReported(finished, summary, 'restless', /kept changing/);
    // Three whole sends, nothing hashed: the changes hit the transfer.
    expect(summary.bytes.read).toBe(3 * RESUMABLE_LARGE + OTHERS);
    const tree = join(repo, summary.snapshot!, 'tree');
    expect(existsSync(join(tree, 'restless'))).toBe(false);
    expect(differences(source, tree, { except: 'restless' })).toEqual([]);
    expect(partialsLeft(repo)).toEqual([]);

    expectNextRunFaithful(source, repo, catalog);
  });
});

describe('a file that vanishes or cannot be read', () => {
  it('deleted between the scan and its read: a warning, exit 3, the snapshot matches the source; the previous snapshot keeps it', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const file = join(source, 'doomed');
    writeFileSync(file, 'version 1\n');
    const v1 = versionOf(file);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');
    const first = plainBackup(source, repo, catalog);
    expect(first.status, first.stderr).toBe(0);
    writeFileSync(file, 'version 2, which must be read\n');

    // Held right after the walk's lstat of the file: it is in the list, then gone.
    const run = new TracedRun(backupArgs(source, repo, catalog), holdAt(file, 'statx', '1'));
    expect(await run.nextHold()).toBe(true);
    const scannedDirMtimeNs = lstatSync(source, { bigint: true }).mtimeNs;
    unlinkSync(file);
    run.resume();
    const finished = await run.end();

    const summary = summaryOf(finished);
    expectReported(finished, summary, 'doomed', /vanished before it could be read/);
    expect(summary.snapshot).not.toBe(first.summary.snapshot);
    expect(manifestRecord(repo, summary.snapshot!, 'doomed')).toBeUndefined();
    expect(differences(source, join(repo, summary.snapshot!, 'tree'), { omitDirTimes: true })).toEqual([]);
    expectDirectoryAsScanned(join(repo, summary.snapshot!, 'tree'), scannedDirMtimeNs);
    expect(readFileSync(join(repo, summary.snapshot!, 'log'), 'utf8')).toContain('"doomed"');
    // Invariant 1: the earlier snapshot is untouched.
    expect(expectWholeVersion(repo, first.summary.snapshot!, 'doomed', { v1 })).toBe('v1');
  });

  it('ENOENT at open: a warning, exit 3, --json "partial", the rest faithful; the next run takes it and exits 0', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const file = join(source, 'elusive');
    writeFileSync(file, randomBytes(LARGE));
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');

    const finished = await new TracedRun(backupArgs(source, repo, catalog), failAt(file, 'openat', 'ENOENT')).end();
    const summary = summaryOf(finished);
    expectReported(finished, summary, 'elusive', /vanished before it could be read/);
    const tree = join(repo, summary.snapshot!, 'tree');
    expect(existsSync(join(tree, 'elusive'))).toBe(false);
    expect(differences(source, tree, { except: 'elusive' })).toEqual([]);

    const next = expectNextRunFaithful(source, repo, catalog);
    expect(expectWholeVersion(repo, next.snapshot!, 'elusive', { now: versionOf(file) })).toBe('now');
  });

  it('EIO at open of a file the previous snapshot has: missing from the new snapshot (not its old version), named in its log; the next run takes it', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const file = join(source, 'damaged');
    writeFileSync(file, 'version 1\n');
    const v1 = versionOf(file);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');
    const first = plainBackup(source, repo, catalog);
    expect(first.status, first.stderr).toBe(0);
    writeFileSync(file, 'version 2, which cannot be read\n');
    const v2 = versionOf(file);

    const finished = await new TracedRun(backupArgs(source, repo, catalog), failAt(file, 'openat', 'EIO')).end();
    const summary = summaryOf(finished);
    expectReported(finished, summary, 'damaged', /i\/o error/i);
    const tree = join(repo, summary.snapshot!, 'tree');
    expect(existsSync(join(tree, 'damaged'))).toBe(false);
    expect(manifestRecord(repo, summary.snapshot!, 'damaged')).toBeUndefined();
    expect(differences(source, tree, { except: 'damaged' })).toEqual([]);
    expect(readFileSync(join(repo, summary.snapshot!, 'log'), 'utf8')).toMatch(/warning: "damaged": .*not in this snapshot/);
    expect(expectWholeVersion(repo, first.summary.snapshot!, 'damaged', { v1 })).toBe('v1');

    const next = expectNextRunFaithful(source, repo, catalog);
    expect(expectWholeVersion(repo, next.snapshot!, 'damaged', { v1, v2 })).toBe('v2');
    expect(snapshots(repo)).toHaveLength(3);
  });

  it('a file that stays unreadable in an unchanged source makes no new snapshot on every run', async () => {
    const work = tempDir();
    const source = makeSource(work);
    const file = join(source, 'unreadable');
    writeFileSync(file, 'never readable\n');
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');
    const first = summaryOf(await new TracedRun(backupArgs(source, repo, catalog), failAt(file, 'openat', 'EIO')).end());
    expect(first.created).toBe(true);
    const again = await new TracedRun(backupArgs(source, repo, catalog), failAt(file, 'openat', 'EIO')).end();
    expect(again.status).toBe(3);
    expect(summaryOf(again).created).toBe(false);
    expect(snapshots(repo)).toEqual([first.snapshot]);
  });

  it('EIO in the middle of a transfer: the partial transfer is dropped, a warning, exit 3, the rest faithful', async () => {
    const { source, file, catalog, repo } = sourceWithCachedLargeFile(tempDir(), 'bad-sector');
    // The third read: two chunks are already on their way to the repository.
    const finished = await new TracedRun(backupArgs(source, repo, catalog), failAt(file, 'read', 'EIO', '3')).end();
    const summary = summaryOf(finished);
    expectReported(finished, summary, 'bad-sector', /i\/o error/i);
    // Two chunks read (and sent), nothing hashed: the error hit the transfer.
    expect(summary.bytes.read).toBe(2 * MiB + OTHERS);
    const tree = join(repo, summary.snapshot!, 'tree');
    expect(existsSync(join(tree, 'bad-sector'))).toBe(false);
    expect(differences(source, tree, { except: 'bad-sector' })).toEqual([]);
    expect(partialsLeft(repo)).toEqual([]);

    expectNextRunFaithful(source, repo, catalog);
  });
});
