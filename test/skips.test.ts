// What the source walk cannot take or leaves out by design: unreadable paths make the
// run partial and are named once; special files are only counted; an unlistable source
// root is refused; the walk never enters the repository it writes; and a pull reports
// exactly what a push of the same source reports. Unprivileged cases run as a user the
// test creates (tests run as root, and root reads everything).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameDecoder, FrameWriter } from '../src/protocol/frames.js';
import { PROTOCOL_VERSION, decodeAgentMessage, encodeEntry, encodeSourceMessage, type AgentMessage } from '../src/protocol/messages.js';
import { LB, ROOT, lb, mountOrSkip, snapshots, tempDir, umount, type LbRun } from './helpers.js';
import { startSshd, type Sshd } from './sshd.js';
import { createTestUser, removeTestUser } from './test-user.js';

// A name of this run's own: two test runs on one machine (two checkouts) must not share, nor remove, each other's user.
const USER = `lbskips${process.pid % 100_000}`;
const USER_HOME = `/tmp/${USER}-home`;
let uid = 0;

beforeAll(() => {
  ({ uid } = createTestUser(USER, USER_HOME));
});
afterAll(() => {
  removeTestUser(USER, USER_HOME);
});

/** A scratch directory the test user owns (root can still do anything in it). */
function userWork(): string {
  const work = tempDir();
  chownSync(work, uid, uid);
  chmodSync(work, 0o755);
  return work;
}

function chownTree(path: string): void {
  expect(spawnSync('chown', ['-R', USER, path]).status).toBe(0);
}

