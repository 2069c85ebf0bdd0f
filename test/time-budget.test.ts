// --minutes and interrupted transfers: a run out of time makes no snapshot but
// keeps what it stored; a large file cut off midway (by the budget, or by
// kill -9) resumes from where it stopped, its stored prefix checked first.
// Reads of the large file are slowed with strace's fault injection, so the
// budget runs out at a known point without racing the clock.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LB, backup, lb, rsyncDifferences, tempDir, type Summary } from './helpers.js';

const MiB = 1024 * 1024;

interface Setup {
  src: string;
  repo: string;
  catalog: string;
  big: string;
  bigHash: string;
  bigSize: number;
}

/** A source with one 24 MiB file and some small ones, their hashes already in the catalog. */
function setup(): Setup {
  const work = tempDir();
  const src = join(work, 'src');
  mkdirSync(src);
  const big = join(src, 'big.raw');
  const content = randomBytes(24 * MiB);
  writeFileSync(big, content);
  for (let i = 0; i < 30; i++) writeFileSync(join(src, `a-small-${i}`), randomBytes(10_000));
  const catalog = join(work, 'catalog.sqlite');
  // Hash everything once into a throwaway repository: the runs under test then only send.
  backup(src, join(work, 'warm-up'), catalog);
  return { src, repo: join(work, 'repo'), catalog, big, bigHash: createHash('sha256').update(content).digest('hex'), bigSize: content.length };
}

/** lb with every read of `slowFile` delayed by `delayMs`, through strace. */
function slowLb(slowFile: string, delayMs: number, args: string[]) {
  const child = spawn(
    'strace',
    ['-f', '-qq', '-o', '/dev/null', '-P', slowFile, '-e', 'trace=read', '-e', `inject=read:delay_exit=${delayMs * 1000}`, process.execPath, LB, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ status: number; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ status: code ?? -1, stdout, stderr })),
  );
  return { child, done };
}

describe('a time budget and interrupted transfers', () => {
  it('stops at the budget without a snapshot, keeps what it stored, and resumes the cut file', async () => {
    const s = setup();
    // 150 ms per MiB read: the 24 MiB file takes 3.6 s, the budget is 2.4 s.
    const first = await slowLb(s.big, 150, [s.src, s.repo, '--catalog', s.catalog, '--minutes', '0.04', '--json']).done;
    expect(first.status).toBe(4);
    const summary = JSON.parse(first.stdout) as Summary & { status: string; deferred: number };
    expect(summary.status).toBe('incomplete');
    expect(summary.snapshot).toBeNull();
    expect(summary.deferred).toBe(1);
    expect(readdirSync(s.repo).sort()).toEqual(['.lb']);
    const partial = join(s.repo, '.lb', 'partial', s.bigHash);
    const kept = statSync(partial).size;
    expect(kept).toBeGreaterThan(2 * MiB);
    expect(kept).toBeLessThan(s.bigSize);
    // The small files are stored objects already.
    const storedBefore = summary.bytes.stored;
    expect(storedBefore).toBe(300_000);

    const second = backup(s.src, s.repo, s.catalog) as Summary & { bytes: { resumed: number } };
    expect(second.created).toBe(true);
    const resumed = Math.floor(kept / MiB) * MiB;
    expect(second.bytes.resumed).toBe(resumed);
    expect(second.bytes.transferred).toBe(s.bigSize - resumed);
    expect(rsyncDifferences(s.src, join(s.repo, second.snapshot!, 'tree'))).toEqual([]);
    expect(existsSync(join(s.repo, '.lb', 'partial'))).toBe(false);
  });

  it('resumes a file whose transfer was killed (SIGKILL of the repository side)', async () => {
    const s = setup();
    const run = slowLb(s.big, 100, [s.src, s.repo, '--catalog', s.catalog]);
    const partial = join(s.repo, '.lb', 'partial', s.bigHash);
    while (!existsSync(partial) || statSync(partial).size < 4 * MiB) await new Promise((r) => setTimeout(r, 20));
    const agentPid = (JSON.parse(readFileSync(join(s.repo, '.lb', 'lock'), 'utf8')) as { pid: number }).pid;
    process.kill(agentPid, 'SIGKILL');
    const killed = await run.done;
    expect(killed.status).toBe(1);
    expect(killed.stderr).toMatch(/^lb: the repository side \(lb agent\) was killed by SIGKILL; nothing was published, and the next run takes over from here\n$/);
    const kept = statSync(partial).size;

    const again = backup(s.src, s.repo, s.catalog) as Summary & { bytes: { resumed: number } };
    const resumed = Math.floor(kept / MiB) * MiB;
    expect(resumed).toBeGreaterThanOrEqual(4 * MiB);
    expect(again.bytes.resumed).toBe(resumed);
    // Everything else not stored before the kill is sent once; the big file only past its prefix.
    expect(again.bytes.transferred).toBeLessThanOrEqual(s.bigSize - resumed + 300_000);
    expect(again.bytes.transferred).toBeGreaterThanOrEqual(s.bigSize - resumed);
    expect(rsyncDifferences(s.src, join(s.repo, again.snapshot!, 'tree'))).toEqual([]);
  });

  it('starts over when the kept prefix no longer matches the source', async () => {
    const s = setup();
    await slowLb(s.big, 150, [s.src, s.repo, '--catalog', s.catalog, '--minutes', '0.04']).done;
    const partial = join(s.repo, '.lb', 'partial', s.bigHash);
    expect(statSync(partial).size).toBeGreaterThan(2 * MiB);
    // Corrupt the kept prefix, as a power cut could: the check must catch it.
    const torn = readFileSync(partial);
    torn[1000] = torn[1000]! ^ 0xff;
    writeFileSync(partial, torn);
    const again = backup(s.src, s.repo, s.catalog) as Summary & { bytes: { resumed: number } };
    expect(again.bytes.resumed).toBe(0);
    expect(again.bytes.transferred).toBe(s.bigSize);
    expect(rsyncDifferences(s.src, join(s.repo, again.snapshot!, 'tree'))).toEqual([]);
  });

  it('refuses a budget that is not a positive number', () => {
    const s = setup();
    const r = lb([s.src, s.repo, '--minutes', 'soon', '--catalog', s.catalog]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('lb: --minutes wants a positive number of minutes, not soon\n');
    expect(existsSync(s.repo)).toBe(false);
  });
});
