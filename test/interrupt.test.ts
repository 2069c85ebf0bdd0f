// Runs that are interrupted or lose their peer: Ctrl-C and SIGTERM on lb, a
// client killed outright under a remote agent, and pulls from a remote source
// that cannot be backed up. Real processes throughout: lb and its agents, a
// pseudo-terminal (python3's pty module), and the real sshd of test/sshd.ts.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
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
});