/** lb run as the test user, with its catalog in `work`. */
function lbAsUser(work: string, args: string[]): LbRun {
  const r = spawnSync('runuser', ['-u', USER, '--', process.execPath, LB, ...args], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, HOME: USER_HOME, XDG_STATE_HOME: join(work, 'state') },
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function logOf(repo: string): string {
  return readFileSync(join(repo, 'latest', 'log'), 'utf8');
}

/** The lines of a run's output (stdout's, then stderr's) that are about what was left out. */
function skipLines(run: LbRun): string[] {
  return (run.stdout + run.stderr).split('\n').filter((line) => /special file|could not be read|warning/.test(line));
}

/** private/ cannot be listed, secret cannot be read, a FIFO: owned by the test user. */
function troubledSource(work: string): string {
  const src = join(work, 'src');
  mkdirSync(join(src, 'private'), { recursive: true });
  mkdirSync(join(src, 'public'));
  writeFileSync(join(src, 'private', 'diary'), 'dear diary');
  writeFileSync(join(src, 'public', 'notes'), 'notes');
  writeFileSync(join(src, 'secret'), 'hidden');
  expect(spawnSync('mkfifo', [join(src, 'fifo')]).status).toBe(0);
  chownTree(src);
  chmodSync(join(src, 'private'), 0o000);
  chmodSync(join(src, 'secret'), 0o000);
  return src;
}

describe('what the walk cannot read', () => {
  it('makes the run partial: an unlistable directory and an unreadable file are named once, in the log and in --json skipped', () => {
    const work = userWork();
    const src = troubledSource(work);
    const repo = join(work, 'repo');
    const r = lbAsUser(work, [src, repo, '--json']);
    expect(r.status, r.stderr).toBe(3);
    const summary = JSON.parse(r.stdout);
    expect(summary.status).toBe('partial');
    expect(summary.skipped).toEqual([
      { path: 'fifo', kind: 'special', reason: 'FIFO skipped' },
      { path: 'private', kind: 'unreadable', reason: 'cannot list its contents: permission denied (EACCES)' },
      { path: 'secret', kind: 'unreadable', reason: expect.stringMatching(/^cannot read: .*permission denied/) },
    ]);
    expect(summary.warnings).toHaveLength(2);
    // One warning each, not one from each side.
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines.filter((l) => l.includes('"private"'))).toEqual(['lb: warning: "private": cannot list its contents: permission denied (EACCES)']);
    expect(lines.filter((l) => l.includes('secret'))).toHaveLength(1);
    expect(logOf(repo)).toContain('warning: "private": cannot list its contents: permission denied (EACCES)');
    expect(logOf(repo)).toMatch(/warning: "secret": cannot read: .*permission denied/);
    // As documented: the directory is kept, empty; what it holds is missing.
    const tree = join(repo, 'latest', 'tree');
    expect(readdirSync(tree).sort()).toEqual(['private', 'public']);
    expect(readdirSync(join(tree, 'private'))).toEqual([]);
  });

  it('says what a partial snapshot is missing under --quiet too: a cron run must not go silent', () => {
    const work = userWork();
    const src = troubledSource(work);
    const r = lbAsUser(work, [src, join(work, 'repo'), '--quiet']);
    expect(r.status).toBe(3);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('lb: warning: '))).toHaveLength(2);
    expect(lines[lines.length - 1]).toBe('lb: 2 path(s) could not be read and are missing from this snapshot');
    expect(r.stderr).not.toMatch(/fifo|special/i);
  });

  it('refuses a source root it cannot list, in one line, exit 1, writing nothing', () => {
    const work = userWork();
    const closed = join(work, 'closed');
    mkdirSync(join(closed, 'inside'), { recursive: true });
    writeFileSync(join(closed, 'inside', 'f'), 'root only');
    chmodSync(closed, 0o700); // root's, like /root
    const before = readdirSync(work).sort();
    const r = lbAsUser(work, [closed, join(work, 'repo')]);
    expect(r.stderr).toBe(`lb: cannot list the source ${closed}: permission denied (EACCES); nothing was backed up\n`);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(readdirSync(work).sort()).toEqual(before); // no repository, no catalog
  });

  it('names a path longer than PATH_MAX and makes the run partial', () => {
    const work = tempDir();
    const src = join(work, 's');
    const repo = join(work, 'r');
    const long = 'n'.repeat(250);
    const deep = Array<string>(16).fill(long).join('/');
    const far = `${deep}/${'f'.repeat(250)}`;
    // The deepest directory lb can stat, also as it is built in the repository's .lb/tmp/<snapshot>/tree/;
    // the one beneath it only a relative path reaches.
    expect(`${src}/${deep}/near`.length).toBeLessThan(4096);
    expect(`${repo}/.lb/tmp/2026.01.01-00.00.00/tree/${deep}/near`.length).toBeLessThan(4096);
    expect(`${src}/${far}`.length).toBeGreaterThan(4096);
    try {
      // The shell walks down in steps (cd -P keeps no absolute path), as deep trees get made.
      const build = spawnSync(
        'sh',
        ['-ec', 'cd -P "$1"; mkdir s; cd -P s; for i in $(seq 16); do mkdir "$2"; cd -P "$2"; done; echo near > near; mkdir "$3"; cd -P "$3"; echo far > far', 'sh', work, long, 'f'.repeat(250)],
        { encoding: 'utf8' },
      );
      expect(build.status, build.stderr).toBe(0);
      const r = lb([src, repo, '--json', '--catalog', join(work, 'catalog.sqlite')]);
      expect(r.status, r.stderr).toBe(3);
      const summary = JSON.parse(r.stdout);
      expect(summary.status).toBe('partial');
      expect(summary.skipped).toEqual([{ path: far, kind: 'unreadable', reason: 'cannot stat: name too long (ENAMETOOLONG)' }]);
      expect(summary.warnings).toEqual([`"${far}": cannot stat: name too long (ENAMETOOLONG)`]);
      expect(r.stderr).toBe(`lb: warning: "${far}": cannot stat: name too long (ENAMETOOLONG)\n`);
      expect(logOf(repo)).toContain(`warning: "${far}": cannot stat`);
      expect(readFileSync(join(repo, 'latest', 'tree', deep, 'near'), 'utf8')).toBe('near\n');
    } finally {
      spawnSync('rm', ['-rf', src]); // GNU rm walks relative to directories; Node's rmSync cannot reach that deep
    }
  });
});

