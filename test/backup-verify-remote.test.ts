// lb backup --verify over SSH: the real lb, a real sshd, an unprivileged user there.
// Pushing, the repository is that user's (its snapshots hold that user's files, so
// owners compare only as that side maps them); pulling, that user's agent reads the
// source and walks it again for the comparison. The world is changed between
// publication and comparison by holding lb (strace SIGSTOP) where the comparison
// starts: pushing, its second read of the agent bundle it pushes; pulling, its
// second open of the repository's format file.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, readSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttackPlan, PulledVerifyAttack, VerifyAttack } from './hostile-remote-agent.js';
import { ROOT, killIfAlive, lb, settle } from './helpers.js';
import type { Sshd } from './sshd.js';
import { createTestUser, removeTestUser, sshdForTestUsers } from './test-user.js';
import { TracedRun, holdAt, type Finished } from './traced-run.js';

// A name of this run's own: two test runs on one machine must not share, nor remove, each other's user.
const USER = `lbvfy${process.pid % 100_000}`;
const USER_HOME = `/tmp/${USER}-home`;
const AGENT = join(ROOT, 'dist', 'agent.cjs');

let sshd: Sshd;
let uid = 0;
/** Removed at the end; each test works in a directory of its own inside. */
let work: string;

beforeAll(async () => {
  ({ uid } = createTestUser(USER, USER_HOME));
  sshd = await sshdForTestUsers();
  work = mkdtempSync(join(tmpdir(), 'lb-verify-remote-'));
  chmodSync(work, 0o755);
}, 120_000);

afterAll(() => {
  sshd?.stop();
  if (work) spawnSync('rm', ['-rf', '--', work]);
  removeTestUser(USER, USER_HOME);
});

interface VerifySummary {
  snapshot: string | null;
  created: boolean;
  status: string;
  verify: {
    snapshot: string;
    checked: { entries: number; filesReread: number; objectsReread: number; bytesRead: number };
    differences: { side: string; path?: string; detail: string; kind?: string; snapshot?: string }[];
    differenceCount: number;
  } | null;
}

let cases = 0;
/** A source (as root: root's files and an owner no name stands for) and an empty repository directory the test user owns. */
function setUp(): { source: string; repo: string; catalog: string; target: string } {
  const dir = join(work, String(++cases));
  const source = join(dir, 'src');
  mkdirSync(join(source, 'album'), { recursive: true });
  writeFileSync(join(source, 'album', 'one.jpg'), 'one'.repeat(100));
  writeFileSync(join(source, 'album', 'two.jpg'), 'two'.repeat(100));
  writeFileSync(join(source, 'notes.txt'), 'notes');
  chownSync(join(source, 'notes.txt'), 4321, 4321);
  writeFileSync(Buffer.from(join(source, 'caf\xe9.txt'), 'latin1'), 'latin-1 name');
  symlinkSync('album/one.jpg', join(source, 'favourite'));
  settle(); // past the racily-clean window, so the catalog vouches for these files next time
  const repo = join(dir, 'repo');
  mkdirSync(repo);
  chownSync(repo, uid, uid);
  return { source, repo, catalog: join(dir, 'catalog'), target: `${USER}@127.0.0.1:${repo}` };
}

/** Entries of setUp's tree: the root, album/, two photos, notes.txt, café.txt, favourite; bytes of its four files. */
const ENTRIES = 7;
const FILES = 4;
const BYTES = 300 + 300 + 5 + 12;

const sshArgs = () => ['--ssh-p', String(sshd.port)];

function verifyPush(source: string, target: string, catalog: string, extra: string[] = []): { status: number; summary: VerifySummary; stderr: string } {
  const r = lb(['backup', source, target, '--json', '--verify', '--catalog', catalog, ...extra, ...sshArgs()], sshd.env);
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
  const ns = (mtimeNs % 1_000_000_000n).toString().padStart(9, '0');
  expect(spawnSync('touch', ['-m', '-d', `@${mtimeNs / 1_000_000_000n}.${ns}`, path]).status).toBe(0);
}

