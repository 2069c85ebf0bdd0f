// Runs that are interrupted or lose their peer: Ctrl-C and SIGTERM on lb, a
// client killed outright under a remote agent, and pulls from a remote source
// that cannot be backed up. Real processes throughout: lb and its agents, a
// pseudo-terminal (python3's pty module), and the real sshd of test/sshd.ts.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LB, backup, rsyncDifferences, snapshots, tempDir } from './helpers.js';
import { startSshd, type Sshd } from './sshd.js';

const INTERRUPTED = 'lb: interrupted; no snapshot was made\n';

/** 12,000 small files of random content: seconds of work, so a signal lands mid-run. */
function bigSource(root: string): void {
  for (let d = 0; d < 30; d++) {
    mkdirSync(join(root, `album-${d}`), { recursive: true });
    for (let i = 0; i < 400; i++) writeFileSync(join(root, `album-${d}`, `img-${i}.jpg`), randomBytes(1024));
  }
}

interface Ended {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function startLb(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [LB, ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const ended = new Promise<Ended>((resolve) => child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr })));
  return { child, ended };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A running process (a zombie is not running); reads /proc, as the lock does. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The pid of the run holding the repository's lock (the repository side: an agent, or lb itself when pulling), once it holds it. */
async function lockHolder(repo: string, timeoutMs = 30_000): Promise<number> {
  const lock = join(repo, '.lb', 'lock');
  for (const start = Date.now(); Date.now() - start < timeoutMs; await sleep(20)) {
    try {
      return (JSON.parse(readFileSync(lock, 'utf8')) as { pid: number }).pid;
    } catch {
      // not taken yet, or being written
    }
  }
  throw new Error(`no lock in ${repo} after ${timeoutMs} ms`);
}