describe('many unreadable files with long names', () => {
  it('make a partial snapshot, named one warning line each, however long and however many (the result still fits its frame)', () => {
    const work = userWork();
    const src = join(work, 'src');
    // Directories of 250-byte names down to about 3,700 bytes, then 2,100 unreadable files of 250-byte
    // names holding a newline: each warning quotes a path and an error naming it again, over 8 KiB, and
    // all of them together are more than a message may hold.
    const level = 'd'.repeat(250);
    let deep = src;
    while (deep.length < 3700) deep = join(deep, level);
    mkdirSync(deep, { recursive: true });
    const count = 2100;
    for (let i = 0; i < count; i++) writeFileSync(join(deep, `${String(i).padStart(4, '0')}\n${'n'.repeat(245)}`), 'x');
    writeFileSync(join(src, 'readable'), 'kept');
    chownTree(src);
    for (let i = 0; i < count; i++) chmodSync(join(deep, `${String(i).padStart(4, '0')}\n${'n'.repeat(245)}`), 0o000);
    const repo = join(work, 'repo');
    const r = lbAsUser(work, [src, repo, '--json']);
    expect(r.status, r.stderr.slice(0, 300)).toBe(3);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ status: 'partial', created: true });
    expect(summary.warnings.length).toBeGreaterThan(0);
    expect(summary.warnings.length).toBeLessThan(count); // the first ones: --json stays one message
    const warnings = r.stderr.split('\n').filter((line) => line.startsWith('lb: warning: '));
    expect(warnings).toHaveLength(count); // every one said, each on its own line
    expect(r.stderr.split('\n').filter((line) => line !== '' && !line.startsWith('lb: '))).toEqual([]);
    expect(logOf(repo).split('\n').filter((line) => line.startsWith('warning: '))).toHaveLength(count);
    expect(readFileSync(join(repo, 'latest', 'tree', 'readable'), 'utf8')).toBe('kept');
  });
});

describe('special files', () => {
  it('are counted in the summary, the log and --json, not warned about, and -q prints nothing', () => {
    const work = tempDir();
    const src = join(work, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'data');
    expect(spawnSync('mkfifo', [join(src, 'fifo')]).status).toBe(0);
    expect(spawnSync('mknod', [join(src, 'null'), 'c', '1', '3']).status).toBe(0);
    const repo = join(work, 'repo');
    const catalog = ['--catalog', join(work, 'catalog.sqlite')];

    const quiet = lb([src, repo, '-q', ...catalog]);
    expect([quiet.status, quiet.stdout, quiet.stderr]).toEqual([0, '', '']);
    expect(logOf(repo)).toContain('\n2 special files skipped (FIFOs, sockets, devices)\n');
    expect(logOf(repo)).not.toContain('warning');

    const plain = lb([src, repo, '--always', ...catalog]);
    expect(plain.status).toBe(0);
    expect(plain.stderr).toBe('');
    expect(plain.stdout).toContain('\n  2 special files skipped (FIFOs, sockets, devices)\n');
    expect(plain.stdout).not.toMatch(/fifo|null/);

    const verbose = lb([src, repo, '--always', '-v', ...catalog]);
    expect(verbose.stderr).toBe('');
    expect(verbose.stdout).toContain('skip   fifo: FIFO skipped\n');
    expect(verbose.stdout).toContain('skip   null: character device skipped\n');

    const json = lb([src, repo, '--always', '--json', '-q', ...catalog]);
    expect(json.stderr).toBe('');
    const summary = JSON.parse(json.stdout);
    expect(summary.status).toBe('ok');
    expect(summary.warnings).toEqual([]);
    expect(summary.skipped).toEqual([
      { path: 'fifo', kind: 'special', reason: 'FIFO skipped' },
      { path: 'null', kind: 'special', reason: 'character device skipped' },
    ]);
  });
});

