// lb restore over SSH, both ways, with lb's agent running as an unprivileged user of
// a real sshd: from a remote repository into a local directory, and from a local
// repository into a remote directory. rsync (no code shared with lb) compares each
// restored tree with an rsync -aH copy of the source taken right after its backup:
// contents, names that are not UTF-8, symlinks, modes, mtimes, source hard links.
// A content shared by five paths crosses the wire once (lb's count of the SSH
// connection's bytes); damage, bad input and a tampered agent end as they must.
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttackPlan, RestoreAttack } from './hostile-remote-agent.js';
import { ROOT, backup, killIfAlive, lb, rsync, settle, type LbRun } from './helpers.js';
import type { Sshd } from './sshd.js';
import { createTestUser, removeTestUser, sshdForTestUsers } from './test-user.js';

// A name of this run's own: two test runs on one machine must not share, nor remove, each other's user.
const USER = `lbrest${process.pid % 100_000}`;
const USER_HOME = `/tmp/${USER}-home`;
const LATIN1 = Buffer.from('caf\xe9', 'latin1');
const BIG = 4 * 1024 * 1024;

let sshd: Sshd;
let uid = 0;
let gid = 0;
let work: string;
let repo: string;
/** The snapshots, oldest first, and the source as it was when each was taken (rsync -aH copies). */
let names: string[];
let asTaken: string[];
/** Where the test user may make restore targets. */
let theirs: string;

beforeAll(async () => {
  ({ uid, gid } = createTestUser(USER, USER_HOME));
  sshd = await sshdForTestUsers();
  work = mkdtempSync(join(tmpdir(), 'lb-remote-restore-'));
  chmodSync(work, 0o755); // the test user reads the repository and writes under `theirs`
  theirs = join(work, 'theirs');
  mkdirSync(theirs);
  chownSync(theirs, uid, gid);
  ({ repo, names, asTaken } = changingRepository());
}, 120_000);

afterAll(() => {
  sshd?.stop();
  if (work) spawnSync('rm', ['-rf', '--', work]);
  removeTestUser(USER, USER_HOME);
});

/** Every path of `dir` owned by the test user (a restore it writes gives it everything). */
function ownAll(dir: string): void {
  expect(spawnSync('chown', ['-hR', `${uid}:${gid}`, dir]).status).toBe(0);
}

/**
 * Two snapshots, made by lb as root from a source the test user owns and may read: albums with two
 * files of one content, a name that is not UTF-8, five files of one 4 MiB content, a source hard
 * link, an executable, symlinks (one dangling), a directory of mode 0555; then an album renamed,
 * a file edited and another touched.
 */
function changingRepository(): { repo: string; names: string[]; asTaken: string[] } {
  const source = join(work, 'src');
  const repo = join(work, 'repo');
  const catalog = join(work, 'catalog.sqlite');
  mkdirSync(join(source, 'albums', 'summer'), { recursive: true });
  for (const dir of ['big', 'hard', 'bin', 'sealed']) mkdirSync(join(source, dir));
  writeFileSync(join(source, 'albums', 'summer', 'IMG_1.jpg'), 'x'.repeat(20000));
  writeFileSync(join(source, 'albums', 'summer', 'IMG_1 copy.jpg'), 'x'.repeat(20000));
  writeFileSync(join(source, 'albums', 'summer', 'IMG_2.jpg'), 'y'.repeat(3000));
  writeFileSync(Buffer.from(`${source}/albums/${LATIN1.toString('latin1')}`, 'latin1'), 'latin-1 name');
  const big = randomBytes(BIG);
  for (const name of ['one', 'two', 'three', 'four', 'five']) writeFileSync(join(source, 'big', name), big);
  writeFileSync(join(source, 'hard', 'first'), 'one inode, two names');
  linkSync(join(source, 'hard', 'first'), join(source, 'hard', 'second'));
  writeFileSync(join(source, 'bin', 'tool'), '#!/bin/sh\necho tool\n');
  writeFileSync(join(source, 'sealed', 'inside'), 'under a directory nobody may write');
  writeFileSync(join(source, 'notes.txt'), 'notes');
  writeFileSync(join(source, 'zz-copy.jpg'), 'x'.repeat(20000)); // after the albums in manifest order
  symlinkSync('albums/summer/IMG_1.jpg', join(source, 'favourite'));
  symlinkSync('/nonexistent/elsewhere', join(source, 'dangling'));
  ownAll(source);
  chmodSync(join(source, 'bin', 'tool'), 0o755);
  chmodSync(join(source, 'sealed'), 0o555);
  utimesSync(join(source, 'notes.txt'), 1_600_000_000.25, 1_600_000_000.25);
  utimesSync(join(source, 'albums', 'summer'), 1_400_000_000, 1_400_000_000);
  const names: string[] = [];
  const asTaken: string[] = [];
  const snapshot = () => {
    settle();
    names.push(backup(source, repo, catalog).snapshot!);
    const copy = join(work, `as-taken-${names.length}`);
    rsync(['-aH', source + '/', copy + '/']);
    asTaken.push(copy);
  };
  snapshot();
  renameSync(join(source, 'albums', 'summer'), join(source, 'albums', 'summer-2026'));
  writeFileSync(join(source, 'notes.txt'), 'notes, edited');
  chownSync(join(source, 'notes.txt'), uid, gid);
  utimesSync(join(source, 'albums', 'summer-2026', 'IMG_2.jpg'), 1_300_000_000, 1_300_000_000);
  utimesSync(join(source, 'albums'), 1_500_000_000, 1_500_000_000);
  snapshot();
  return { repo, names, asTaken };
}

