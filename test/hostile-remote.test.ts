// A compromised remote. lb caches its agent on the remote and runs it again without
// re-sending it, so whoever controls the remote controls that agent. Here it is
// replaced by test/hostile-remote-agent.ts, which attacks this lb through the real
// protocol over a real sshd. Pulling, this lb is the repository side: whatever the
// agent sends, lb refuses in one line of its own, writes nothing outside the
// repository, publishes no snapshot, leaves no work behind, and the next honest pull
// is unharmed. Pushing, this lb is the source side: asked for what it never listed,
// it refuses in one line of its own and stops.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Attack, AttackPlan, RepositoryAttack, SourceAttack } from './hostile-remote-agent.js';
import { ROOT, lb, rsyncDifferences, snapshots, tempDir } from './helpers.js';
import { startSshd, type Sshd } from './sshd.js';

let sshd: Sshd;
let hostileBundle: string;

beforeAll(async () => {
  sshd = await startSshd({ ownRemoteHome: true });
  hostileBundle = join(sshd.dir, 'hostile-agent.cjs');
  await build({
    entryPoints: [join(ROOT, 'test', 'hostile-remote-agent.ts')],
    outfile: hostileBundle,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    logLevel: 'warning',
  });
});
afterAll(() => sshd?.stop());

/** Where lb caches its agent on the remote: named by the bundle's hash, as src/transport/ssh.ts names it. */
function cachedAgentPath(): string {
  const hash = createHash('sha256').update(readFileSync(join(ROOT, 'dist', 'agent.cjs'))).digest('hex').slice(0, 20);
  return join(sshd.remoteHome!, '.cache', 'lb', `agent-${hash}.cjs`);
}

function pull(source: string, repo: string) {
  return lb(['backup', `root@127.0.0.1:${source}`, repo, '--ssh-p', String(sshd.port)], sshd.env);
}

/** Every path beneath `root` but `skip` and what lies under it, with type, size and mtime. */
function listing(root: string, skip: string): string[] {
  const lines: string[] = [];
  const visit = (path: string) => {
    if (path === skip) return;
    const stat = lstatSync(path);
    lines.push(`${relative(root, path)} ${stat.isDirectory() ? 'dir' : stat.isSymbolicLink() ? 'link' : 'file'} ${stat.size} ${stat.mtimeMs}`);
    if (stat.isDirectory()) for (const name of readdirSync(path).sort()) visit(join(path, name));
  };
  for (const name of readdirSync(root).sort()) visit(join(root, name));
  return lines;
}

/** The repository as an attack may not change it: snapshots, `latest`, no work left in .lb/tmp, no lock. */
function repositoryState(repo: string) {
  return {
    snapshots: existsSync(repo) ? snapshots(repo) : [],
    latest: existsSync(join(repo, 'latest')) ? readlinkSync(join(repo, 'latest')) : null,
    tmp: existsSync(join(repo, '.lb', 'tmp')) ? readdirSync(join(repo, '.lb', 'tmp')) : [],
    locked: existsSync(join(repo, '.lb', 'lock')),
  };
}

/** A work directory with a source to pull, a repository path and a directory outside it that attacks aim at. */
function setting() {
  const work = tempDir();
  const source = join(work, 'photos');
  mkdirSync(join(source, 'holiday'), { recursive: true });
  writeFileSync(join(source, 'holiday', 'beach.jpg'), 'sand and sea');
  writeFileSync(join(source, 'notes.txt'), 'remember the sunscreen');
  const outside = join(work, 'outside');
  mkdirSync(outside);
  return { work, source, outside, repo: join(work, 'repo') };
}

/** Replace the cached agent with the hostile one, primed with `attack`; returns a function that ends it. */
function plant(attack: Attack, outside: string): () => void {
  const path = cachedAgentPath();
  mkdirSync(join(sshd.remoteHome!, '.cache', 'lb'), { recursive: true });
  copyFileSync(hostileBundle, path);
  writeFileSync(`${path}.attack.json`, JSON.stringify({ attack, outside } satisfies AttackPlan));
  return () => {
    // It stays on after lb hangs up, by design; it is ours to end.
    if (existsSync(`${path}.pid`)) {
      try {
        process.kill(Number(readFileSync(`${path}.pid`, 'utf8')));
      } catch {
        // already gone
      }
    }
    rmSync(path, { force: true });
    rmSync(`${path}.attack.json`, { force: true });
    rmSync(`${path}.pid`, { force: true });
  };
}