describe('the repository is never walked into', () => {
  it('refuses / as the source of any repository on this machine, however it is spelled', () => {
    // As the test user, beneath a directory it may not write: were the check to let / through,
    // lb would stop at the write check (exit 1) rather than back up the whole system.
    const work = userWork();
    const locked = join(work, 'locked');
    mkdirSync(locked, { mode: 0o555 });
    symlinkSync('/', join(work, 'root-link'));
    const repo = join(locked, 'repo');
    for (const source of ['/', '//', '/.', '/tmp/..', join(work, 'root-link'), join(work, 'root-link') + '/']) {
      for (const repository of [repo, repo + '/', `${work}/../x/../${work.split('/').pop()!}/locked//repo`]) {
        const r = lbAsUser(work, [source, repository]);
        expect(r.stderr, `${source} ${repository}`).toMatch(/^lb: repository .* lies inside the source \/; choose a repository outside it\n$/);
        expect(r.status).toBe(2);
      }
    }
    expect(readdirSync(locked)).toEqual([]);
    expect(existsSync(join(work, 'state'))).toBe(false);
  });

  it('does not enter the repository through a bind mount inside the source, also when this run creates it', (ctx) => {
    const work = tempDir();
    const src = join(work, 'src');
    const outside = join(work, 'outside');
    mkdirSync(outside);
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'data');
    mountOrSkip(ctx, ['--bind', outside], join(src, 'mnt'));
    try {
      const repo = join(outside, 'repo'); // outside the source by its path, inside it through the mount
      const catalog = ['--catalog', join(work, 'catalog.sqlite')];
      for (const extra of [[], ['--always']]) {
        const r = lb([src, repo, '--json', ...catalog, ...extra]);
        expect(r.status, r.stderr).toBe(0);
        expect(JSON.parse(r.stdout).created).toBe(true);
        const tree = join(repo, 'latest', 'tree');
        expect(readdirSync(tree).sort()).toEqual(['f', 'mnt']);
        expect(readdirSync(join(tree, 'mnt'))).toEqual([]);
      }
      expect(snapshots(repo)).toHaveLength(2);
    } finally {
      umount(join(src, 'mnt'));
    }
  });
});

describe('pulling', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd();
    // The test user logs in with the test key: sshd reads the key file with that user's rights.
    chmodSync(sshd.dir, 0o711);
    chmodSync(join(sshd.dir, 'authorized_keys'), 0o644);
  });
  afterAll(() => sshd?.stop());

  /** A pull that hangs fails the test rather than the suite. */
  function pull(source: string, repo: string, extra: string[] = []): LbRun {
    const r = spawnSync(process.execPath, [LB, source, repo, '--ssh-p', String(sshd.port), ...extra], {
      encoding: 'utf8',
      env: { ...process.env, ...sshd.env },
      timeout: 60_000,
    });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
  }

  it('reports exactly what a push of the same source reports', () => {
    const work = userWork();
    const src = troubledSource(work);
    const pushedRepo = join(work, 'pushed');
    const pulledRepo = join(work, 'pulled');
    const pushed = lbAsUser(work, [src, pushedRepo]);
    const pulled = pull(`${USER}@127.0.0.1:${src}`, pulledRepo);
    expect(pushed.status, pushed.stderr).toBe(3);
    expect(pulled.status, pulled.stderr).toBe(3);
    expect(skipLines(pulled)).toEqual(skipLines(pushed));
    expect(skipLines(pulled)).toEqual([
      '  1 special file skipped (FIFOs, sockets, devices)',
      // stdout's summary first, then stderr: the warnings, and the last line that sums them up.
      'lb: warning: "private": cannot list its contents: permission denied (EACCES)',
      expect.stringMatching(/^lb: warning: "secret": cannot read: .*permission denied.*; not in this snapshot$/),
      'lb: 2 path(s) could not be read and are missing from this snapshot',
    ]);
    const pushedJson = JSON.parse(lbAsUser(work, [src, pushedRepo, '--json', '--always']).stdout);
    const pulledJson = JSON.parse(pull(`${USER}@127.0.0.1:${src}`, pulledRepo, ['--json', '--always']).stdout);
    expect(pulledJson.skipped).toHaveLength(3);
    expect(pulledJson.skipped).toEqual(pushedJson.skipped);
    expect(pulledJson.warnings).toEqual(pushedJson.warnings);
    expect(pulledJson.status).toBe('partial');
    expect(logOf(pulledRepo).split('\n').slice(2)).toEqual(logOf(pushedRepo).split('\n').slice(2));
  });

  it('refuses a remote source root it cannot list, writing nothing here', () => {
    const work = tempDir();
    const closed = join(work, 'closed');
    mkdirSync(closed, { mode: 0o700 });
    const r = pull(`${USER}@127.0.0.1:${closed}`, join(work, 'repo'));
    expect(r.stderr).toBe(`lb: cannot list the source ${closed}: permission denied (EACCES); nothing was backed up\n`);
    expect(r.status).toBe(1);
    expect(existsSync(join(work, 'repo'))).toBe(false);
  });

  it('does not walk into a repository on the same machine, as `lb localhost:/ /repo` would', () => {
    const work = tempDir();
    const src = join(work, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'f'), 'data');
    const repo = join(src, 'repo'); // inside the source; only the walk can tell, from here
    // Made by the first run, found by the second's walk at once.
    for (const extra of [[], ['--always']]) {
      const r = pull(`root@127.0.0.1:${src}`, repo, ['--json', ...extra]);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).created).toBe(true);
      expect(readdirSync(join(repo, 'latest', 'tree'))).toEqual(['f']);
    }
  });
});

