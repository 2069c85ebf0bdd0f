// lb dedupe leaves a tree looking as it did, but for the links: runs killed at
// random moments while linking leave temporary names that the next run
// removes, with every path's content as before; and the directories it links
// in keep their mtimes, to the nanosecond.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LB, lb, tempDir } from './helpers.js';

const OLD = 1_500_000_000; // seconds: a fixed, long-past mtime

/** Every path under `root` with the sha256 of a file's content (a directory's is '-'). */
function contents(root: string, dir = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(join(root, dir)).sort()) {
    const rel = dir ? `${dir}/${name}` : name;
    if (lstatSync(join(root, rel)).isDirectory()) {
      out.set(rel, '-');
      for (const [k, v] of contents(root, rel)) out.set(k, v);
    } else out.set(rel, createHash('sha256').update(readFileSync(join(root, rel))).digest('hex'));
  }
  return out;
}

/** Temporary names under `root` (names only: one may go while this looks). */
function leftovers(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((path) => /(^|\/)\.lb-dedupe-/.test(path));
}

/** `dirs` directories holding the same `files` files each (same content and metadata): every file but one per set is linked. */
function duplicatedTree(root: string, dirs: number, files: number): string[] {
  const names = Array.from({ length: dirs }, (_, d) => join(root, `album-${d}`));
  for (const dir of names) mkdirSync(dir, { recursive: true });
  for (let i = 0; i < files; i++) {
    const content = randomBytes(1000 + i);
    for (const dir of names) {
      writeFileSync(join(dir, `img-${i}.jpg`), content);
      utimesSync(join(dir, `img-${i}.jpg`), OLD, OLD);
    }
  }
  return names;
}

