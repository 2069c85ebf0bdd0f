// `lb backup … --keep-*`: the prune after a backup, only after one that ended well, and what happens
// when it cannot run then. lb prune itself: prune.test.ts.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DatedRepository, copyTree, expectPrunedTo } from './dated-repository.js';
import { LB, lb, snapshots, tempDir } from './helpers.js';

describe('lb backup --keep-*', () => {
  it('prunes after a backup that ended well, never after a partial one', () => {
    const repository = new DatedRepository(tempDir());
    const { src, repo, catalog, copies } = repository;
    // Each snapshot has a `daily` of its own: removing one frees its 4,000 bytes.
    for (const name of ['2025.05.01-08.00.00', '2025.05.02-08.00.00', '2025.05.03-08.00.00']) {
      writeFileSync(join(src, 'daily'), randomBytes(4000));
      repository.backupAs(name);
    }
    writeFileSync(join(src, 'daily'), randomBytes(4000));
    const clean = lb(['backup', src, repo, '--catalog', catalog, '--keep-last', '2']);
    expect(clean.status, clean.stderr).toBe(0);
    const made = readlinkSync(join(repo, 'latest'));
    expect(clean.stdout).toMatch(new RegExp(`^lb: snapshot ${made} [^]*\\nlb: removed 2 of 4 snapshot\\(s\\) and 2 object\\(s\\), freeing 8\\.00 kB\\n$`));
    copyTree(src, join(copies, made));
    expectPrunedTo(repository, ['2025.05.03-08.00.00', made]);

    // A path longer than PATH_MAX cannot be backed up: the run is partial (exit 3), and nothing is pruned.
    const build = spawnSync('sh', ['-ec', 'cd -P "$1"; for i in $(seq 17); do mkdir "$2"; cd -P "$2"; done; echo far > far', 'sh', src, 'n'.repeat(250)]);
    expect(build.status).toBe(0);
    const before = snapshots(repo);
    const partial = lb(['backup', src, repo, '--catalog', catalog, '--keep-last', '1', '--always']);
    expect(partial.status, partial.stderr).toBe(3);
    expect(partial.stdout).not.toMatch(/removed/);
    expect(snapshots(repo)).toEqual([...before, readlinkSync(join(repo, 'latest'))]);
    expect(before).toHaveLength(2);
  });

  it('says in one line, exit 1, when the prune after a good backup cannot run; the snapshot stays, --json prints the backup alone', async () => {
    const repository = new DatedRepository(tempDir());
    const { src, repo, catalog } = repository;
    writeFileSync(join(src, 'a'), 'a');
    repository.backupAs('2025.06.01-08.00.00');
    writeFileSync(join(src, 'b'), 'b');
    // lb's own lock is its agent's (a child, not traced): strace holds back only the prune's first open of the lock,
    // while another run takes the lock, as one started from cron at that moment would.
    const lock = join(repo, '.lb', 'lock');
    const backup = spawn('strace', ['-qq', '-o', '/dev/null', '-P', lock, '-e', 'trace=openat', '-e', 'inject=openat:delay_enter=3000000:when=1', process.execPath, LB, src, repo, '--catalog', catalog, '--keep-last', '1', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    backup.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    backup.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const status = new Promise<number>((resolve) => backup.on('close', (code) => resolve(code ?? -1)));
    // The backup is published and its lock released: that is when its prune starts.
    while (readlinkSync(join(repo, 'latest')) === '2025.06.01-08.00.00' || existsSync(lock)) await new Promise((r) => setTimeout(r, 5));
    const other = spawn('sleep', ['30']);
    try {
      const started = readFileSync(`/proc/${other.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
      writeFileSync(lock, JSON.stringify({ host: hostname(), pid: other.pid, since: '2026-01-01T00:00:00.000Z', started }));
      expect(await status).toBe(1);
    } finally {
      other.kill();
    }
    const made = readlinkSync(join(repo, 'latest'));
    expect(JSON.parse(stdout)).toMatchObject({ snapshot: made, status: 'ok' }); // one JSON value, the backup's
    expect(stderr).toBe(`lb: the backup ended well, but nothing was pruned: repository is in use by another lb run (pid ${other.pid} on ${hostname()}, since 2026-01-01T00:00:00.000Z); if that run is gone for good, remove ${lock}\n`);
    expect(snapshots(repo)).toEqual(['2025.06.01-08.00.00', made]);
  });
});