/** The parent of a process, or null once it is gone. */
function parentOf(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/**
 * Processes running lb's agent as the source side of a pull, under this test's sshd (the remote here is this
 * machine; a test pulls one source at a time, and pushes none through this sshd meanwhile). Their role is named
 * by their first message, not on their command line, so they are told apart by their ancestry.
 */
function remoteSourceAgents(sshdPid: number): number[] {
  const found: number[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let args: string[];
    try {
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (!args.some((arg) => /agent-[0-9a-f]+\.cjs$/.test(arg))) continue;
    for (let up = parentOf(Number(pid)); up !== null && up > 1; up = parentOf(up)) {
      if (up === sshdPid) {
        if (running(Number(pid))) found.push(Number(pid));
        break;
      }
    }
  }
  return found;
}

/** Some time into the run, which lasts seconds: the signal lands in the middle of its work. */
const underWay = () => sleep(500);

/** Every path under `root` with its size and mtime: "unchanged" means this is equal before and after. */
function listing(root: string): string[] {
  const out: string[] = [];
  const visit = (path: string) => {
    const stat = statSync(path);
    out.push(`${path} ${stat.size} ${stat.mtimeMs}`);
    if (stat.isDirectory()) for (const name of readdirSync(path).sort()) visit(join(path, name));
  };
  visit(root);
  return out;
}

describe('an interrupted local backup', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const)('on %s: exits %i saying so, after its agent is gone and the lock released; a rerun then succeeds', async (signal, status) => {
    const work = tempDir();
    const source = join(work, 'photos');
    bigSource(source);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    const run = startLb([source, repo, '--catalog', catalog]);
    const agent = await lockHolder(repo);
    expect(agent).not.toBe(run.child.pid);
    await underWay();
    run.child.kill(signal);
    const ended = await run.ended;
    expect(ended.status, ended.stderr).toBe(status);
    expect(ended.stderr.endsWith(INTERRUPTED), ended.stderr).toBe(true);
    // Right as lb exits, not some time later: a rerun must not find the agent still holding the repository.
    expect(running(agent)).toBe(false);
    expect(existsSync(join(repo, '.lb', 'lock'))).toBe(false);
    expect(snapshots(repo)).toEqual([]);
    expect(existsSync(join(repo, 'latest'))).toBe(false);

    const rerun = backup(source, repo, catalog);
    expect(rerun.created).toBe(true);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it.each(['SIGTERM', 'SIGHUP'] as const)('an agent stopped by %s aborts: nothing published, lock released, leftovers cleared; lb says so in one line', async (signal) => {
    const work = tempDir();
    const source = join(work, 'photos');
    bigSource(source);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    const run = startLb([source, repo, '--catalog', catalog]);
    const agent = await lockHolder(repo);
    await underWay();
    process.kill(agent, signal);
    const ended = await run.ended;
    expect(ended.status, ended.stderr).toBe(1);
    expect(ended.stderr).toBe(`lb: the repository side (lb agent) was stopped by ${signal}; no snapshot was made\n`);
    expect(running(agent)).toBe(false);
    expect(existsSync(join(repo, '.lb', 'lock'))).toBe(false);
    expect(readdirSync(join(repo, '.lb', 'tmp'))).toEqual([]);
    expect(snapshots(repo)).toEqual([]);
    expect(backup(source, repo, catalog).created).toBe(true);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('gives the terminal back after Ctrl-C: the cursor shown and line wrap on again, then the message', async () => {
    const work = tempDir();
    const source = join(work, 'photos');
    bigSource(source);
    const repo = join(work, 'repo');
    // On a pseudo-terminal, so the progress bar runs; Ctrl-C typed once the run is under way.
    const typist = `
import os, pty, select, sys, time
lock, argv = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out, typed = b'', False
while True:
    if not typed and os.path.exists(lock):
        time.sleep(0.5)
        os.write(fd, b'\\x03')
        typed = True
    if select.select([fd], [], [], 0.05)[0]:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        out += data
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(out)
sys.exit(os.waitstatus_to_exitcode(status))
`;
    const r = spawnSync('python3', ['-c', typist, join(repo, '.lb', 'lock'), process.execPath, LB, source, repo, '--catalog', join(work, 'c.sqlite')], {
      encoding: 'latin1',
      timeout: 60_000,
    });
    expect(r.status, r.stdout).toBe(130);
    const out = r.stdout;
    expect(out).toContain('\x1b[?25l'); // the bar did hide the cursor
    expect(out.lastIndexOf('\x1b[?25h')).toBeGreaterThan(out.lastIndexOf('\x1b[?25l'));
    expect(out.lastIndexOf('\x1b[?7h')).toBeGreaterThan(out.lastIndexOf('\x1b[?7l'));
    // The modes come back (and the bar never hides the cursor again), then the one line, and nothing after it.
    // Not anchored on the "^C" the terminal echoes: under load the tty may not echo it before lb's output.
    expect(out).toMatch(/\x1b\[\?25h\x1b\[\?7h(?:(?!\x1b\[\?25l)[\s\S])*lb: interrupted; no snapshot was made\r\n$/);
    expect(out.split('lb: interrupted')).toHaveLength(2);
    expect(existsSync(join(repo, '.lb', 'lock'))).toBe(false);
  });
});

describe('interruptions and failures over SSH', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(() => sshd?.stop());

  const sshArgs = () => ['--ssh-p', String(sshd.port)];

  function pull(remotePath: string, repo: string) {
    return spawnSync(process.execPath, [LB, `root@127.0.0.1:${remotePath}`, repo, ...sshArgs()], {
      encoding: 'utf8',
      env: { ...process.env, ...sshd.env },
      timeout: 20_000,
    });
  }

  it('refuses a pull from a remote path that does not exist, at once, creating nothing here', () => {
    const work = tempDir();
    const repo = join(work, 'pulled');
    const started = Date.now();
    const r = pull(join(work, 'typo'), repo);
    expect(r.error).toBeUndefined(); // not killed by the timeout
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`lb: source root@127.0.0.1:${join(work, 'typo')} does not exist; give the directory to back up\n`);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(existsSync(repo)).toBe(false);
  });

  it('refuses a pull from a remote file, leaving an existing repository as it was', () => {
    const work = tempDir();
    const source = join(work, 'photos');
    mkdirSync(source);
    writeFileSync(join(source, 'a.jpg'), 'a photo');
    const repo = join(work, 'pulled');
    backup(source, repo, join(work, 'c.sqlite'));
    const before = listing(repo);
    const file = join(source, 'a.jpg');
    const r = pull(file, repo);
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`lb: source root@127.0.0.1:${file} is not a directory; give the directory to back up\n`);
    expect(listing(repo)).toEqual(before);
  });

  it('pulls from a remote path that is a symlink to a directory, as a local source would (it used to hang)', () => {
    const work = tempDir();
    const source = join(work, 'photos');
    mkdirSync(source);
    writeFileSync(join(source, 'a.jpg'), 'a photo');
    symlinkSync(source, join(work, 'current'));
    const repo = join(work, 'pulled');
    const r = pull(join(work, 'current'), repo);
    expect(r.error).toBeUndefined();
    expect(r.status, r.stderr).toBe(0);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('Ctrl-C while connecting ends the run at once, with nothing written', async () => {
    const work = tempDir();
    mkdirSync(join(work, 'src'));
    // A host that accepts the connection and never speaks: lb waits for its handshake (20 s by default).
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const run = startLb([join(work, 'src'), `root@127.0.0.1:${join(work, 'repo')}`, '--ssh-p', String(port)], { HOME: join(work, 'home') });
      await sleep(1000);
      const signalled = Date.now();
      run.child.kill('SIGINT');
      const ended = await run.ended;
      expect(ended.status, ended.stderr).toBe(130);
      expect(ended.stderr).toBe(INTERRUPTED);
      expect(Date.now() - signalled).toBeLessThan(5000);
      expect(existsSync(join(work, 'repo'))).toBe(false);
    } finally {
      silent.close();
    }
  });

  it('a remote agent whose client is killed outright stops within seconds, releasing the lock; a rerun succeeds', async () => {
    const work = tempDir();
    const source = join(work, 'photos');
    bigSource(source);
    const repo = join(work, 'pushed');
    const target = `root@127.0.0.1:${repo}`;
    const run = startLb([source, target, '--catalog', join(work, 'c.sqlite'), ...sshArgs()], sshd.env);
    const agent = await lockHolder(repo);
    await underWay();
    run.child.kill('SIGKILL');
    await run.ended;
    const killed = Date.now();
    while ((running(agent) || existsSync(join(repo, '.lb', 'lock'))) && Date.now() - killed < 10_000) await sleep(50);
    expect(running(agent)).toBe(false);
    expect(existsSync(join(repo, '.lb', 'lock'))).toBe(false);

    const rerun = spawnSync(process.execPath, [LB, source, target, '--catalog', join(work, 'c.sqlite'), ...sshArgs()], {
      encoding: 'utf8',
      env: { ...process.env, ...sshd.env },
    });
    expect(rerun.status, rerun.stderr).toBe(0);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it.each([
    ['a push', 'push'],
    ['a pull', 'pull'],
  ] as const)('SIGTERM during %s: exit 143 once the repository side is gone and its lock released; a rerun succeeds', async (_, direction) => {
    const work = tempDir();
    const source = join(work, 'photos');
    bigSource(source);
    const repo = join(work, 'repo');
    const [from, to] = direction === 'push' ? [source, `root@127.0.0.1:${repo}`] : [`root@127.0.0.1:${source}`, repo];
    const run = startLb([from, to, '--catalog', join(work, 'c.sqlite'), ...sshArgs()], sshd.env);
    const holder = await lockHolder(repo);
    await underWay();
    if (direction === 'pull') expect(remoteSourceAgents(sshd.pid)).toHaveLength(1); // so that its absence later means something
    run.child.kill('SIGTERM');
    const ended = await run.ended;
    expect(ended.status, ended.stderr).toBe(143);
    expect(ended.stderr).toBe(INTERRUPTED);
    if (direction === 'pull') expect(holder).toBe(run.child.pid); // the repository side ran in lb itself
    // A remote agent may take a moment longer to hear of it (lb waits for it only briefly).
    const remoteAgentGone = () => (direction === 'push' ? !running(holder) : remoteSourceAgents(sshd.pid).length === 0);
    for (const stopped = Date.now(); !remoteAgentGone() && Date.now() - stopped < 10_000; ) await sleep(50);
    expect(remoteAgentGone()).toBe(true);
    expect(running(holder)).toBe(false);
    expect(existsSync(join(repo, '.lb', 'lock'))).toBe(false);
    expect(snapshots(repo)).toEqual([]);

    const rerun = spawnSync(process.execPath, [LB, from, to, '--catalog', join(work, 'c.sqlite'), ...sshArgs()], {
      encoding: 'utf8',
      env: { ...process.env, ...sshd.env },
    });
    expect(rerun.status, rerun.stderr).toBe(0);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });
});
