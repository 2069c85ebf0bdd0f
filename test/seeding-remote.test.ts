// Link-Backup's seeding through a transfer disk (its Example 5) and selections on a
// pull, end to end over a real sshd on 127.0.0.1, with lb's agents running as two
// unprivileged users: "remote" holds the backup, "laptop" the transfer repository.
// Oracles share no code with lb: Python hashes the source and reads the object
// names for --showfiles; rsync builds the expected trees (--files-from, --exclude);
// find -printf lists a repository to show that --showfiles wrote nothing.
import { spawn, spawnSync, type StdioOptions } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttackPlan, RepositoryAttack } from './hostile-remote-agent.js';
import { LB, ROOT, killIfAlive, objectCount, rsync, rsyncDifferences, settle, snapshots } from './helpers.js';
import type { Sshd } from './sshd.js';
import { missingByOracle } from './seeding-oracles.js';
import { createTestUser, removeTestUser, sshdForTestUsers } from './test-user.js';
import { MAX_FILE_LIST_BYTES } from '../src/protocol/selection.js';

// Names of this run's own: two test runs on one machine must not share, nor remove, each other's users.
const REMOTE = `lbsdr${process.pid % 100_000}`;
const REMOTE_HOME = `/tmp/${REMOTE}-home`;
const LAPTOP = `lbsdl${process.pid % 100_000}`;
const LAPTOP_HOME = `/tmp/${LAPTOP}-home`;
const KiB = 1024;

let sshd: Sshd;
let remoteIds = { uid: 0, gid: 0 };
let work: string;
let hostileBundle: string;

beforeAll(async () => {
  remoteIds = createTestUser(REMOTE, REMOTE_HOME);
  createTestUser(LAPTOP, LAPTOP_HOME);
  sshd = await sshdForTestUsers();
  work = mkdtempSync(join(tmpdir(), 'lb-seeding-remote-'));
  chmodSync(work, 0o755); // the users' agents read sources here
  hostileBundle = join(work, 'hostile-agent.cjs');
  await build({ entryPoints: [join(ROOT, 'test', 'hostile-remote-agent.ts')], outfile: hostileBundle, bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'warning' });
}, 120_000);

afterAll(() => {
  sshd?.stop();
  if (work) spawnSync('rm', ['-rf', '--', work]);
  removeTestUser(REMOTE, REMOTE_HOME);
  removeTestUser(LAPTOP, LAPTOP_HOME);
});

interface Run {
  status: number;
  stdout: Buffer;
  stderr: string;
}

const at = (user: string, path: string) => `${user}@127.0.0.1:${path}`;