describe('lb dedupe leaves the tree as it was', () => {
  it('removes the temporary links of runs killed while linking; every path keeps its content', async () => {
    const work = tempDir();
    const root = join(work, 'tree');
    duplicatedTree(root, 6, 150);
    const before = contents(root);
    let left: string[] = [];
    let killedWhileLinking = 0;
    for (let round = 0; round < 6; round++) {
      // Each rename takes 20 ms, so that a kill is likely to fall between a temporary link and its rename.
      const traced = spawn(
        'strace',
        ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=rename,renameat,renameat2', '-e', 'inject=rename,renameat,renameat2:delay_enter=20000', process.execPath, LB, 'dedupe', root, '--catalog', join(work, 'c.sqlite')],
        { stdio: 'ignore' },
      );
      const exited = new Promise((resolve) => traced.on('close', resolve));
      // Once it links (a temporary name of its own shows), a moment later, at random: kill -9.
      const earlier = new Set(leftovers(root));
      const deadline = Date.now() + 30_000;
      while (leftovers(root).every((name) => earlier.has(name)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, Math.random() * 300));
      const pids = spawnSync('pgrep', ['-P', String(traced.pid)], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
      expect(pids, `round ${round}: lb ended before it could be killed`).toHaveLength(1);
      process.kill(Number(pids[0]), 'SIGKILL');
      await exited;
      left = leftovers(root);
      // The killed run itself removed what earlier runs had left, before it linked anything.
      expect(left.filter((name) => earlier.has(name))).toEqual([]);
      if (left.length > 0) killedWhileLinking++;
    }
    expect(killedWhileLinking, 'no kill left a temporary link: the test did not test anything').toBeGreaterThan(0);

    const r = lb(['dedupe', root, '--json', '--catalog', join(work, 'c.sqlite')]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).leftoversRemoved).toBe(left.length);
    expect(leftovers(root)).toEqual([]);
    expect(contents(root)).toEqual(before);
    // And the work got done: one inode per content.
    for (let i = 0; i < 150; i++) expect(lstatSync(join(root, 'album-5', `img-${i}.jpg`)).ino).toBe(lstatSync(join(root, 'album-0', `img-${i}.jpg`)).ino);
  }, 120_000);

  it("keeps the mtime of every directory it links in, to the nanosecond", () => {
    const work = tempDir();
    const root = join(work, 'tree');
    const dirs = duplicatedTree(root, 4, 20);
    // Old mtimes with nanoseconds (utimes in Node has microseconds), one of them shared; album-3 keeps the one it got.
    const stamps: [string, string][] = [
      [dirs[0]!, `@${OLD}.123456789`],
      [dirs[1]!, `@${OLD + 60}.000000001`],
      [dirs[2]!, `@${OLD}.123456789`],
    ];
    for (const [dir, when] of stamps) {
      expect(spawnSync('touch', ['-m', '-d', when, dir]).status).toBe(0);
    }
    const mtimes = () => dirs.map((dir) => lstatSync(dir, { bigint: true }).mtimeNs);
    const before = mtimes();
    const r = lb(['dedupe', root, '--json', '--catalog', join(work, 'c.sqlite')]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).files.linked).toBe(60); // in album-1, -2 and -3; album-0 holds the kept files
    expect(mtimes()).toEqual(before);
    expect(before[0]).toBe(BigInt(OLD) * 1_000_000_000n + 123_456_789n);
  });

  it('puts back the mtime of a directory done with while others are still read, and of one changed again later, to the nanosecond', () => {
    const work = tempDir();
    const root = join(work, 'tree');
    // Largest sizes first: the 60 `early-N` (one size each) are done with long before `late` and `mixed`,
    // enough of them for a shell to set their mtimes while the run goes on; `mixed` has a file of early-59's
    // size (the first done) and one of late's, so it changes both first and last.
    const dirs: string[] = [];
    const pair = (dir: string, names: string[], content: Buffer) => {
      for (const name of names) {
        writeFileSync(join(dir, name), content);
        utimesSync(join(dir, name), OLD, OLD);
      }
    };
    for (const name of [...Array.from({ length: 60 }, (_, n) => `early-${n}`), 'late', 'mixed']) {
      dirs.push(join(root, name));
      mkdirSync(join(root, name), { recursive: true });
    }
    for (let n = 0; n < 60; n++) pair(dirs[n]!, ['a', 'b'], randomBytes(100_000 + n * 10));
    writeFileSync(join(root, 'mixed', 'big'), readFileSync(join(dirs[59]!, 'a')));
    utimesSync(join(root, 'mixed', 'big'), OLD, OLD);
    const small = randomBytes(500);
    pair(join(root, 'late'), ['small'], small);
    pair(join(root, 'mixed'), ['small'], small);
    const script = dirs.map((dir, i) => `touch -m -d @${OLD + i}.${String(100_000_001 + i * 7919).padStart(9, '0')} '${dir}'`).join('\n');
    expect(spawnSync('sh', ['-c', script]).status).toBe(0);
    const mtimes = () => dirs.map((dir) => lstatSync(dir, { bigint: true }).mtimeNs);
    const before = mtimes();
    const r = lb(['dedupe', root, '--json', '--catalog', join(work, 'c.sqlite')]);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).files.linked).toBe(62);
    expect(lstatSync(join(root, 'mixed', 'big')).ino).toBe(lstatSync(join(dirs[59]!, 'a')).ino);
    expect(lstatSync(join(root, 'mixed', 'small')).ino).toBe(lstatSync(join(root, 'late', 'small')).ino);
    expect(mtimes()).toEqual(before);
  });

  it('goes past a temporary name of a dead run that had its pid, and a later run removes that', () => {
    const work = tempDir();
    const root = join(work, 'tree');
    const dirs = duplicatedTree(root, 3, 5);
    // The shell makes links named as lb's own temporary ones would be, with its pid, to a file that will be
    // kept as a killed run leaves them, then becomes lb (exec keeps the pid).
    const names = dirs.flatMap((dir) => [0, 1, 2].map((n) => `ln ${dirs[0]}/img-0.jpg ${dir}/.lb-dedupe-$$-${n}`)).join('; ');
    const first = spawnSync('sh', ['-c', `${names}; exec "$0" "$@"`, process.execPath, LB, 'dedupe', root, '--json', '--catalog', join(work, 'c.sqlite')], { encoding: 'utf8' });
    expect(first.status, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout).files.linked).toBe(10);
    // Named with its own pid, they could have been its own: the run left them; the next one removes them.
    expect(leftovers(root)).toHaveLength(9);
    const second = lb(['dedupe', root, '--json', '--catalog', join(work, 'c.sqlite')]);
    expect(JSON.parse(second.stdout).leftoversRemoved).toBe(9);
    expect(leftovers(root)).toEqual([]);
  });

  it("keeps a file named as a dead run's temporary link when it is its content's only name, and says so", () => {
    const work = tempDir();
    const root = join(work, 'tree');
    duplicatedTree(root, 2, 3);
    const dead = spawnSync('true').pid!; // exited: a pid no run holds
    const lone = join(root, 'album-0', `.lb-dedupe-${dead}-0`);
    writeFileSync(lone, 'the only copy');
    const r = lb(['dedupe', root, '--json', '--catalog', join(work, 'c.sqlite')]);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(lone, 'utf8')).toBe('the only copy');
    expect(r.stderr).toMatch(/lb: warning: .*\.lb-dedupe-.*the only name of its file: left alone/);
    expect(JSON.parse(r.stdout).leftoversRemoved).toBe(0);
  });
});