describe('the repository side against a source that lies in its skips', () => {
  /** Sends raw messages after a hello to a fresh agent; returns its replies. */
  async function talk(repository: string, messages: object[]): Promise<AgentMessage[]> {
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'agent.cjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
    const writer = new FrameWriter(child.stdin);
    const decoder = new FrameDecoder();
    const replies: AgentMessage[] = [];
    child.stdout.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) if (f.type === 1) replies.push(decodeAgentMessage(f.message));
    });
    const options = { snapshotName: '2026.01.01-00.00.00', always: false, numericIds: false, verbose: false, quickCheck: false, sourceLabel: 'liar', purpose: 'backup' };
    for (const m of [{ t: 'hello', version: PROTOCOL_VERSION, repository, options }, ...messages]) await writer.send(m);
    writer.end();
    await new Promise((resolve) => child.on('close', resolve));
    return replies;
  }

  const root = { t: 'entries', first: 0, entries: [encodeEntry({ path: Buffer.alloc(0), type: 'dir', size: 0, mtimeNs: 0n, mode: 0o755, uid: 0, gid: 0 })] };

  it('takes a skip with a safe relative path into the result, and refuses any other', async () => {
    const work = tempDir();
    const honest = encodeSourceMessage({ t: 'skipped', path: Buffer.from('a/fifo'), kind: 'special', reason: 'FIFO skipped' });
    const replies = await talk(join(work, 'repo'), [root, honest, { t: 'end', incomplete: false }]);
    const done = replies.at(-1)!;
    expect(done.t === 'done' && [done.result.skipped, done.result.skipCounts]).toEqual([
      [{ path: 'a/fifo', kind: 'special', reason: 'FIFO skipped' }],
      { unreadable: 0, special: 1 },
    ]);
    for (const p of ['../escape', '/etc/passwd', '', 'a//b', 'a/./b']) {
      const lie = await talk(join(work, 'repo'), [root, { t: 'skipped', p, k: 'unreadable', r: 'lies' }, { t: 'end', incomplete: false }]);
      const last = lie.at(-1)!;
      expect(last.t === 'error' && last.message, p).toMatch(/^peer sent an unsafe path/);
    }
    expect(readdirSync(work)).toEqual(['repo']);
  });
});