const attacks: [SourceAttack, string, RegExp][] = [
  ['dot-dot', 'an entry with ../ in its path', /unsafe path/],
  ['absolute', 'an absolute path', /unsafe path/],
  ['raw-dot-dot', 'a ../ path sent as raw bytes', /unsafe path/],
  ['nul', 'a NUL in a path', /unsafe path/],
  ['through-symlink', 'an entry beneath a symlink it sent to an outside directory', /parent is not a directory it sent/],
  ['unasked-data', 'data for an entry lb never asked for', /asked nothing of it/],
  ['other-repository', 'a hello naming another repository', /the source named the repository/],
];

/** Runs the attack against `repo` and checks everything it must not have achieved. */
function expectRefused(attack: Attack, message: RegExp, s: ReturnType<typeof setting>): void {
  const before = { repository: repositoryState(s.repo), outside: listing(s.work, s.repo) };
  const end = plant(attack, s.outside);
  const r = (() => {
    try {
      return pull(s.source, s.repo);
    } finally {
      end();
    }
  })();
  expect(r.stderr).toMatch(/^lb: [^\n]+\n$/);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/all is well|backup complete/); // the remote's words are not lb's verdict
  expect(r.status).toBe(1);
  expect(readdirSync(s.outside)).toEqual([]);
  expect(listing(s.work, s.repo)).toEqual(before.outside);
  expect(repositoryState(s.repo)).toEqual(before.repository);
}

/** An honest pull after the attack: lb sends its real agent again and makes a faithful snapshot. */
function expectHonestPullWorks(s: ReturnType<typeof setting>): void {
  writeFileSync(join(s.source, 'after.txt'), 'still here');
  const r = pull(s.source, s.repo);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(readFileSync(cachedAgentPath())).toEqual(readFileSync(join(ROOT, 'dist', 'agent.cjs')));
  expect(rsyncDifferences(s.source, join(s.repo, 'latest', 'tree'))).toEqual([]);
  expect(repositoryState(s.repo).tmp).toEqual([]);
}

describe('a pull from a remote whose cached lb agent was replaced by a hostile one', () => {
  for (const [attack, what, message] of attacks) {
    it(`refuses ${what}, and an honest pull afterwards works`, () => {
      const s = setting();
      const first = pull(s.source, s.repo);
      expect(first.stderr).toBe('');
      expect(first.status).toBe(0);
      expect(existsSync(cachedAgentPath())).toBe(true);
      expectRefused(attack, message, s);
      expect(snapshots(s.repo)).toHaveLength(1);
      expectHonestPullWorks(s);
      expect(snapshots(s.repo)).toHaveLength(2);
    });
  }

  it('refuses a symlink escape into a repository that did not exist yet, and leaves no snapshot', () => {
    const s = setting();
    expectRefused('through-symlink', /parent is not a directory it sent/, s);
    expect(repositoryState(s.repo)).toEqual({ snapshots: [], latest: null, tmp: [], locked: false });
    expectHonestPullWorks(s);
  });
});

describe('a push to a remote whose cached lb agent was replaced by a hostile one', () => {
  const pushAttacks: [RepositoryAttack, string, RegExp][] = [
    ['want-unlisted', 'a request for an entry it never listed', /asked for entry \d+, which is not a pending file/],
    ['want-directory', 'a request for the content of a directory', /asked for entry 0, which is not a pending file/],
    ['resume-unasked', 'an offer to resume a transfer it did not ask for', /offered to resume entry \d+ without asking for it/],
  ];
  for (const [attack, what, message] of pushAttacks) {
    it(`refuses ${what} in one line, and leaves the source as it was`, () => {
      const s = setting();
      const push = () => lb(['backup', s.source, `root@127.0.0.1:${s.repo}`, '--ssh-p', String(sshd.port)], sshd.env);
      const first = push();
      expect(first.stderr).toBe('');
      expect(first.status).toBe(0);
      const before = listing(s.work, s.repo);
      const end = plant(attack, s.outside);
      const r = (() => {
        try {
          return push();
        } finally {
          end();
        }
      })();
      expect(r.stderr).toMatch(/^lb: [^\n]+\n$/);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toMatch(/refused what root@127\.0\.0\.1 sent .*; the backup was stopped\./);
      expect(r.stderr).not.toMatch(/all is well|backup complete/);
      expect(r.status).toBe(1);
      expect(listing(s.work, s.repo)).toEqual(before);
      expect(readdirSync(s.outside)).toEqual([]);
    });
  }
});
