// Fault injection for the repository side's concurrent writes: its data writes are
// slowed (strace delays every pwrite64 of the agent's threads), so hundreds of
// writes, metadata changes and tree links are in flight, and the agent is killed
// with SIGKILL while they are. Whatever a killed run left, every snapshot under a
// final name must equal its source, every stored object must hash to its name
// (an object is never published before its writes are done), and the next run
// completes with what the store holds, sending nothing it already has.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LB, alive, backup, childOf, generator, killIfAlive, rsyncDifferences, tempDir } from './helpers.js';

const SNAPSHOT = /^\d{4}\.\d\d\.\d\d-\d\d\.\d\d\.\d\d$/;

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true, recursive: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name));
  } catch (error) {
    // Absent, or removed by the running agent while listed (its staging area, between runs).
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** New content objects staged by the agent (`.lb/tmp/incoming-PID/`), not yet published. */
function stagedCount(repo: string): number {
  const tmp = join(repo, '.lb', 'tmp');
  if (!existsSync(tmp)) return 0;
  return readdirSync(tmp)
    .filter((n) => n.startsWith('incoming-'))
    .reduce((sum, n) => sum + filesUnder(join(tmp, n)).length, 0);
}

async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return condition();
}

describe('the repository side killed with many writes in flight', () => {
  it('leaves no damaged snapshot or object, and the next run completes without sending stored content again', async () => {
    const seed = Number(process.env.LB_CRASH_SEED ?? Date.now() % 100_000);
    const random = generator(seed);
    const context = (what: string) => `${what} (seed ${seed}; replay with LB_CRASH_SEED=${seed})`;
    const work = tempDir();
    const src = join(work, 'src');
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    // More files than one published batch (4,096 objects): some kills come after a publish.
    for (let d = 0; d < 50; d++) {
      mkdirSync(join(src, `album-${d}`), { recursive: true });
      for (let f = 0; f < 100; f++) writeFileSync(join(src, `album-${d}`, `img-${f}.jpg`), randomBytes(200 + Math.floor(random() * 8000)));
    }
    const storedCount = () => filesUnder(join(repo, '.lb', 'objects')).length;

    let killsAfterPublish = 0;
    for (let k = 0; k < 4; k++) {
      const cli = spawn(process.execPath, [LB, src, repo, '--catalog', catalog, '--quiet'], { stdio: 'ignore' });
      const closed = new Promise<void>((resolve) => cli.on('close', () => resolve()));
      let agent: number | null = null;
      await until(() => (agent = childOf(cli.pid!)) !== null, 5000);
      expect(agent, 'the agent started').not.toBeNull();
      // Every data write of every agent thread waits 2 ms: the pool fills up behind them.
      const strace = spawn('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=pwrite64,write', '-e', 'inject=pwrite64:delay_exit=2000', '-p', String(agent)], {
        stdio: 'ignore',
      });
      const straceClosed = new Promise<void>((resolve) => strace.on('close', () => resolve()));
      // Kill once many objects are staged: before the first publish of this run, or after it.
      const storedBefore = storedCount();
      const afterPublish = k % 2 === 1;
      const wanted = 100 + Math.floor(random() * 300);
      const reached = await until(() => stagedCount(repo) >= wanted && (!afterPublish || storedCount() > storedBefore), 60_000);
      expect(reached, context(`kill ${k}: ${wanted} objects staged${afterPublish ? ' after a publish' : ''}`)).toBe(true);
      const staged = stagedCount(repo);
      if (afterPublish) killsAfterPublish++;
      killIfAlive(agent!);
      if (random() < 0.5) cli.kill('SIGKILL');
      await closed;
      await straceClosed;
      while (alive(agent!)) await new Promise((r) => setTimeout(r, 10));

      const names = existsSync(repo) ? readdirSync(repo).filter((n) => SNAPSHOT.test(n)) : [];
      for (const name of names) expect(rsyncDifferences(src, join(repo, name, 'tree')), context(`kill ${k}: snapshot ${name}`)).toEqual([]);
      for (const path of filesUnder(join(repo, '.lb', 'objects'))) {
        const name = path.slice(path.lastIndexOf('/') + 1);
        expect(sha256(path), context(`kill ${k} with ${staged} objects staged: object ${name}`)).toBe(name.slice(0, 64));
      }
    }
    expect(killsAfterPublish).toBe(2);

    // What the store holds is never sent again; the run completes and its snapshot is faithful.
    const stored = new Set(filesUnder(join(repo, '.lb', 'objects')).map((p) => p.slice(p.lastIndexOf('/') + 1, p.lastIndexOf('/') + 65)));
    let missingBytes = 0;
    for (const path of filesUnder(src)) if (!stored.has(sha256(path))) missingBytes += statSync(path).size;
    const complete = backup(src, repo, catalog);
    expect(complete.bytes.transferred, context('bytes sent after the kills')).toBeLessThanOrEqual(missingBytes);
    expect(rsyncDifferences(src, join(repo, 'latest', 'tree')), context('latest')).toEqual([]);
    expect(readdirSync(join(repo, '.lb', 'tmp'))).toEqual([]);
    for (const path of filesUnder(join(repo, '.lb', 'objects'))) {
      const name = path.slice(path.lastIndexOf('/') + 1);
      expect(sha256(path), context(`after the complete run: object ${name}`)).toBe(name.slice(0, 64));
    }
  }, 240_000);
});