/** A --verify push held after the push's agent ended and the snapshot was published, before the comparison's agent starts: `change` runs then. */
async function heldBeforeComparing(args: string[], change: () => void): Promise<Finished> {
  const run = new TracedRun([...args, ...sshArgs()], holdAt(AGENT, 'openat', '2'), sshd.env);
  expect(await run.nextHold()).toBe(true);
  change();
  run.resume();
  return run.end();
}

describe('lb backup --verify to a repository over SSH', () => {
  it('verifies a clean push, owners compared as the remote (not root) gave them; an unchanged push compares with latest', () => {
    const { source, target, repo, catalog } = setUp();
    const first = verifyPush(source, target, catalog);
    expect(first.status, first.stderr).toBe(0);
    // Under --json, the closing line goes to stderr.
    expect(first.stderr).toBe(`  verified: ${ENTRIES} entries, ${FILES} files re-read, ${FILES} stored objects re-hashed (1.23 kB read in all); snapshot ${first.summary.snapshot} matches the source\n`);
    expect(first.summary.status).toBe('ok');
    expect(first.summary.verify).toMatchObject({ snapshot: first.summary.snapshot, differences: [], differenceCount: 0 });
    expect(first.summary.verify!.checked).toEqual({ entries: ENTRIES, filesReread: FILES, objectsReread: FILES, bytesRead: 2 * BYTES });
    // The remote's user owns every snapshot file: a comparison mapping owners as root here would differ everywhere.
    expect(lstatSync(join(repo, 'latest', 'tree', 'notes.txt')).uid).toBe(uid);

    const unchanged = lb(['backup', source, target, '--verify', '--catalog', catalog, ...sshArgs()], sshd.env);
    expect(unchanged.status, unchanged.stderr).toBe(0);
    expect(unchanged.stdout).toContain(`  verified: ${ENTRIES} entries, 0 files re-read, 0 stored objects re-hashed (0 B read in all); snapshot ${first.summary.snapshot} matches the source\n`);
  });

  it('verifies a push to root there, owners mapped by name with its account names, an unnamed owner kept as a number', () => {
    const { source, repo, catalog } = setUp();
    chownSync(join(source, 'album', 'one.jpg'), uid, uid); // the test user's name, known there too
    const pushed = verifyPush(source, `root@127.0.0.1:${repo}`, catalog);
    expect(pushed.status, pushed.stderr).toBe(0);
    expect(pushed.summary.verify).toMatchObject({ differenceCount: 0, checked: { entries: ENTRIES, filesReread: FILES } });
    expect(lstatSync(join(repo, 'latest', 'tree', 'album', 'one.jpg')).uid).toBe(uid);
    expect(lstatSync(join(repo, 'latest', 'tree', 'notes.txt')).uid).toBe(4321);
  });

  it('reports a byte flipped in an object this run stored there, naming the path (exit status 6)', async () => {
    const { source, target, repo, catalog } = setUp();
    const finished = await heldBeforeComparing(['backup', source, target, '--json', '--verify', '--catalog', catalog], () => {
      flipByte(join(repo, readlinkSync(join(repo, 'latest')), 'tree', 'album', 'two.jpg'), 7);
    });
    expect(finished.status, finished.stderr).toBe(6);
    const summary = JSON.parse(finished.stdout) as VerifySummary;
    expect(summary.status).toBe('differs');
    expect(summary.verify!.differences).toEqual([
      expect.objectContaining({ side: 'repository', kind: 'rotten', snapshot: summary.snapshot, path: 'album/two.jpg', detail: expect.stringMatching(/^its object, stored by this run, hashes to [0-9a-f]{64}, not to its recorded [0-9a-f]{64}$/) }),
    ]);
    expect(finished.stderr).toMatch(new RegExp(`^lb: verify: ${summary.snapshot} album/two\\.jpg: its object, stored by this run, hashes to`, 'm'));
    // The source's copy, read again here, still matches: the difference is the repository's alone.
    expect(summary.verify!.checked).toEqual({ entries: ENTRIES, filesReread: FILES, objectsReread: FILES, bytesRead: 2 * BYTES });
  });

  it('reports a source changed after publication (content of a file it read, a removed and an added file), not an owner the remote could not keep', async () => {
    const { source, target, catalog } = setUp();
    expect(verifyPush(source, target, catalog).status).toBe(0);
    mkdirSync(join(source, 'later'));
    writeFileSync(join(source, 'later', 'read.txt'), 'read by the second run');
    writeFileSync(join(source, 'later', 'gone.txt'), 'removed before the comparison');
    const finished = await heldBeforeComparing(['backup', source, target, '--json', '--verify', '--catalog', catalog], () => {
      flipByte(join(source, 'later', 'read.txt'));
      rmSync(join(source, 'later', 'gone.txt'));
      writeFileSync(join(source, 'later', 'new.txt'), 'added');
      // Not root there: its files are the remote user's whoever owns them here, so an owner change shows nothing.
      chownSync(join(source, 'notes.txt'), 0, 0);
    });
    expect(finished.status, finished.stderr).toBe(6);
    const summary = JSON.parse(finished.stdout) as VerifySummary;
    expect(summary.verify!.differences.map((d) => [d.side, d.path, d.detail])).toEqual([
      ['source', 'later', expect.stringMatching(/^differs from the snapshot: mtime \d+ ns, not \d+$/)],
      ['source', 'later/gone.txt', 'in the snapshot, not in the source'],
      ['source', 'later/new.txt', 'in the source, not in the snapshot'],
      ['source', 'later/read.txt', expect.stringMatching(/^content differs from the snapshot: it hashes to [0-9a-f]{64}, the snapshot holds [0-9a-f]{64}$/)],
    ]);
    for (const d of summary.verify!.differences) expect(finished.stderr).toContain(`lb: verify: ${d.path}: ${d.detail}\n`);
    expect(summary.verify!.checked).toMatchObject({ entries: ENTRIES + 3, filesReread: 1, objectsReread: 2 });
  });
});

