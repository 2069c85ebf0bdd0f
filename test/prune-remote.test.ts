// `lb prune user@host:REPO` and `lb backup … user@host:REPO --keep-…` through a
// real sshd, as an unprivileged user who owns the repository: the agent there
// prunes under the repository's lock and answers with what it kept, removed and
// freed, which lb prints as a local prune's. Bad input there is one line.
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, renameSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lb, snapshots, tempDir } from './helpers.js';
import type { Sshd } from './sshd.js';
import { createTestUser, removeTestUser, sshdForTestUsers } from './test-user.js';

const USER = `lbprune${process.pid % 100_000}`;
const USER_HOME = `/tmp/${USER}-home`;

let sshd: Sshd;
let ids = { uid: 0, gid: 0 };
let work: string;

beforeAll(async () => {
  ids = createTestUser(USER, USER_HOME);
  sshd = await sshdForTestUsers();
  work = mkdtempSync(join(tmpdir(), 'lb-prune-remote-'));
  chmodSync(work, 0o755);
}, 120_000);

afterAll(() => {
  sshd?.stop();
  if (work) spawnSync('rm', ['-rf', '--', work]);
  removeTestUser(USER, USER_HOME);
});

const at = (path: string) => `${USER}@127.0.0.1:${path}`;
const ssh = () => ['--ssh-p', String(sshd.port)];

/**
 * A repository of five dated snapshots (renamed to chosen days) that the test user's agent wrote, so its objects
 * are the user's as its manifests say; each removed snapshot holds a file of its own.
 */
function datedRepository(): { repo: string; src: string } {
  const dir = mkdtempSync(join(work, 'case-'));
  chmodSync(dir, 0o755);
  const src = join(dir, 'src');
  const repo = join(dir, 'repo');
  mkdirSync(src);
  mkdirSync(repo);
  chownSync(repo, ids.uid, ids.gid);
  writeFileSync(join(src, 'shared'), 's'.repeat(5000));
  const days = ['2026.01.01', '2026.01.02', '2026.01.03', '2026.01.04', '2026.01.05'];
  for (const [i, day] of days.entries()) {
    writeFileSync(join(src, 'own'), String(i).repeat(1000 + i));
    const r = lb(['backup', src, at(repo), '--json', '--catalog', join(dir, 'catalog.sqlite'), ...ssh()], sshd.env);
    if (r.status !== 0) throw new Error(r.stderr);
    const made = (JSON.parse(r.stdout) as { snapshot: string }).snapshot;
    renameSync(join(repo, made), join(repo, `${day}-12.00.00`));
  }
  unlinkSync(join(repo, 'latest'));
  symlinkSync(`${days.at(-1)}-12.00.00`, join(repo, 'latest'));
  return { repo, src };
}

describe('lb prune over SSH', () => {
  it('prunes there as a local prune does, dry run first, with the bytes it predicted freed', () => {
    const { repo } = datedRepository();
    const dry = lb(['prune', at(repo), '--keep-last', '2', '--dry-run', '--json', ...ssh()], sshd.env);
    expect(dry.stderr).toBe('');
    expect(dry.status).toBe(0);
    const planned = JSON.parse(dry.stdout);
    expect(planned.removed).toEqual(['2026.01.03-12.00.00', '2026.01.02-12.00.00', '2026.01.01-12.00.00']);
    expect(planned.predicted).toEqual({ objects: 3, bytes: 1000 + 1001 + 1002 });
    expect(snapshots(repo)).toHaveLength(5);
    const real = lb(['prune', at(repo), '--keep-last', '2', ...ssh()], sshd.env);
    expect(real.stderr).toBe('');
    expect(real.stdout).toBe('lb: removed 3 of 5 snapshot(s) and 3 object(s), freeing 3.00 kB\n');
    expect(snapshots(repo)).toEqual(['2026.01.04-12.00.00', '2026.01.05-12.00.00']);
    const verify = lb(['verify', at(repo), '--read-data', ...ssh()], sshd.env);
    expect(verify.stderr).toBe('');
    expect(verify.status).toBe(0);
    expect(readdirSync(join(repo, '.lb', 'trash'))).toEqual([]);
  });

  it('prunes after a backup that ended well, over the same repository host', () => {
    const { repo, src } = datedRepository();
    writeFileSync(join(src, 'new'), 'new content');
    const r = lb(['backup', src, at(repo), '--keep-last', '1', '--catalog', join(tempDir(), 'c.sqlite'), ...ssh()], sshd.env);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\nlb: removed 5 of 6 snapshot\(s\) and \d+ object\(s\), freeing /);
    expect(snapshots(repo)).toHaveLength(1);
  });

  it('prunes one series there, leaving the top level and naming what went as SERIES/NAME', () => {
    const { repo, src } = datedRepository();
    const catalog = join(tempDir(), 'c.sqlite');
    // Named in the past, as datedRepository does: two runs in one second get a name a second ahead, which a prune keeps as future.
    for (const [i, content] of ['one', 'two'].entries()) {
      writeFileSync(join(src, 'own'), content);
      const r = lb(['backup', src, at(repo), '--series', 'jail1', '--json', '--catalog', catalog, ...ssh()], sshd.env);
      expect(r.stderr).toBe('');
      const made = (JSON.parse(r.stdout) as { snapshot: string }).snapshot;
      renameSync(join(repo, 'jail1', made), join(repo, 'jail1', `2026.02.0${i + 1}-12.00.00`));
      unlinkSync(join(repo, 'jail1', 'latest'));
      symlinkSync(`2026.02.0${i + 1}-12.00.00`, join(repo, 'jail1', 'latest'));
    }
    const older = '2026.02.01-12.00.00';
    const r = lb(['prune', at(repo), '--series', 'jail1', '--keep-last', '1', '--json', ...ssh()], sshd.env);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).removed).toEqual([`jail1/${older}`]);
    expect(snapshots(join(repo, 'jail1'))).toHaveLength(1);
    expect(snapshots(repo)).toHaveLength(5);
    const unknown = lb(['prune', at(repo), '--series', 'jail9', '--keep-last', '1', ...ssh()], sshd.env);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/^lb: [^\n]*jail9[^\n]*jail1[^\n]*\n$/);
  });

  it('says what is wrong there in one line: no repository, a bad policy never leaves here', () => {
    const missing = lb(['prune', at(join(work, 'nothing-here')), '--keep-last', '1', ...ssh()], sshd.env);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/^lb: .*nothing-here does not exist, so it is no lb repository\n$/);
    const bad = lb(['prune', at(join(work, 'nothing-here')), '--keep-daily', 'lots', '--ssh-p', '1'], sshd.env);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^lb: --keep-daily wants a count/);
  });

  it('refuses a repository in use there in one line, removing nothing', () => {
    const { repo } = datedRepository();
    const lock = join(repo, '.lb', 'lock');
    // A live holder: this test process.
    writeFileSync(lock, JSON.stringify({ host: spawnSync('hostname', { encoding: 'utf8' }).stdout.trim(), pid: process.pid, since: new Date().toISOString() }) + '\n');
    chownSync(lock, ids.uid, ids.gid);
    const r = lb(['prune', at(repo), '--keep-last', '1', ...ssh()], sshd.env);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^lb: repository is in use by another lb run \(pid \d+/);
    expect(snapshots(repo)).toHaveLength(5);
  });
});
