// Fault injection: runs killed with SIGKILL (the source side, the repository
// side, or both) at random moments across several generations of a changing
// source. After every kill, every snapshot under a final name must be a faithful
// copy of the source it was taken from, and earlier snapshots never change; the
// run after the kills completes without sending again what the store already
// holds, and every object's content matches its name.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LB, alive, backup, childOf, generator, killIfAlive, rsync, rsyncDifferences, tempDir } from './helpers.js';

const SNAPSHOT = /^\d{4}\.\d\d\.\d\d-\d\d\.\d\d\.\d\d$/;

/** Change the source as a week of use would: new photos, an edit, a move, a deletion. */
function evolve(src: string, generation: number, random: () => number): void {
  const album = join(src, `album-${generation}`);
  mkdirSync(album, { recursive: true });
  for (let i = 0; i < 60; i++) writeFileSync(join(album, `img-${i}.jpg`), randomBytes(1000 + Math.floor(random() * 40_000)));
  writeFileSync(join(album, 'video.mp4'), randomBytes(9 * 1024 * 1024 + Math.floor(random() * 1024 * 1024)));
  writeFileSync(join(album, 'clip.mov'), randomBytes(2 * 1024 * 1024));
  if (generation > 0) {
    const previous = join(src, `album-${generation - 1}`);
    writeFileSync(join(previous, 'img-0.jpg'), randomBytes(5000)); // edited
    rmSync(join(previous, 'img-1.jpg')); // deleted
    renameSync(join(previous, 'img-2.jpg'), join(album, 'moved.jpg')); // moved
  }
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function walkFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walkFiles(path));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

describe('runs killed at random moments', () => {
  it('never damage a snapshot, and the next run completes without sending stored objects again', async () => {
    const seed = Number(process.env.LB_CRASH_SEED ?? Date.now() % 100_000);
    const random = generator(seed);
    const work = tempDir();
    const src = join(work, 'src');
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    mkdirSync(src);
    /** Snapshot name -> the copy of the source it must equal. */
    const expected = new Map<string, string>();
    const context = (what: string) => `${what} (seed ${seed}; replay with LB_CRASH_SEED=${seed})`;

    const checkSnapshots = (what: string, current: string) => {
      const names = existsSync(repo) ? readdirSync(repo).filter((n) => SNAPSHOT.test(n)) : [];
      for (const name of names) {
        // A snapshot that appeared in a killed run must be complete, of the source as it is now.
        if (!expected.has(name)) expected.set(name, current);
        expect(rsyncDifferences(expected.get(name)!, join(repo, name, 'tree')), context(`${what}: snapshot ${name}`)).toEqual([]);
      }
      if (existsSync(join(repo, 'latest'))) expect(names, context(`${what}: latest`)).toContain(readlinkSync(join(repo, 'latest')));
    };

    const generations = 4;
    const killsPerGeneration = 4;
    for (let generation = 0; generation < generations; generation++) {
      evolve(src, generation, random);
      const copy = join(work, `source-${generation}`);
      rsync(['-a', src + '/', copy + '/']);
      for (let k = 0; k < killsPerGeneration; k++) {
        const delay = Math.floor(random() * 900);
        const victim = (['source', 'agent', 'both'] as const)[Math.floor(random() * 3)]!;
        const cli = spawn(process.execPath, [LB, src, repo, '--catalog', catalog, '--quiet'], { stdio: 'ignore' });
        const closed = new Promise<void>((resolve) => cli.on('close', () => resolve()));
        await new Promise((r) => setTimeout(r, delay));
        const agent = childOf(cli.pid!);
        if ((victim === 'agent' || victim === 'both') && agent) killIfAlive(agent);
        if (victim === 'source' || victim === 'both') cli.kill('SIGKILL');
        await closed;
        // The agent of a killed source notices its input close and cleans up: wait for it.
        while (agent && alive(agent)) await new Promise((r) => setTimeout(r, 10));
        checkSnapshots(`generation ${generation}, kill ${k} of the ${victim} after ${delay} ms`, copy);
      }

      // What the store holds now is never sent again.
      const stored = new Set<string>();
      const objects = join(repo, '.lb', 'objects');
      if (existsSync(objects)) for (const path of walkFiles(objects)) stored.add(path.slice(path.lastIndexOf('/') + 1, path.lastIndexOf('/') + 65));
      const missing = new Map<string, number>();
      for (const path of walkFiles(src)) {
        const hash = sha256(path);
        if (!stored.has(hash)) missing.set(hash, statSync(path).size);
      }
      const complete = backup(src, repo, catalog);
      const missingBytes = [...missing.values()].reduce((a, b) => a + b, 0);
      expect(complete.bytes.transferred, context(`generation ${generation}: bytes sent after the kills`)).toBeLessThanOrEqual(missingBytes);
      checkSnapshots(`generation ${generation}, completed`, copy);
      expect(rsyncDifferences(src, join(repo, 'latest', 'tree')), context(`generation ${generation}: latest`)).toEqual([]);
      expect(readdirSync(join(repo, '.lb', 'tmp'))).toEqual([]);
      expect(readdirSync(join(repo, '.lb')).sort()).toEqual(['format', 'last-write', 'objects', 'reserve', 'tmp', 'trash']);
      expect(readdirSync(repo).filter((n) => !SNAPSHOT.test(n)).sort()).toEqual(['.lb', 'latest']);
    }

    // Invariant 3: every object's content hashes to the name it is stored under.
    for (const path of walkFiles(join(repo, '.lb', 'objects'))) {
      const name = path.slice(path.lastIndexOf('/') + 1);
      expect(sha256(path), context(`object ${name}`)).toBe(name.slice(0, 64));
    }
    expect(expected.size).toBeGreaterThanOrEqual(generations);
  });
});
