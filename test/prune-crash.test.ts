// Fault injection: `lb prune` killed with SIGKILL at random moments (after a random delay, or by strace
// at a random rename into the trash, unlink or rmdir), round after round on a repository of 20 snapshots
// of a few thousand files. After every kill: each snapshot under a final name is complete and equals the
// source it was taken of (rsync oracle), `lb verify` passes, `latest` resolves. Then the next run (a
// backup of the unchanged source, which makes no snapshot, or a prune) empties the trash, and the next
// prune frees exactly what it predicts, leaving a store of exactly what the kept snapshots link.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DatedRepository, apparentBytes, expectPrunedTo } from './dated-repository.js';
import { LB, generator, lb, rsyncDifferences, snapshots, tempDir } from './helpers.js';

const SNAPSHOTS = 20;
const DIRS = 40;
const FILES = 2000;

interface PruneJson {
  removed: string[];
  /** A dry run's. */
  predicted?: { objects: number; bytes: number };
  /** A prune's. */
  freed?: { objects: number; bytes: number };
}

function pruneJson(repo: string, args: string[]): PruneJson {
  const r = lb(['prune', repo, ...args, '--json']);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as PruneJson;
}

/** 20 daily snapshots; between two, 3% of files new, 1% rewritten, 1% deleted. */
function history(random: () => number): { repository: DatedRepository; names: string[] } {
  const repository = new DatedRepository(tempDir());
  const { src } = repository;
  const files: string[] = [];
  const write = (path: string) => writeFileSync(path, randomBytes(100 + Math.floor(random() * 3000)));
  for (let d = 0; d < DIRS; d++) mkdirSync(join(src, `dir-${d}`));
  for (let f = 0; f < FILES; f++) {
    const path = join(src, `dir-${f % DIRS}`, `file-${f}`);
    write(path);
    files.push(path);
  }
  const names: string[] = [];
  for (let s = 0; s < SNAPSHOTS; s++) {
    if (s > 0) {
      for (let i = 0; i < FILES * 0.03; i++) {
        const path = join(src, `dir-${Math.floor(random() * DIRS)}`, `new-${s}-${i}`);
        write(path);
        files.push(path);
      }
      for (let i = 0; i < FILES * 0.01; i++) write(files[Math.floor(random() * files.length)]!);
      for (let i = 0; i < FILES * 0.01; i++) {
        const [gone] = files.splice(Math.floor(random() * files.length), 1);
        rmSync(gone!);
      }
    }
    const name = `2025.04.${String(s + 1).padStart(2, '0')}-21.00.00`;
    repository.backupAs(name);
    names.push(name);
  }
  return { repository, names };
}

/**
 * lb prune, killed: with every process it started (the `rm` emptying the trash), after `delay` ms, as a
 * power cut would; or by strace (following children) at the `when`-th call of `syscall`, in whichever
 * process makes it: lb renaming, or its `rm` unlinking, which lb then reports as the end of the prune.
 */
async function killedPrune(repo: string, policy: string[], kill: { delay: number } | { syscall: string; when: number }): Promise<void> {
  const args = [LB, 'prune', repo, ...policy, '--quiet'];
  const child =
    'delay' in kill
      ? spawn(process.execPath, args, { stdio: 'ignore', detached: true })
      : spawn('strace', ['-f', '-qq', '-o', '/dev/null', '-e', `trace=${kill.syscall}`, '-e', `inject=${kill.syscall}:signal=SIGKILL:when=${kill.when}`, process.execPath, ...args], { stdio: 'ignore' });
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  if ('delay' in kill) {
    await new Promise((r) => setTimeout(r, kill.delay));
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // ended already
    }
  }
  await closed;
}

describe('lb prune killed at random moments', () => {
  it('never damages a snapshot under a final name; the next run empties the trash and the next prune frees exactly what was due', async () => {
    const seed = Number(process.env.LB_PRUNE_CRASH_SEED ?? Date.now() % 100_000);
    const random = generator(seed);
    const context = (what: string) => `${what} (seed ${seed}; replay with LB_PRUNE_CRASH_SEED=${seed})`;
    const { repository, names } = history(random);
    const { repo, src, catalog, copies } = repository;
    const store = join(repo, '.lb', 'objects');
    let midway = 0;

    for (let round = 0, keep = SNAPSHOTS; keep > 5; round++) {
      keep -= 3 + Math.floor(random() * 2);
      const policy = ['--keep-last', String(keep)];
      const kept = names.slice(-keep);
      const present = snapshots(repo);
      const due = pruneJson(repo, [...policy, '--dry-run']);
      const storeBefore = apparentBytes(store);
      const removing = present.length - keep;
      const kill =
        round % 2 === 0
          ? { delay: 150 + Math.floor(random() * 250) } // past node's start, within the work
          : [
              { syscall: 'rename', when: 1 + Math.floor(random() * removing) },
              // rm unlinks files and removes directories with unlinkat
              { syscall: 'unlinkat', when: 1 + Math.floor(random() * removing * (FILES + DIRS)) },
            ][Math.floor(random() * 2)]!;
      const what = context(`round ${round}, --keep-last ${keep}, killed ${JSON.stringify(kill)}`);
      await killedPrune(repo, policy, kill);

      // Every snapshot under a final name is whole: a kept one, or one the prune had not reached.
      const after = snapshots(repo);
      expect(after, what).toEqual(expect.arrayContaining(kept));
      for (const name of after) {
        expect(existsSync(join(repo, name, 'manifest')), `${what}: ${name}`).toBe(true);
        expect(rsyncDifferences(join(copies, name), join(repo, name, 'tree')), `${what}: ${name}`).toEqual([]);
      }
      expect(readlinkSync(join(repo, 'latest')), what).toBe(names.at(-1));
      const verify = lb(['verify', repo]);
      expect(verify.status, `${what}: ${verify.stdout}${verify.stderr}`).toBe(0);
      // Killed midway: some snapshots gone from sight, not all their space freed yet.
      if (after.length < present.length && storeBefore - apparentBytes(store) < due.predicted!.bytes) midway++;

      // The next run of any kind finishes emptying the trash: here a backup (no change, so no snapshot) every other round.
      if (round % 3 === 1) {
        const r = lb(['backup', src, repo, '--catalog', catalog, '--quiet']);
        expect(r.status, `${what}: ${r.stderr}`).toBe(0);
        expect(readdirSync(join(repo, '.lb', 'trash')), what).toEqual([]);
        expect(snapshots(repo), what).toEqual(after);
      }
      const next = pruneJson(repo, [...policy, '--dry-run']);
      const done = pruneJson(repo, policy);
      expect(done.freed, `${what}: the prune after the kill frees what a dry run then predicts`).toEqual(next.predicted);
      expect(storeBefore - apparentBytes(store), `${what}: the two runs together free what the dry run predicted`).toBe(due.predicted!.bytes);
      expectPrunedTo(repository, kept, what);
    }
    // Some kills did land inside the deletion (one before the first rename, or after the end, tests less).
    expect(midway, context('rounds killed midway')).toBeGreaterThan(0);
  });
});
