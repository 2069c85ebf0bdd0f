// --series over a real OpenSSH sshd on 127.0.0.1: a push into a series of a
// remote repository, a pull into a series of a local one, and the series named
// to a read command and a restore there, with rsync as the oracle.
import { mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lb, rsyncDifferences, tempDir } from './helpers.js';
import { startSshd, type Sshd } from './sshd.js';

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(() => sshd?.stop());

function remoteLb(args: string[]) {
  return lb([...args, '--ssh-p', String(sshd.port)], sshd.env);
}

/** Two sources that share most of their files (same content and metadata), each with one of its own. */
function sources(work: string): { a: string; b: string } {
  for (const side of ['a', 'b']) {
    mkdirSync(join(work, side, 'etc'), { recursive: true });
    for (let i = 0; i < 30; i++) {
      writeFileSync(join(work, side, 'etc', `shared${i}`), `shared content ${i}\n`.repeat(40));
      utimesSync(join(work, side, 'etc', `shared${i}`), 1_700_000_000, 1_700_000_000);
    }
    writeFileSync(join(work, side, 'own'), `only in ${side}\n`);
  }
  return { a: join(work, 'a'), b: join(work, 'b') };
}

describe('--series over SSH', () => {
  it('pushes into a series of a remote repository and reads it there with list, restore and --verify', () => {
    const work = tempDir();
    const { a, b } = sources(work);
    const repo = join(work, 'pushed');
    const at = `root@127.0.0.1:${repo}`;
    const first = remoteLb(['backup', a, at, '--series', 'web', '--json', '--catalog', join(work, 'catalog.sqlite')]);
    expect(first.status, first.stderr).toBe(0);
    const second = remoteLb(['backup', b, at, '--series', 'db', '--json', '--verify', '--catalog', join(work, 'catalog.sqlite')]);
    expect(second.status, second.stderr).toBe(0);
    const summary = JSON.parse(second.stdout);
    // Only db's own file crossed: the shared ones were in the store web filled.
    expect([summary.series, summary.files.new, summary.files.linked, summary.verify.differenceCount]).toEqual(['db', 1, 30, 0]);
    expect(readdirSync(repo).sort()).toEqual(['.lb', 'db', 'web']);
    expect(rsyncDifferences(a, join(repo, 'web', 'latest', 'tree'))).toEqual([]);
    expect(rsyncDifferences(b, join(repo, 'db', 'latest', 'tree'))).toEqual([]);

    const listed = remoteLb(['list', at, '--series', 'db', '--json']);
    expect(listed.status, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).map((row: { name: string }) => row.name)).toEqual([summary.snapshot]);
    expect(remoteLb(['list', at]).stdout).toBe(`lb: the repository ${repo} holds no snapshot at its top level; it has series db, web (name one with --series)\n`);
    const unknown = remoteLb(['list', at, '--series', 'mail']);
    expect([unknown.status, unknown.stdout, unknown.stderr]).toEqual([2, '', `lb: no series mail in ${repo}; it has series db, web\n`]);
    const bad = remoteLb(['list', at, '--series', '../web']);
    expect([bad.status, bad.stderr]).toEqual([2, expect.stringMatching(/^lb: --series "\.\.\/web": [^\n]*\n$/)]);

    const target = join(work, 'restored');
    const restored = remoteLb(['restore', at, '--series', 'web', target]);
    expect(restored.status, restored.stderr).toBe(0);
    expect(rsyncDifferences(a, target)).toEqual([]);
  });

  it('pulls into a series of a local repository: per series, the next unchanged pull makes nothing', () => {
    const work = tempDir();
    const { a, b } = sources(work);
    const repo = join(work, 'pulled');
    for (const [source, series] of [[a, 'web'], [b, 'db']]) {
      const r = remoteLb(['backup', `root@127.0.0.1:${source}`, repo, '--series', series!, '--json']);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ created: true, series });
    }
    expect(rsyncDifferences(a, join(repo, 'web', 'latest', 'tree'))).toEqual([]);
    expect(rsyncDifferences(b, join(repo, 'db', 'latest', 'tree'))).toEqual([]);
    // The quick check compares with the series' own latest, whose source is this one.
    const again = remoteLb(['backup', `root@127.0.0.1:${a}`, repo, '--series', 'web', '--json', '--verify']);
    expect(again.status, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ created: false, bytes: { transferred: 0 }, verify: { differenceCount: 0 } });
  });
});
