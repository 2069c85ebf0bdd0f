// One run per repository at a time: a second run is refused at once, naming the
// holder; a lock left by a run that died (or whose pid was since reused) is
// taken over.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LB, backup, lb, rsyncDifferences, tempDir } from './helpers.js';
import { TracedRun, holdAt } from './traced-run.js';

function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

function makeRepository(work: string): { src: string; repo: string; catalog: string } {
  const src = join(work, 'src');
  mkdirSync(src);
  writeFileSync(join(src, 'a'), 'a');
  const repo = join(work, 'repo');
  const catalog = join(work, 'catalog.sqlite');
  backup(src, repo, catalog);
  writeFileSync(join(src, 'b'), 'b');
  return { src, repo, catalog };
}

describe('the repository lock', () => {
  it('refuses a second run within seconds, naming the first, which then completes', async () => {
    const work = tempDir();
    const { src, repo, catalog } = makeRepository(work);
    const slow = join(src, 'slow');
    writeFileSync(slow, randomBytes(3 * 1024 * 1024));
    // The first run reads `slow` a second per megabyte (strace delays those reads), holding the lock meanwhile.
    const first = spawn(
      'strace',
      ['-f', '-qq', '-o', '/dev/null', '-P', slow, '-e', 'trace=read', '-e', 'inject=read:delay_exit=1000000', process.execPath, LB, src, repo, '--catalog', catalog],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const firstExit = new Promise<number>((resolve) => first.on('close', (code) => resolve(code ?? -1)));
    const lock = join(repo, '.lb', 'lock');
    while (!existsSync(lock)) await new Promise((r) => setTimeout(r, 20));
    const holder = JSON.parse(readFileSync(lock, 'utf8')) as { pid: number };

    const startedAt = Date.now();
    const second = lb(['backup', src, repo, '--catalog', join(work, 'other.sqlite')]);
    expect(Date.now() - startedAt).toBeLessThan(5000);
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(
      new RegExp(`^lb: repository is in use by another lb run \\(pid ${holder.pid} on ${hostname()}, since \\d{4}-\\d\\d-\\d\\dT[^)]+\\); if that run is gone for good, remove .*lock\\n$`),
    );
    expect(await firstExit).toBe(0);
    expect(existsSync(lock)).toBe(false);
    expect(rsyncDifferences(src, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('takes over a lock whose holder died, or whose pid now belongs to another process', () => {
    const work = tempDir();
    const { src, repo, catalog } = makeRepository(work);
    const lock = join(repo, '.lb', 'lock');
    const dead = spawnSync('true').pid!;
    writeFileSync(lock, JSON.stringify({ host: hostname(), pid: dead, since: '2026-01-01T00:00:00.000Z' }));
    expect(lb(['backup', src, repo, '--catalog', catalog]).status).toBe(0);
    expect(existsSync(lock)).toBe(false);

    const sleeper = spawn('sleep', ['30']);
    try {
      const reused = { host: hostname(), pid: sleeper.pid!, since: '2026-01-01T00:00:00.000Z', started: '1' };
      writeFileSync(lock, JSON.stringify(reused));
      writeFileSync(join(src, 'c'), 'c');
      expect(lb(['backup', src, repo, '--catalog', catalog]).status).toBe(0);
      expect(existsSync(lock)).toBe(false);

      // The same live process with its true start time is a holder: refused, lock left alone.
      const live = { ...reused, started: startTime(sleeper.pid!) };
      writeFileSync(lock, JSON.stringify(live));
      const refused = lb(['backup', src, repo, '--catalog', catalog, '--always']);
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(new RegExp(`in use by another lb run \\(pid ${sleeper.pid} on `));
      expect(JSON.parse(readFileSync(lock, 'utf8'))).toEqual(live);
    } finally {
      sleeper.kill();
    }
  });

  it('steps aside when another run took over the same stale lock first, leaving that run its lock', async () => {
    const work = tempDir();
    const { src, repo, catalog } = makeRepository(work);
    const lock = join(repo, '.lb', 'lock');
    writeFileSync(lock, JSON.stringify({ host: hostname(), pid: spawnSync('true').pid!, since: '2026-01-01T00:00:00.000Z' }));
    // This run opens the lock to judge it (its second open of it: the first tried to create it), and is held
    // there: it reads the stale holder, then moves aside what the path holds by then…
    const run = new TracedRun(['backup', src, repo, '--catalog', catalog], holdAt(lock, 'openat', '2'));
    expect(await run.nextHold()).toBe(true);
    // …while another run takes it over, as this one was about to.
    const sleeper = spawn('sleep', ['30']);
    try {
      const taker = { host: hostname(), pid: sleeper.pid!, since: new Date().toISOString(), started: startTime(sleeper.pid!) };
      renameSync(lock, lock + '.taken-over');
      writeFileSync(lock, JSON.stringify(taker) + '\n');
      run.resume();
      const ended = await run.end();
      expect(ended.stderr).toMatch(new RegExp(`^lb: repository is in use by another lb run \\(pid ${sleeper.pid} on `));
      expect(ended.status).toBe(1);
      expect(JSON.parse(readFileSync(lock, 'utf8'))).toEqual(taker);
      expect(readdirSync(join(repo, '.lb')).filter((name) => name.startsWith('lock.stale-'))).toEqual([]);
    } finally {
      sleeper.kill();
    }
  });

  it('refuses a lock held from another host, which it cannot check', () => {
    const work = tempDir();
    const { src, repo, catalog } = makeRepository(work);
    const lock = join(repo, '.lb', 'lock');
    writeFileSync(lock, JSON.stringify({ host: 'elsewhere.example', pid: 4242, since: '2026-01-01T00:00:00.000Z' }));
    const refused = lb(['backup', src, repo, '--catalog', catalog]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/in use by another lb run \(pid 4242 on elsewhere\.example, since 2026-01-01T00:00:00\.000Z\)/);
  });
});