function lbRun(args: string[], options: { input?: Buffer; port?: number } = {}): Run {
  const r = spawnSync(process.execPath, [LB, ...args, '--ssh-p', String(options.port ?? sshd.port)], {
    env: { ...process.env, ...sshd.env },
    input: options.input,
    maxBuffer: 64 * 1024 * 1024,
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}

function json(run: Run) {
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout.toString());
}

/** `lb FIRST | lb SECOND` through a real pipe, both running at once. */
async function pipeline(first: string[], second: string[]): Promise<[Run, Run]> {
  const start = (args: string[], stdio: StdioOptions) =>
    spawn(process.execPath, [LB, ...args, '--ssh-p', String(sshd.port)], { env: { ...process.env, ...sshd.env }, stdio });
  const a = start(first, ['ignore', 'pipe', 'pipe']);
  const b = start(second, [a.stdout!, 'pipe', 'pipe']);
  a.stdout!.destroy(); // the pipe's read end is the second lb's alone
  const collect = (child: ReturnType<typeof spawn>, readsStdout: boolean) =>
    new Promise<Run>((resolve) => {
      const out: Buffer[] = [];
      let err = '';
      if (readsStdout) child.stdout!.on('data', (d: Buffer) => out.push(d));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.on('close', (code) => resolve({ status: code ?? -1, stdout: Buffer.concat(out), stderr: err }));
    });
  return Promise.all([collect(a, false), collect(b, true)]);
}

/** Writes CONTENT at PATH (bytes: names need not be UTF-8), making its parents. */
function write<T extends Buffer>(path: string | Buffer, content: T): T {
  const bytes = Buffer.isBuffer(path) ? path : Buffer.from(path);
  mkdirSync(bytes.subarray(0, bytes.lastIndexOf(0x2f)), { recursive: true });
  writeFileSync(path, content);
  return content;
}

const pathIn = (dir: string, relative: string) => Buffer.from(join(dir, relative), 'latin1');

const joinList = (paths: Buffer[], separator: number) => Buffer.concat(paths.flatMap((p) => [p, Buffer.from([separator])]));

/** What rsync copies of SOURCE given the NUL-separated LIST (listed directories whole), with SOURCE's own root metadata. */
function rsyncSubset(source: string, list: Buffer, into: string): string {
  const listFile = `${into}.list`;
  writeFileSync(listFile, list);
  rsync(['-a', '-r', '--from0', `--files-from=${listFile}`, source + '/', into + '/']);
  spawnSync('touch', ['-r', source, into]);
  return into;
}

/** The rsync oracle without owners: a tree written by another user holds that user's files. */
function contentDifferences(expected: string, tree: string): string[] {
  const r = rsync(['-rlptDn', '--checksum', '--itemize-changes', '--delete', expected + '/', tree + '/']);
  return r.stdout.split('\n').filter((line) => line.trim() !== '');
}

/** Every path under ROOT with its type, mode, size, mtime, ctime, inode and link count, as root sees them (find -printf). */
function listing(root: string): string[] {
  const r = spawnSync('find', [root, '-printf', '%P %y %m %s %T@ %C@ %i %n\\n'], { encoding: 'latin1' });
  return r.stdout.split('\n').sort();
}

/** A user's snapshot tree by its real path: rsync refuses to follow a symlink another user owns (`latest`). */
const latestTree = (repository: string) => join(repository, readlinkSync(join(repository, 'latest')), 'tree');

function chownTree(root: string, ids: { uid: number; gid: number }): void {
  expect(spawnSync('chown', ['-R', `${ids.uid}:${ids.gid}`, root]).status).toBe(0);
}

let cases = 0;
function caseDir(): string {
  const dir = join(work, `case-${++cases}`);
  mkdirSync(dir);
  return dir;
}

/** A picture folder with an existing backup in the remote user's repository `backup-N` (a path relative to that home). */
function picturesBackedUp(dir: string, repositoryName: string) {
  const pictures = join(dir, 'pictures');
  for (let i = 0; i < 6; i++) write(join(pictures, '2019', 'holiday', `IMG_${i}.jpg`), randomBytes(64 * KiB + i));
  write(join(pictures, '2019', 'to-move.jpg'), randomBytes(96 * KiB));
  chownTree(pictures, remoteIds); // the remote user's agent cannot chown: its snapshots hold its own files
  const first = lbRun([pictures, at(REMOTE, repositoryName), '-q']);
  expect(first.stderr).toBe('');
  expect(first.status).toBe(0);
  return { pictures, backup: join(REMOTE_HOME, repositoryName) };
}

/** New photos: new subdirectories, a duplicate, a name with a space, one not UTF-8, one old photo moved. Returns the new contents. */
function addNewPhotos(pictures: string, withNewline: boolean): { paths: string[]; contents: Buffer[] } {
  const paths = ['2024/spring/IMG_100.jpg', '2024/spring/deeper/IMG_101.jpg', '2024/IMG_102.jpg', '2024/spring/copy of IMG_100.jpg', '2024/caf\xe9.jpg'];
  const contents = [randomBytes(1024 * KiB), randomBytes(768 * KiB), randomBytes(512 * KiB), randomBytes(256 * KiB)];
  write(pathIn(pictures, paths[0]!), contents[0]!);
  write(pathIn(pictures, paths[1]!), contents[1]!);
  write(pathIn(pictures, paths[2]!), contents[2]!);
  write(pathIn(pictures, paths[3]!), contents[0]!);
  write(pathIn(pictures, paths[4]!), contents[3]!);
  if (withNewline) {
    paths.push('2024/two\nlines.jpg');
    contents.push(write(pathIn(pictures, paths[5]!), randomBytes(128 * KiB)));
  }
  mkdirSync(join(pictures, '2024', 'moved'));
  renameSync(join(pictures, '2019', 'to-move.jpg'), join(pictures, '2024', 'moved', 'to-move.jpg'));
  chownTree(pictures, remoteIds);
  settle(); // past the racily-clean window: the catalog keeps the hashes --showfiles computes
  return { paths, contents };
}

const bytesOf = (contents: Buffer[]) => contents.reduce((sum, c) => sum + c.length, 0);
const sortedBytes = (paths: Buffer[]) => [...paths].sort(Buffer.compare);

/**
 * The final run's wire allowance beyond 5% of the new content: what any run sends with no content at all.
 * Measured: 2.75 kB for an empty source (SSH key exchange, authentication, starting the cached agent),
 * 3.5 kB for the unchanged pictures (their 20 entries with hashes, deflated, under 1 kB more); the
 * unchanged run is held to the allowance below. 16 KiB leaves room for key exchange variations, and is
 * far below the smallest photo that could be sent again (64 KiB) or the agent bundle (about 280 kB).
 */
const WIRE_ALLOWANCE = 16 * KiB;

describe("Link-Backup's Example 5 over SSH: showfiles, a laptop, catalogonly, then a normal run", () => {
  for (const variant of [
    { nul: false, catalogFrom: 'tree' as const },
    { nul: true, catalogFrom: 'repository' as const },
  ]) {
    it(`${variant.nul ? 'NUL-separated (-0, a name with a newline)' : 'newline-separated'}; catalogonly from the transfer ${variant.catalogFrom}`, async () => {
      const dir = caseDir();
      const name = `backup-${cases}`;
      const { pictures, backup } = picturesBackedUp(dir, name);
      const before = { snapshots: snapshots(backup), latest: readlinkSync(join(backup, 'latest')) };
      const added = addNewPhotos(pictures, variant.nul);
      const newBytes = bytesOf(added.contents);
      const separator = variant.nul ? 0 : 0x0a;
      const zero = variant.nul ? ['-0'] : [];

      // 1. What the remote lacks, by the oracle and by hand: every new path, the duplicate too; not the moved photo.
      const expected = missingByOracle(pictures, backup);
      expect(sortedBytes(expected)).toEqual(sortedBytes(added.paths.map((p) => Buffer.from(p, 'latin1'))));
      const shown = lbRun(['--showfiles', ...zero, pictures, at(REMOTE, name)]);
      expect(shown.status, shown.stderr).toBe(0);
      expect(shown.stdout).toEqual(joinList(expected, separator));
      const allBytes = newBytes + added.contents[0]!.length; // the duplicate counts as a file of its own
      expect(shown.stderr).toBe(
        `lb: ${expected.length} file(s), ${(allBytes / 1e6).toFixed(2)} MB, have content that ${at(REMOTE, name)} does not hold; 7 file(s) it holds already (${shown.stderr.match(/\(([0-9.]+ s), nothing/)![1]}, nothing written)\n`,
      );

      // 2. The pipeline carries exactly those files to the laptop.
      const [listed, carried] = await pipeline(['--showfiles', ...zero, pictures, at(REMOTE, name)], ['--filelist', '-', ...zero, pictures, at(LAPTOP, `transfer-${cases}`), '--json']);
      expect(listed.status, listed.stderr).toBe(0);
      const toLaptop = json(carried);
      expect(toLaptop.files.total).toBe(expected.length);
      const transfer = join(LAPTOP_HOME, `transfer-${cases}`);
      expect(contentDifferences(rsyncSubset(pictures, joinList(expected, 0), join(dir, 'expected-laptop')), latestTree(transfer))).toEqual([]);

      // 3. At the remote site: the laptop's content goes into the store, and no snapshot is made.
      const catalogSource = variant.catalogFrom === 'tree' ? latestTree(transfer) : transfer;
      const stored = json(lbRun(['--catalogonly', catalogSource, at(REMOTE, name), '--json']));
      expect(stored.snapshot).toBeNull();
      expect(stored.bytes.transferred).toBe(newBytes); // each new content once
      expect({ snapshots: snapshots(backup), latest: readlinkSync(join(backup, 'latest')) }).toEqual(before);
      expect(missingByOracle(pictures, backup)).toEqual([]);

      // 4. The normal run sends no content that the laptop brought, and its snapshot is the pictures.
      const final = json(lbRun([pictures, at(REMOTE, name), '--json']));
      expect(final.created).toBe(true);
      expect([final.files.new, final.bytes.transferred]).toEqual([0, 0]);
      expect(rsyncDifferences(pictures, latestTree(backup))).toEqual([]);
      const unchanged = json(lbRun([pictures, at(REMOTE, name), '--json']));
      expect(unchanged.created).toBe(false);
      expect(unchanged.wire.sent).toBeLessThan(WIRE_ALLOWANCE); // the allowance's own measure
      expect(final.wire.sent).toBeLessThan(newBytes * 0.05 + WIRE_ALLOWANCE);
    });
  }
});

/** /proc's start time of a process (field 22), as lb's lock records its holder. */
function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

describe('lb --showfiles to a remote repository writes nothing there', () => {
  it('leaves every path under the repository as it was and takes no lock, even while another run holds it', () => {
    const dir = caseDir();
    const name = `backup-${cases}`;
    const { pictures, backup } = picturesBackedUp(dir, name);
    addNewPhotos(pictures, false);
    const expected = joinList(missingByOracle(pictures, backup), 0x0a);
    const before = listing(backup);

    const shown = lbRun(['--showfiles', '-q', pictures, at(REMOTE, name)]);
    expect([shown.status, shown.stderr]).toEqual([0, '']); // -q: no summary line
    expect(shown.stdout).toEqual(expected);
    expect(listing(backup)).toEqual(before); // a lock made and removed would have changed .lb's mtime and ctime
    expect(existsSync(join(backup, '.lb', 'lock'))).toBe(false);

    // Another run holds the lock: a backup is refused, --showfiles still answers and leaves the lock alone.
    const holder = spawn('sleep', ['60']);
    try {
      const lock = join(backup, '.lb', 'lock');
      const held = JSON.stringify({ host: hostname(), pid: holder.pid!, since: new Date().toISOString(), started: startTime(holder.pid!) });
      writeFileSync(lock, held);
      chownSync(lock, remoteIds.uid, remoteIds.gid);
      const locked = listing(backup);
      const refused = lbRun([pictures, at(REMOTE, name)]);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(new RegExp(`^lb: repository is in use by another lb run \\(pid ${holder.pid} on `));
      const beside = lbRun(['--showfiles', pictures, at(REMOTE, name)]);
      expect(beside.status, beside.stderr).toBe(0);
      expect(beside.stdout).toEqual(expected);
      expect(listing(backup)).toEqual(locked);
      expect(readFileSync(lock, 'utf8')).toBe(held);
    } finally {
      holder.kill();
    }
  });
});

describe('pulling with seeding options and selections', () => {
  /** A source in the work directory (root's files, readable by the remote user's agent) and a local repository with its backup. */
  function pulledSource(dir: string) {
    const source = join(dir, 'src');
    for (let i = 0; i < 4; i++) write(join(source, 'album', `IMG_${i}.jpg`), randomBytes(32 * KiB + i));
    write(pathIn(source, 'caf\xe9/old.jpg'), randomBytes(16 * KiB));
    const repo = join(dir, 'repo');
    const first = lbRun([at(REMOTE, source), repo, '-q']);
    expect([first.status, first.stderr]).toEqual([0, '']);
    return { source, repo };
  }

  it('--showfiles host:SRC lists what the local repository lacks, and writes nothing in it', () => {
    const { source, repo } = pulledSource(caseDir());
    write(join(source, 'album', 'new one.jpg'), randomBytes(40 * KiB));
    write(pathIn(source, 'caf\xe9/n\xe9w.jpg'), randomBytes(20 * KiB));
    write(join(source, 'album', 'same as IMG_0.jpg'), readFileSync(join(source, 'album', 'IMG_0.jpg')));
    const before = listing(repo);
    const expected = missingByOracle(source, repo);
    expect(sortedBytes(expected)).toEqual(sortedBytes([Buffer.from('album/new one.jpg'), Buffer.from('caf\xe9/n\xe9w.jpg', 'latin1')]));
    const shown = lbRun(['--showfiles', '-0', at(REMOTE, source), repo]);
    expect(shown.status, shown.stderr).toBe(0);
    expect(shown.stdout).toEqual(joinList(expected, 0));
    expect(listing(repo)).toEqual(before);
  });

  it('--filelist LIST host:SRC takes only the listed paths (a listed directory whole), as rsync --files-from does', () => {
    const { source } = pulledSource(caseDir());
    write(join(source, 'album', 'nested', 'deep.jpg'), randomBytes(8 * KiB));
    write(join(source, 'other', 'left-out.jpg'), randomBytes(8 * KiB));
    const list = joinList([Buffer.from('album/nested'), Buffer.from('album/IMG_2.jpg'), Buffer.from('caf\xe9/old.jpg', 'latin1')], 0);
    const listFile = join(work, `list-${cases}`);
    writeFileSync(listFile, list);
    const repo = join(work, `case-${cases}`, 'subset');
    const r = json(lbRun(['--filelist', listFile, '-0', at(REMOTE, source), repo, '--json']));
    expect(r.files.total).toBe(3);
    expect(rsyncDifferences(rsyncSubset(source, list, join(work, `case-${cases}`, 'expected')), join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('--catalogonly host:SRC stores the new content and no snapshot; the next pull transfers none of it', () => {
    const { source, repo } = pulledSource(caseDir());
    const added = [write(join(source, 'album', 'later.jpg'), randomBytes(300 * KiB)), write(join(source, 'fresh', 'also.jpg'), randomBytes(200 * KiB))];
    const before = snapshots(repo);
    const stored = json(lbRun(['--catalogonly', at(REMOTE, source), repo, '--json']));
    expect([stored.snapshot, stored.bytes.transferred]).toEqual([null, bytesOf(added)]);
    expect(snapshots(repo)).toEqual(before);
    expect(missingByOracle(source, repo)).toEqual([]);
    const next = json(lbRun([at(REMOTE, source), repo, '--json']));
    expect([next.created, next.files.new, next.bytes.transferred]).toEqual([true, 0, 0]);
    expect(next.wire.received).toBeLessThan(bytesOf(added) * 0.05 + WIRE_ALLOWANCE);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('--exclude, --exclude-caches and --exclude-if-present travel to the remote scanner: the snapshot is what rsync takes with the same rules', () => {
    const dir = caseDir();
    const source = join(dir, 'src');
    const signature = Buffer.from('Signature: 8a477f597d28d172789f06886806bc55\n# a cache directory tag\n');
    for (const path of ['Thumbs.db', 'a/Thumbs.db', 'a/b/Thumbs.db', 'a/b/keep.jpg', 'a/cache/x.bin', 'a/b/cache/y.bin', 'a/cache-not/z.bin', 'cache'])
      write(join(source, path), randomBytes(2 * KiB));
    write(pathIn(source, 'n\xe9/Thumbs.db'), randomBytes(KiB)); // a name not UTF-8 in the path
    write(join(source, 'a', 'thumbs', 'CACHEDIR.TAG'), signature);
    write(join(source, 'a', 'thumbs', 'deep', 't.bin'), randomBytes(4 * KiB));
    write(join(source, 'a', 'thumbs', 'u.bin'), randomBytes(4 * KiB));
    write(join(source, 'a', 'not-a-cache', 'CACHEDIR.TAG'), Buffer.from('Signature: not the right one\n'));
    write(join(source, 'a', 'not-a-cache', 'kept.bin'), randomBytes(KiB));
    write(join(source, 'private', '.nobackup'), Buffer.alloc(0));
    write(join(source, 'private', 'diary.txt'), randomBytes(KiB));
    write(join(source, 'private', 'inner', 'more.txt'), randomBytes(KiB));
    const expected = join(dir, 'expected');
    // The names by rsync's own rules; the tagged directories by hand, also as rsync rules: tag kept, the rest gone.
    rsync(['-a', '--exclude', 'Thumbs.db', '--exclude', 'cache/', '--include', '/a/thumbs/CACHEDIR.TAG', '--exclude', '/a/thumbs/*',
      '--include', '/private/.nobackup', '--exclude', '/private/*', source + '/', expected + '/']);
    const repo = join(dir, 'repo');
    const r = json(lbRun(['--exclude', 'Thumbs.db', '--exclude', 'cache/', '--exclude-caches', '--exclude-if-present', '.nobackup', at(REMOTE, source), repo, '--json']));
    expect(r.created).toBe(true);
    const tree = join(repo, 'latest', 'tree');
    expect(rsyncDifferences(expected, tree)).toEqual([]);
    // What the rules are about, seen directly too: rsync and lb could not both have ignored them.
    expect([readdirSync(join(tree, 'a', 'thumbs')), readdirSync(join(tree, 'private')), readdirSync(join(tree, 'a', 'not-a-cache')).sort()]).toEqual([
      ['CACHEDIR.TAG'],
      ['.nobackup'],
      ['CACHEDIR.TAG', 'kept.bin'],
    ]);
    expect([existsSync(join(tree, 'a', 'cache')), existsSync(join(tree, 'Thumbs.db')), existsSync(join(tree, 'cache')), existsSync(join(tree, 'a', 'cache-not', 'z.bin'))]).toEqual([false, false, true, true]);
  });
});

/** A NUL-separated file list whose paths (none of them in any source) take exactly SIZE bytes as they travel, NUL-joined. */
function fileListOfSize(size: number): Buffer {
  const paths: Buffer[] = [];
  let total = -1; // n paths, n - 1 separators
  for (let i = 0; total + 1 + 208 <= size - 300; i++) {
    paths.push(Buffer.from(`missing/${String(i).padStart(200, '0')}`));
    total += 209;
  }
  const rest = size - total - 1 - 'missing//'.length; // one last path of two names to fill it up
  paths.push(Buffer.from(`missing/${'a'.repeat(250)}/${'b'.repeat(rest - 250)}`));
  const list = Buffer.concat(paths.flatMap((p, i) => (i === 0 ? [p] : [Buffer.from([0]), p])));
  expect(list.length).toBe(size);
  return list;
}

describe('bad input over SSH: one line, and nothing written in the repository', () => {
  /** What a refused run may not change: snapshots, `latest`, objects, work in .lb/tmp. */
  const state = (repo: string) => ({ snapshots: snapshots(repo), latest: readlinkSync(join(repo, 'latest')), objects: objectCount(repo), tmp: readdirSync(join(repo, '.lb', 'tmp')) });
  const oneLine = (r: Run, status: number, message: RegExp) => {
    expect(r.stderr).toMatch(/^lb: [^\n]+\n$/);
    expect(r.stderr).toMatch(message);
    expect(r.status).toBe(status);
    expect(r.stdout.length).toBe(0);
  };

  it('a listed path missing from the remote source, pulling or pushing', () => {
    const dir = caseDir();
    const source = join(dir, 'src');
    write(join(source, 'here.jpg'), randomBytes(KiB));
    const repo = join(dir, 'repo');
    expect(lbRun([at(REMOTE, source), repo]).status).toBe(0);
    write(join(source, 'new.jpg'), randomBytes(KiB));
    const before = state(repo);
    const list = Buffer.from('new.jpg\nnot/there.jpg\n');
    oneLine(lbRun(['--filelist', '-', at(REMOTE, source), repo], { input: list }), 1, /the file list names "not\/there\.jpg", which is not in the source/);
    expect(state(repo)).toEqual(before);

    const remoteRepo = picturesBackedUp(dir, `backup-${cases}`).backup;
    const remoteBefore = state(remoteRepo);
    // Pushing, the local source is checked before connecting: a closed port is never tried.
    oneLine(lbRun(['--filelist', '-', source, at(REMOTE, `backup-${cases}`)], { input: list, port: 1 }), 2, /the file list on standard input names "not\/there\.jpg", which is not in the source/);
    expect(state(remoteRepo)).toEqual(remoteBefore);
  });

  it('an absolute or a .. path in the list, refused before connecting', () => {
    const dir = caseDir();
    for (const [path, message] of [
      ['/etc/passwd', /names "\/etc\/passwd", an absolute path: list paths relative to the source/],
      ['photos/../../etc/passwd', /names "photos\/\.\.\/\.\.\/etc\/passwd", with a '\.\.' in it: list paths inside the source, without '\.\.'/],
    ] as const) {
      oneLine(lbRun(['--filelist', '-', at(REMOTE, dir), join(dir, 'repo')], { input: Buffer.from(`ok.jpg\n${path}\n`), port: 1 }), 2, message);
      expect(existsSync(join(dir, 'repo'))).toBe(false);
    }
  });

  it('a file list just over what a pull request carries is refused before connecting; one at the limit reaches the remote', () => {
    const dir = caseDir();
    mkdirSync(join(dir, 'src'));
    const listFile = join(dir, 'list');
    writeFileSync(listFile, fileListOfSize(MAX_FILE_LIST_BYTES + 1));
    const over = lbRun(['--filelist', listFile, '-0', at(REMOTE, join(dir, 'src')), join(dir, 'repo')], { port: 1 });
    oneLine(over, 2, new RegExp(`the file list holds ${MAX_FILE_LIST_BYTES + 1} bytes of paths, more than the ${MAX_FILE_LIST_BYTES} a remote source is sent at once; split it, or run lb on 127\\.0\\.0\\.1$`, 'm'));
    writeFileSync(listFile, fileListOfSize(MAX_FILE_LIST_BYTES));
    // Within the limit the list travels: the remote itself finds its first path missing from the source.
    const atLimit = lbRun(['--filelist', listFile, '-0', at(REMOTE, join(dir, 'src')), join(dir, 'repo')]);
    oneLine(atLimit, 1, /the file list names "missing\/0+", which is not in the source/);
    expect(existsSync(join(dir, 'repo'))).toBe(false);
  });

  it('filter rules too many to send a remote source in one request are refused before connecting', () => {
    const dir = caseDir();
    // 2,100 patterns of 4,000 bytes (each within the protocol's 4,096): 8.4 MB, past one frame's 8 MiB.
    const rules = Array.from({ length: 2100 }, (_, i) => `${i}`.padEnd(4000, 'x')).join('\n');
    writeFileSync(join(dir, 'rules'), rules + '\n');
    const r = lbRun(['--exclude-from', join(dir, 'rules'), at(REMOTE, dir), join(dir, 'repo')], { port: 1 });
    oneLine(r, 2, /the filter rules and file list make a request of 8\.\d+ MB, more than a remote source is sent at once \(8\.39 MB\); shorten them, or run lb on 127\.0\.0\.1$/m);
    expect(existsSync(join(dir, 'repo'))).toBe(false);
  });

  it('--showfiles to a remote path that is no repository', () => {
    const dir = caseDir();
    const source = join(dir, 'src');
    write(join(source, 'a.jpg'), randomBytes(KiB));
    oneLine(lbRun(['--showfiles', source, at(REMOTE, 'no-such-repository')]), 1, /no-such-repository does not exist, so it is no lb repository/);
    expect(existsSync(join(REMOTE_HOME, 'no-such-repository'))).toBe(false);
    const plain = join(REMOTE_HOME, 'plain-directory');
    write(join(plain, 'letter.txt'), Buffer.from('not a repository'));
    chownTree(plain, remoteIds);
    const before = listing(plain);
    oneLine(lbRun(['--showfiles', source, at(REMOTE, 'plain-directory')]), 1, /plain-directory is not an lb repository \(it has no \.lb\/format\)/);
    expect(listing(plain)).toEqual(before);
  });
});

describe('lb --showfiles to a remote whose cached agent was replaced by a hostile one', () => {
  /** Where lb caches its agent in the remote user's home: named by the bundle's hash, as src/transport/ssh.ts names it. */
  function cachedAgentPath(): string {
    const hash = createHash('sha256').update(readFileSync(join(ROOT, 'dist', 'agent.cjs'))).digest('hex').slice(0, 20);
    return join(REMOTE_HOME, '.cache', 'lb', `agent-${hash}.cjs`);
  }

  const attacks: [RepositoryAttack, string, RegExp][] = [
    ['missing-dot-dot', 'a path climbing out of the source through ..', /\(peer sent an invalid event path\)/],
    ['missing-absolute', 'an absolute path', /\(peer sent an invalid event path\)/],
    ['missing-twice', 'a path named twice (out of order)', /\(the repository side named planted as missing out of order\)/],
  ];
  for (const [attack, what, detail] of attacks) {
    it(`refuses a missing file named by ${what} in one line, and prints no path`, () => {
      const dir = caseDir();
      const name = `backup-${cases}`;
      const { pictures } = picturesBackedUp(dir, name); // the honest agent is cached by now
      addNewPhotos(pictures, false);
      const outside = join(dir, 'outside');
      mkdirSync(outside);
      const planted = cachedAgentPath();
      writeFileSync(planted, readFileSync(hostileBundle));
      writeFileSync(`${planted}.attack.json`, JSON.stringify({ attack, outside } satisfies AttackPlan));
      for (const path of [planted, `${planted}.attack.json`]) chownSync(path, remoteIds.uid, remoteIds.gid);
      let r: Run;
      try {
        r = lbRun(['--showfiles', pictures, at(REMOTE, name)]);
      } finally {
        // It stays on after lb hangs up, by design; it is ours to end.
        if (existsSync(`${planted}.pid`)) killIfAlive(Number(readFileSync(`${planted}.pid`, 'utf8')));
        for (const path of [planted, `${planted}.attack.json`, `${planted}.pid`]) rmSync(path, { force: true });
      }
      expect(r.stderr).toMatch(/^lb: [^\n]+\n$/);
      expect(r.stderr).toMatch(/refused what lbsdr\d+@127\.0\.0\.1 sent \(/);
      expect(r.stderr).toMatch(detail);
      expect(r.stderr).not.toMatch(/all is well|backup complete/);
      expect(r.status).toBe(1);
      expect(r.stdout.length).toBe(0);
      expect(readdirSync(outside)).toEqual([]);
      // The honest agent is sent again, and answers.
      const honest = lbRun(['--showfiles', pictures, at(REMOTE, name)]);
      expect(honest.status, honest.stderr).toBe(0);
      expect(honest.stdout).toEqual(joinList(missingByOracle(pictures, join(REMOTE_HOME, name)), 0x0a));
    });
  }
});