/** A --verify pull into a repository that has a snapshot, held once this run's snapshot is published, before the comparison reads it: `change` runs then. */
async function heldBeforeComparingPull(args: string[], repo: string, change: () => void): Promise<Finished> {
  // The backup opens .lb/format first; the comparison's reader opens it second.
  const run = new TracedRun([...args, ...sshArgs()], holdAt(join(repo, '.lb', 'format'), 'openat', '2'), sshd.env);
  expect(await run.nextHold()).toBe(true);
  change();
  run.resume();
  return run.end();
}

function verifyPull(source: string, repo: string): { status: number; summary: VerifySummary; stderr: string } {
  const r = lb(['backup', `${USER}@127.0.0.1:${source}`, repo, '--json', '--verify', ...sshArgs()], sshd.env);
  return { status: r.status, summary: JSON.parse(r.stdout) as VerifySummary, stderr: r.stderr };
}

describe('lb backup --verify pulling from a source over SSH', () => {
  it('verifies a clean pull, the source walked again on the remote; an unchanged pull compares with latest', () => {
    const { source, repo } = setUp();
    const first = verifyPull(source, repo);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toBe(`  verified: ${ENTRIES} entries, ${FILES} files re-read, ${FILES} stored objects re-hashed (1.23 kB read in all); snapshot ${first.summary.snapshot} matches the source\n`);
    expect(first.summary.status).toBe('ok');
    expect(first.summary.verify).toMatchObject({ snapshot: first.summary.snapshot, differences: [], differenceCount: 0 });
    expect(first.summary.verify!.checked).toEqual({ entries: ENTRIES, filesReread: FILES, objectsReread: FILES, bytesRead: 2 * BYTES });
    // Owners as this side (root) mapped them: by name, an unnamed one kept as a number.
    expect(lstatSync(join(repo, 'latest', 'tree', 'notes.txt')).uid).toBe(4321);

    const unchanged = lb(['backup', `${USER}@127.0.0.1:${source}`, repo, '--verify', ...sshArgs()], sshd.env);
    expect(unchanged.status, unchanged.stderr).toBe(0);
    expect(unchanged.stdout).toContain(`  verified: ${ENTRIES} entries, 0 files re-read, 0 stored objects re-hashed (0 B read in all); snapshot ${first.summary.snapshot} matches the source\n`);
  });

  it('reports a source changed on the remote after publication (content of a file it read, a removed, an added file, an owner)', async () => {
    const { source, repo } = setUp();
    expect(verifyPull(source, repo).status).toBe(0);
    mkdirSync(join(source, 'later'));
    writeFileSync(join(source, 'later', 'read.txt'), 'read by the second run');
    writeFileSync(join(source, 'later', 'gone.txt'), 'removed before the comparison');
    const finished = await heldBeforeComparingPull(['backup', `${USER}@127.0.0.1:${source}`, repo, '--json', '--verify'], repo, () => {
      flipByte(join(source, 'later', 'read.txt'));
      rmSync(join(source, 'later', 'gone.txt'));
      writeFileSync(join(source, 'later', 'new.txt'), 'added');
      // Root here keeps owners: a changed one shows.
      chownSync(join(source, 'notes.txt'), 0, 0);
    });
    expect(finished.status, finished.stderr).toBe(6);
    const summary = JSON.parse(finished.stdout) as VerifySummary;
    expect(summary.status).toBe('differs');
    expect(summary.verify!.differences.map((d) => [d.side, d.path, d.detail])).toEqual([
      ['source', 'later', expect.stringMatching(/^differs from the snapshot: mtime \d+ ns, not \d+$/)],
      ['source', 'later/gone.txt', 'in the snapshot, not in the source'],
      ['source', 'later/new.txt', 'in the source, not in the snapshot'],
      ['source', 'later/read.txt', expect.stringMatching(/^content differs from the snapshot: it hashes to [0-9a-f]{64}, the snapshot holds [0-9a-f]{64}$/)],
      ['source', 'notes.txt', expect.stringMatching(/^differs from the snapshot: (mtime \d+ ns, not \d+, )?uid 0, not 4321, gid 0, not 4321$/)],
    ]);
    for (const d of summary.verify!.differences) expect(finished.stderr).toContain(`lb: verify: ${d.path}: ${d.detail}\n`);
    expect(summary.verify!.checked).toMatchObject({ entries: ENTRIES + 3, filesReread: 1, objectsReread: 2 });
  });

  it('reports a byte flipped in an object this run stored in the repository here, naming the path (exit status 6)', async () => {
    const { source, repo } = setUp();
    expect(verifyPull(source, repo).status).toBe(0);
    writeFileSync(join(source, 'album', 'three.jpg'), 'three'.repeat(100));
    const finished = await heldBeforeComparingPull(['backup', `${USER}@127.0.0.1:${source}`, repo, '--json', '--verify'], repo, () => {
      flipByte(join(repo, readlinkSync(join(repo, 'latest')), 'tree', 'album', 'three.jpg'), 7);
    });
    expect(finished.status, finished.stderr).toBe(6);
    const summary = JSON.parse(finished.stdout) as VerifySummary;
    expect(summary.verify!.differences).toEqual([
      expect.objectContaining({ side: 'repository', kind: 'rotten', snapshot: summary.snapshot, path: 'album/three.jpg', detail: expect.stringMatching(/^its object, stored by this run, hashes to [0-9a-f]{64}, not to its recorded [0-9a-f]{64}$/) }),
    ]);
    expect(finished.stderr).toMatch(new RegExp(`^lb: verify: ${summary.snapshot} album/three\\.jpg: its object, stored by this run, hashes to`, 'm'));
    // The remote source, read again there, still matches: the difference is the repository's alone.
    expect(summary.verify!.checked).toEqual({ entries: ENTRIES + 1, filesReread: 1, objectsReread: 1, bytesRead: 2 * 500 });
  });
  it('compares nothing, and does not wait for the source agent, when the time budget ran out before a snapshot was made', () => {
    const { source, repo } = setUp();
    const r = lb(['backup', `${USER}@127.0.0.1:${source}`, repo, '--json', '--verify', '--minutes', '0.00001', ...sshArgs()], sshd.env);
    expect(r.status, r.stderr).toBe(4);
    expect(JSON.parse(r.stdout)).toMatchObject({ status: 'incomplete', snapshot: null, verify: null });
    expect(r.stderr).toContain('  not verified: no snapshot was made\n');
  });
});