const sshArgs = () => ['--ssh-p', String(sshd.port)];
const remote = (path: string) => `${USER}@127.0.0.1:${path}`;
const restore = (args: string[]): LbRun => lb(['restore', ...args, ...sshArgs()], sshd.env);

/**
 * rsync's itemized differences, checksums compared: none means the tree is the source as it was,
 * hard links included (owners too with `owners`; a restore written by the test user owns all it wrote).
 */
function differences(source: string, tree: string, owners = true): string[] {
  const r = rsync([owners ? '-rlptgoDHn' : '-rlptDHn', '--checksum', '--itemize-changes', '--delete', source + '/', tree + '/']);
  return r.stdout.split('\n').filter((line) => line.trim() !== '');
}

/** A target path the test user may create, new for each call. */
let targets = 0;
function theirTarget(): string {
  return join(theirs, `target-${++targets}`);
}

describe('lb restore from a remote repository into a local directory', () => {
  it('gives back the latest snapshot, an older one and a --path subtree as the source was, owners by name', () => {
    const latest = join(work, 'from-latest');
    const r = restore([remote(repo), latest]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const local = lb(['restore', repo, join(work, 'from-latest-here')]);
    expect(r.stdout).toBe(local.stdout.replace('from-latest-here', 'from-latest'));
    expect(differences(asTaken[1]!, latest)).toEqual([]);
    expect(lstatSync(join(latest, 'hard', 'first')).ino).toBe(lstatSync(join(latest, 'hard', 'second')).ino);
    expect(lstatSync(join(latest, 'big', 'one')).ino).not.toBe(lstatSync(join(latest, 'big', 'two')).ino);

    const older = join(work, 'from-older');
    const o = restore([remote(repo), names[0]!, older, '--json']);
    expect(o.status, o.stderr).toBe(0);
    expect(JSON.parse(o.stdout)).toMatchObject({ status: 'ok', snapshot: names[0], problems: [] });
    expect(differences(asTaken[0]!, older)).toEqual([]);

    const part = join(work, 'from-part');
    const p = restore([remote(repo), part, '--path', 'albums/summer-2026', '--path', 'hard']);
    expect(p.status, p.stderr).toBe(0);
    expect(readdirSync(part).sort()).toEqual(['albums', 'hard']);
    expect(readdirSync(join(part, 'albums'))).toEqual(['summer-2026']);
    for (const sub of ['albums/summer-2026', 'hard']) expect(differences(join(asTaken[1]!, sub), join(part, sub))).toEqual([]);
  });

  it('gives a content sent for a path it could not write to a later path with that content (--overwrite, a symlink in the way)', () => {
    const target = join(work, 'from-overwrite');
    const elsewhere = join(work, 'from-overwrite-elsewhere');
    mkdirSync(target);
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, join(target, 'albums')); // where the snapshot has the directory of the content's first path
    const r = restore([remote(repo), target, '--overwrite']);
    expect(r.stderr).toBe('lb: albums: a symlink is in the way of this directory; left alone, with everything the snapshot holds beneath it\n');
    expect(r.status).toBe(3);
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(readFileSync(join(target, 'zz-copy.jpg'), 'utf8')).toBe('x'.repeat(20000));
    expect(readdirSync(target).filter((name) => name.startsWith('.lb-'))).toEqual([]);
    expect(differences(join(asTaken[1]!, 'big'), join(target, 'big'))).toEqual([]);
  });

  it('brings a content shared by five paths across the wire once', () => {
    const target = join(work, 'from-big');
    const r = restore([remote(repo), target, '--path', 'big', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { files: number; bytes: number; wire: { sent: number; received: number } };
    expect(summary).toMatchObject({ files: 5, bytes: 5 * BIG });
    expect(summary.wire.sent + summary.wire.received).toBeGreaterThan(BIG);
    expect(summary.wire.sent + summary.wire.received).toBeLessThan(2 * BIG);
    expect(differences(join(asTaken[1]!, 'big'), join(target, 'big'))).toEqual([]);
  });

  it("turns Nagle's algorithm off on its SSH connection (ssh2 writes a window adjust in pieces: held back, it stalled the feed ~20 ms a MB)", () => {
    const log = join(work, 'setsockopt.trace');
    const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=setsockopt', '-o', log, process.execPath, join(ROOT, 'bin', 'lb'), 'restore', remote(repo), join(work, 'nagle'), '--dry-run', ...sshArgs()], {
      encoding: 'utf8',
      env: { ...process.env, ...sshd.env },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(log, 'utf8')).toMatch(/setsockopt\(\d+, SOL_TCP, TCP_NODELAY, \[1\], 4\) = 0/);
  });
});

describe('lb restore from a local repository into a remote directory', () => {
  it('gives back the latest snapshot, an older one and a --path subtree as the source was, all owned by the remote user', () => {
    const latest = theirTarget();
    const r = restore([repo, remote(latest)]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const local = lb(['restore', repo, join(work, 'to-latest-here')]);
    expect(r.stdout).toBe(local.stdout.replace(join(work, 'to-latest-here'), remote(latest)));
    expect(differences(asTaken[1]!, latest, false)).toEqual([]);
    expect(lstatSync(join(latest, 'hard', 'first')).ino).toBe(lstatSync(join(latest, 'hard', 'second')).ino);
    expect(lstatSync(join(latest, 'sealed')).uid).toBe(uid);

    const older = theirTarget();
    expect(restore([repo, names[0]!, remote(older)]).status).toBe(0);
    expect(differences(asTaken[0]!, older, false)).toEqual([]);

    const part = theirTarget();
    const p = restore([repo, remote(part), '--path', 'albums']);
    expect(p.status, p.stderr).toBe(0);
    expect(readdirSync(part)).toEqual(['albums']);
    expect(readdirSync(join(part, 'albums'), { encoding: 'buffer' })).toContainEqual(LATIN1);
    expect(differences(join(asTaken[1]!, 'albums'), join(part, 'albums'), false)).toEqual([]);
  });

  it('sends a content shared by five paths across the wire once', () => {
    const target = theirTarget();
    const r = restore([repo, remote(target), '--path', 'big', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { files: number; wire: { sent: number; received: number } };
    expect(summary.files).toBe(5);
    expect(summary.wire.sent + summary.wire.received).toBeGreaterThan(BIG);
    expect(summary.wire.sent + summary.wire.received).toBeLessThan(2 * BIG);
    expect(differences(join(asTaken[1]!, 'big'), join(target, 'big'), false)).toEqual([]);
  });
});

describe('lb restore over SSH, what goes wrong', () => {
  it('leaves out a damaged file, says so as locally and exits 5, both ways', () => {
    const damaged = join(work, 'damaged');
    expect(spawnSync('cp', ['-a', repo, damaged]).status).toBe(0);
    const object = join(damaged, names[1]!, 'tree', 'albums', 'summer-2026', 'IMG_2.jpg');
    const bytes = readFileSync(object);
    bytes.writeUInt8(bytes[0]! ^ 0xff, 0);
    writeFileSync(object, bytes); // in place: the object's other links see it too
    const line = /^lb: albums\/summer-2026\/IMG_2\.jpg: its content in the repository does not match its SHA-256 [0-9a-f]{64} \(a damaged object\); left out\n$/;
    const here = lb(['restore', damaged, join(work, 'damaged-here')]);
    expect(here.status).toBe(5);
    expect(here.stderr).toMatch(line);
    for (const [from, to, owners] of [[remote(damaged), join(work, 'damaged-from'), true], [damaged, theirTarget(), false]] as const) {
      const r = restore([from, owners ? to : remote(to)]);
      expect(r.stderr).toBe(here.stderr);
      expect(r.status).toBe(5);
      expect(differences(asTaken[1]!, to, owners)).toEqual(['>f+++++++++ albums/summer-2026/IMG_2.jpg']);
    }
  });

  it('refuses each bad input in one line, exit status 2, writing nothing', () => {
    const full = theirTarget();
    mkdirSync(full);
    writeFileSync(join(full, 'keep'), 'mine');
    const fresh = theirTarget();
    // Where the repository is remote, the snapshot and --path are checked there: the same line as here.
    for (const [where, args] of [
      [repo, ['2099']],
      [repo, [names[0]!.slice(0, 4)]],
      [repo, ['--path', 'albums/winter']],
      [join(work, 'src'), []],
    ] as const) {
      const here = lb(['restore', where, ...args, join(work, 'none')]);
      expect(here.status).toBe(2);
      expect(here.stderr.split('\n')).toHaveLength(2);
      const there = restore([remote(where), ...args, join(work, 'none')]);
      expect(there.stderr).toBe(here.stderr);
      expect(there.status).toBe(2);
    }
    const cases: [string[], RegExp][] = [
      [[remote(repo), join(repo, 'inside')], /^lb: \S+ is inside the repository \S+; restore somewhere outside it\n$/],
      [[repo, remote(full)], /^lb: \S+ is not empty; restore into a new or empty directory, or give --overwrite/],
      [[repo, remote(join(repo, 'inside'))], /^lb: \S+ is inside the repository lb reads; restore somewhere outside it\n$/],
      [[repo, remote(join(theirs, 'no', 'parent'))], /its parent directory \S+ does not exist/],
      [[remote(repo), remote(fresh)], /cannot both be remote/],
    ];
    for (const [args, message] of cases) {
      const r = restore(args);
      expect(r.stderr, args.join(' ')).toMatch(message);
      expect(r.stderr.split('\n'), args.join(' ')).toHaveLength(2);
      expect(r.status, args.join(' ')).toBe(2);
    }
    expect(existsSync(join(work, 'none'))).toBe(false);
    expect(existsSync(join(repo, 'inside'))).toBe(false);
    expect(existsSync(fresh)).toBe(false);
    expect(readdirSync(full)).toEqual(['keep']);
  });

  it('--dry-run lists what it would write, as locally, and writes nothing, both ways', () => {
    const local = lb(['restore', repo, join(work, 'dry'), '--dry-run', '--path', 'albums']);
    expect(local.status, local.stderr).toBe(0);
    const target = theirTarget();
    for (const [from, to] of [[remote(repo), join(work, 'dry')], [repo, remote(target)]]) {
      const r = restore([from!, to!, '--dry-run', '--path', 'albums']);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(local.stdout);
      expect(r.status).toBe(0);
    }
    expect(existsSync(join(work, 'dry'))).toBe(false);
    expect(existsSync(target)).toBe(false);
  });
});

describe('a tampered agent feeding a restore', () => {
  let hostileBundle: string;
  beforeAll(async () => {
    hostileBundle = join(sshd.dir, 'hostile-agent.cjs');
    await build({ entryPoints: [join(ROOT, 'test', 'hostile-remote-agent.ts')], outfile: hostileBundle, bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'warning' });
  });

  /** Where lb caches its agent in the test user's home: named by the bundle's hash, as src/transport/ssh.ts names it. */
  function cachedAgentPath(): string {
    const hash = createHash('sha256').update(readFileSync(join(ROOT, 'dist', 'agent.cjs'))).digest('hex').slice(0, 20);
    return join(USER_HOME, '.cache', 'lb', `agent-${hash}.cjs`);
  }

  const cases: [RestoreAttack, RegExp][] = [
    ['restore-dot-dot', /\(peer sent an unsafe path "(\.\.\/)+[^"]+\/planted"\)/],
    ['restore-unwritten-reference', /\(peer referred to "never-written", where no content of [0-9a-f]{64} was written\)/],
    ['restore-overlong', /\(peer sent more data than the file it announced\)/],
    ['restore-zero-overrun', /\(peer sent a zero run beyond the file it announced\)/],
  ];
  for (const [attack, message] of cases) {
    it(`refuses a feed that ${attack.slice('restore-'.length).replace(/-/g, ' ')}s: one line, exit 1, nothing written outside the target`, () => {
      expect(restore([remote(repo), join(work, 'warm'), '--dry-run']).status).toBe(0); // the honest agent is pushed and cached first
      const planted = cachedAgentPath();
      const outside = join(work, `outside-${attack}`);
      mkdirSync(outside);
      writeFileSync(planted, readFileSync(hostileBundle));
      const plan: AttackPlan = { attack, outside };
      writeFileSync(`${planted}.attack.json`, JSON.stringify(plan));
      for (const path of [planted, `${planted}.attack.json`]) chownSync(path, uid, uid);
      try {
        const target = join(work, `attacked-${attack}`);
        const r = restore([remote(repo), target]);
        expect(r.stderr).toMatch(new RegExp(`^lb: refused what ${USER}@127\\.0\\.0\\.1 sent ${message.source}; the restore stopped there\\. .*agent-\\*\\.cjs.*\n$`));
        expect(r.status).toBe(1);
        expect(readdirSync(outside)).toEqual([]);
        expect(readdirSync(target).filter((name) => name !== 'honest')).toEqual([]);
      } finally {
        if (existsSync(`${planted}.pid`)) killIfAlive(Number(readFileSync(`${planted}.pid`, 'utf8')));
        for (const path of [planted, `${planted}.attack.json`, `${planted}.pid`]) rmSync(path, { force: true });
      }
    });
  }
});
