// Fault injection on a shared catalog: two runs on two repositories at once,
// sharing one catalog, SIGKILLed at random (either side of either run). A run
// not killed must succeed untouched by the other; a run whose agent was killed
// ends in one line; every snapshot under a final name is faithful; the reruns
// complete and are faithful; the catalog is never damaged.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { LB, alive, childOf, generator, killIfAlive, rsync, rsyncDifferences, tempDir } from './helpers.js';

const SNAPSHOT = /^\d{4}\.\d\d\.\d\d-\d\d\.\d\d\.\d\d$/;

/** New files in new directories, an edit and a deletion: a day of use. */
function evolve(src: string, round: number, random: () => number): void {
  for (let d = 0; d < 4; d++) {
    const dir = join(src, `r${round}-d${d}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < 60; f++) writeFileSync(join(dir, `f${f}`), randomBytes(200 + Math.floor(random() * 4000)));
  }
  writeFileSync(join(src, `r${round}-big`), randomBytes(1024 * 1024 + Math.floor(random() * 2 * 1024 * 1024)));
  if (round > 0) {
    writeFileSync(join(src, `r${round - 1}-d0`, 'f0'), randomBytes(300));
    rmSync(join(src, `r${round - 1}-d1`, 'f1'));
  }
}

interface Run {
  child: ChildProcess;
  stderr: string;
  status: number | null;
  closed: Promise<void>;
}

function startRun(src: string, repo: string, catalog: string): Run {
  const child = spawn(process.execPath, [LB, src, repo, '--catalog', catalog], { stdio: ['ignore', 'ignore', 'pipe'] });
  const run: Run = { child, stderr: '', status: null, closed: Promise.resolve() };
  child.stderr!.on('data', (d: Buffer) => (run.stderr += d.toString()));
  // A hang fails the test here rather than blocking it.
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  run.closed = new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      run.status = code;
      resolve();
    }),
  );
  return run;
}

describe('two runs sharing one catalog, killed at random', () => {
  it('never damage a snapshot or the catalog, and the reruns complete and are faithful', async () => {
    const seed = Number(process.env.LB_CRASH_SEED ?? Date.now() % 100_000);
    const random = generator(seed);
    const context = (what: string) => `${what} (seed ${seed}; replay with LB_CRASH_SEED=${seed})`;
    const work = tempDir();
    const catalog = join(work, 'catalog.sqlite');
    const sides = [0, 1].map((i) => ({ src: join(work, `src${i}`), repo: join(work, `repo${i}`), expected: new Map<string, string>() }));

    const checkSnapshots = (what: string, copies: string[]) =>
      sides.forEach(({ repo, expected }, i) => {
        const names = existsSync(repo) ? readdirSync(repo).filter((n) => SNAPSHOT.test(n)) : [];
        for (const name of names) {
          if (!expected.has(name)) expected.set(name, copies[i]!);
          expect(rsyncDifferences(expected.get(name)!, join(repo, name, 'tree')), context(`${what}: repo${i} ${name}`)).toEqual([]);
        }
        if (existsSync(join(repo, 'latest'))) expect(names, context(`${what}: repo${i} latest`)).toContain(readlinkSync(join(repo, 'latest')));
      });

    for (let round = 0; round < 5; round++) {
      const copies = sides.map(({ src }, i) => {
        evolve(src, round, random);
        const copy = join(work, `copy${i}-${round}`);
        rsync(['-a', src + '/', copy + '/']);
        return copy;
      });

      const runs = sides.map(({ src, repo }) => startRun(src, repo, catalog));
      const victims = runs.map(() => (['none', 'source', 'agent', 'both'] as const)[Math.floor(random() * 4)]!);
      const delay = Math.floor(random() * 1200);
      await new Promise((r) => setTimeout(r, delay));
      const agents = runs.map((run) => childOf(run.child.pid!));
      runs.forEach((run, i) => {
        const victim = victims[i]!;
        if ((victim === 'agent' || victim === 'both') && agents[i]) killIfAlive(agents[i]!);
        if (victim === 'source' || victim === 'both') run.child.kill('SIGKILL');
      });
      await Promise.all(runs.map((run) => run.closed));
      // The agent of a killed source sees its input close and cleans up: wait for it.
      for (const agent of agents) while (agent && alive(agent)) await new Promise((r) => setTimeout(r, 10));

      const what = `round ${round}, victims ${victims.join('/')} after ${delay} ms`;
      runs.forEach((run, i) => {
        const said = `${what}: run ${i} exited ${run.status}: ${run.stderr}`;
        // Never hung: the deadline's SIGKILL would leave no status.
        if (victims[i] !== 'source' && victims[i] !== 'both') expect(run.status, context(said)).not.toBeNull();
        if (victims[i] === 'none') {
          expect(run.status, context(said)).toBe(0);
          expect(run.stderr, context(said)).toBe('');
        }
        if (victims[i] === 'agent' && run.status !== 0) {
          expect(run.status, context(said)).toBe(1);
          expect(run.stderr, context(said)).toMatch(/^lb: [^\n]+\n$/);
        }
      });
      checkSnapshots(what, copies);

      // The reruns, at once again: both complete, faithful, with nothing said.
      const reruns = sides.map(({ src, repo }) => startRun(src, repo, catalog));
      await Promise.all(reruns.map((run) => run.closed));
      reruns.forEach((run, i) => {
        expect(run.status, context(`${what}: rerun ${i}: ${run.stderr}`)).toBe(0);
        expect(run.stderr, context(`${what}: rerun ${i}`)).toBe('');
        expect(rsyncDifferences(sides[i]!.src, join(sides[i]!.repo, 'latest', 'tree')), context(`${what}: rerun ${i} latest`)).toEqual([]);
        expect(readdirSync(join(sides[i]!.repo, '.lb', 'tmp')), context(`${what}: rerun ${i} leftovers`)).toEqual([]);
      });
      checkSnapshots(`${what}, rerun`, copies);
    }

    // SIGKILL at any moment leaves the catalog whole: WAL, and short transactions.
    expect(readdirSync(work).filter((n) => n.includes('.broken-'))).toEqual([]);
    const db = new Database(catalog, { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
  });
});