describe('lb backup --verify against a tampered agent', () => {
  let hostileBundle: string;
  beforeAll(async () => {
    hostileBundle = join(sshd.dir, 'hostile-agent.cjs');
    await build({ entryPoints: [join(ROOT, 'test', 'hostile-remote-agent.ts')], outfile: hostileBundle, bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'warning' });
  });

  /** Where lb caches its agent in the test user's home: named by the bundle's hash, as src/transport/ssh.ts names it. */
  const cachedAgentPath = () => join(USER_HOME, '.cache', 'lb', `agent-${createHash('sha256').update(readFileSync(AGENT)).digest('hex').slice(0, 20)}.cjs`);

  for (const attack of ['unsafe-record', 'unordered-records'] as VerifyAttack[]) {
    it(`refuses a record ${attack === 'unsafe-record' ? 'whose path climbs out of the source' : 'out of canonical order'} in one line, exit status 1, the snapshot published`, async () => {
      const { source, target, repo, catalog } = setUp();
      const planted = cachedAgentPath();
      try {
        // The honest agent made the snapshot; the one that answers the comparison was planted meanwhile.
        const finished = await heldBeforeComparing(['backup', source, target, '--verify', '--catalog', catalog], () => {
          writeFileSync(planted, readFileSync(hostileBundle));
          const plan: AttackPlan = { attack, outside: work };
          writeFileSync(`${planted}.attack.json`, JSON.stringify(plan));
          for (const path of [planted, `${planted}.attack.json`]) chownSync(path, uid, uid);
        });
        const detail = attack === 'unsafe-record' ? 'peer sent an unsafe path "../../../etc/passwd"' : 'the agent sent records out of canonical order';
        expect(finished.stderr).toBe(`lb: refused what ${USER}@127.0.0.1 sent (${detail}); the comparison was stopped. The lb agent cached there (~/.cache/lb/agent-*.cjs) may be damaged or tampered with: check that host, then delete the file so lb sends a fresh one\n`);
        expect(finished.status).toBe(1);
        expect(existsSync(join(repo, 'latest', 'tree', 'notes.txt'))).toBe(true);
      } finally {
        if (existsSync(`${planted}.pid`)) killIfAlive(Number(readFileSync(`${planted}.pid`, 'utf8')));
        for (const path of [planted, `${planted}.attack.json`, `${planted}.pid`]) rmSync(path, { force: true });
      }
    });
  }

  const pulledAttacks: [PulledVerifyAttack, string, string][] = [
    ['unsafe-difference', 'whose path climbs out of the source', 'peer sent an unsafe path "../../../etc/passwd"'],
    ['unasked-difference', 'before it said it was ready', 'the agent sent "difference" out of its order'],
    ['overcounted', 'claiming more records compared than lb sent', 'the agent claims 1000 records compared and 0 files re-read, of 2 records sent'],
  ];
  for (const [attack, what, detail] of pulledAttacks) {
    it(`pulling, refuses a source agent's difference or verdict ${what} in one line, exit status 1, the snapshot published`, () => {
      const { source, repo } = setUp();
      const planted = cachedAgentPath();
      try {
        // The planted agent backs up a small tree honestly, then lies in the comparison.
        mkdirSync(join(USER_HOME, '.cache', 'lb'), { recursive: true });
        writeFileSync(planted, readFileSync(hostileBundle));
        const plan: AttackPlan = { attack, outside: work };
        writeFileSync(`${planted}.attack.json`, JSON.stringify(plan));
        for (const path of [join(USER_HOME, '.cache'), join(USER_HOME, '.cache', 'lb'), planted, `${planted}.attack.json`]) chownSync(path, uid, uid);
        const r = lb(['backup', `${USER}@127.0.0.1:${source}`, repo, '--verify', ...sshArgs()], sshd.env);
        expect(r.stderr).toBe(`lb: refused what ${USER}@127.0.0.1 sent (${detail}); the comparison was stopped. The lb agent cached there (~/.cache/lb/agent-*.cjs) may be damaged or tampered with: check that host, then delete the file so lb sends a fresh one\n`);
        expect(r.status).toBe(1);
        expect(existsSync(join(repo, 'latest', 'tree', 'album'))).toBe(true);
      } finally {
        if (existsSync(`${planted}.pid`)) killIfAlive(Number(readFileSync(`${planted}.pid`, 'utf8')));
        for (const path of [planted, `${planted}.attack.json`, `${planted}.pid`]) rmSync(path, { force: true });
      }
    });
  }
});
