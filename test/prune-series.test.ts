// A prune of a series killed after its first rename: the series' snapshot lies in the trash, and
// the next dry run must count what it alone holds, as the next prune then frees it (a series'
// snapshot once went to trash/SERIES/NAME, a level the prediction never walked).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LB, backup, lb, snapshots, tempDir } from './helpers.js';

describe('lb prune of a series, killed midway', () => {
  it("counts the series' snapshot left in the trash in the next prediction, which the next prune frees exactly", () => {
    const work = tempDir();
    const src = join(work, 'src');
    const repo = join(work, 'repo');
    mkdirSync(src);
    for (let i = 0; i < 3; i++) {
      writeFileSync(join(src, 'photo.jpg'), randomBytes(50_000)); // each snapshot its own content
      backup(src, repo, join(work, 'catalog.sqlite'), ['--series', 'jail']);
      spawnSync('sleep', ['1.1']);
    }
    // Killed at its second rename: the oldest is in the trash, the second still under its name.
    spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=rename', '-e', 'inject=rename:signal=SIGKILL:when=2', process.execPath, LB, 'prune', repo, '--keep-last', '1'], {
      stdio: 'ignore',
    });
    expect(snapshots(join(repo, 'jail'))).toHaveLength(2);
    expect(readdirSync(join(repo, '.lb', 'trash'))).toHaveLength(1);
    const dry = lb(['prune', repo, '--keep-last', '1', '--dry-run', '--json']);
    expect(dry.status, dry.stderr).toBe(0);
    const predicted = JSON.parse(dry.stdout).predicted as { objects: number; bytes: number };
    expect(predicted).toEqual({ objects: 2, bytes: 100_000 });
    const real = lb(['prune', repo, '--keep-last', '1', '--json']);
    expect(real.status, real.stderr).toBe(0);
    expect(JSON.parse(real.stdout).freed).toEqual(predicted);
    expect(snapshots(join(repo, 'jail'))).toHaveLength(1);
    expect(readdirSync(join(repo, '.lb', 'trash'))).toEqual([]);
  });
});
