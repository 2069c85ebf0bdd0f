// The read commands over SSH: `lb list|ls|log|diff|du|verify user@host:REPO` run
// their body next to the repository, in lb's agent, as an unprivileged user of a real
// sshd, and print here exactly what the same command prints on the repository
// locally: stdout and stderr byte for byte, text and --json, a non-UTF-8 name, the
// exit status, and each bad input's one line. A tampered agent's terminal escapes
// are shown harmless and its made-up exit status is refused.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttackPlan, ReadAttack } from './hostile-remote-agent.js';
import { ROOT, backup, killIfAlive, lb, type LbRun } from './helpers.js';
import type { Sshd } from './sshd.js';
import { createTestUser, removeTestUser, sshdForTestUsers } from './test-user.js';

// A name of this run's own: two test runs on one machine must not share, nor remove, each other's user.
const USER = `lbread${process.pid % 100_000}`;
const USER_HOME = `/tmp/${USER}-home`;
const LATIN1 = Buffer.from('caf\xe9.txt', 'latin1');

let sshd: Sshd;
let uid = 0;
/** Several snapshots of a changing source, made by lb as root, readable by the test user. */
let work: string;
let repo: string;
let names: string[];

beforeAll(async () => {
  ({ uid } = createTestUser(USER, USER_HOME));
  sshd = await sshdForTestUsers();
  ({ work, repo, names } = changingRepository());
}, 120_000);

afterAll(() => {
  sshd?.stop();
  if (work) spawnSync('rm', ['-rf', '--', work]);
  removeTestUser(USER, USER_HOME);
});

function changingRepository(): { work: string; repo: string; names: string[] } {
  // Not a tempDir(): that is removed after each test, and this repository serves them all.
  const work = mkdtempSync(join(tmpdir(), 'lb-remote-read-'));
  chmodSync(work, 0o755); // the test user reads the repository; nothing in it is changed for that
  const source = join(work, 'src');
  const repo = join(work, 'repo');
  const catalog = join(work, 'catalog.sqlite');
  mkdirSync(join(source, 'albums', 'summer'), { recursive: true });
  writeFileSync(join(source, 'albums', 'summer', 'IMG_1.jpg'), 'x'.repeat(2000));
  writeFileSync(join(source, 'albums', 'summer', 'IMG_2.jpg'), 'y'.repeat(3000));
  writeFileSync(Buffer.from(`${join(source, 'albums')}/${LATIN1.toString('latin1')}`, 'latin1'), 'latin-1 name');
  writeFileSync(join(source, 'notes.txt'), 'notes');
  symlinkSync('albums/summer/IMG_1.jpg', join(source, 'favourite'));
  const names = [backup(source, repo, catalog).snapshot!];
  renameSync(join(source, 'albums', 'summer'), join(source, 'albums', 'summer-2026'));
  writeFileSync(join(source, 'new.txt'), 'n'.repeat(100));
  unlinkSync(join(source, 'notes.txt'));
  names.push(backup(source, repo, catalog).snapshot!);
  writeFileSync(join(source, 'new.txt'), 'm'.repeat(150));
  chmodSync(join(source, 'albums', 'summer-2026', 'IMG_1.jpg'), 0o755); // still readable by all: the test user reads it
  utimesSync(join(source, 'albums', 'summer-2026', 'IMG_2.jpg'), 1_700_000_000, 1_700_000_000);
  names.push(backup(source, repo, catalog, ['--always']).snapshot!);
  return { work, repo, names };
}

const sshArgs = () => ['--ssh-p', String(sshd.port)];
const local = (command: string, args: string[], where = repo): LbRun => lb([command, where, ...args]);
const remote = (command: string, args: string[], where = repo): LbRun => lb([command, `${USER}@127.0.0.1:${where}`, ...args, ...sshArgs()], sshd.env);

/** Where lb caches its agent in the test user's home: named by the bundle's hash, as src/transport/ssh.ts names it. */
function cachedAgentPath(): string {
  const hash = createHash('sha256').update(readFileSync(join(ROOT, 'dist', 'agent.cjs'))).digest('hex').slice(0, 20);
  return join(USER_HOME, '.cache', 'lb', `agent-${hash}.cjs`);
}

describe('read commands over SSH', () => {
  const latin1Path = `albums/${LATIN1.toString('latin1')}`;
  const cases: [string, string[]][] = [
    ['list', []],
    ['list', ['--json']],
    ['ls', []],
    ['ls', ['-l', '-R']],
    ['ls', ['--json', '-R']],
    ['ls', ['--json', 'albums']],
    ['ls', ['FIRST', 'albums/summer', '-l']],
    ['log', ['new.txt']],
    ['log', ['albums/summer/IMG_1.jpg', '--json']],
    ['log', ['--path-base64', Buffer.from(latin1Path, 'latin1').toString('base64')]],
    ['diff', []],
    ['diff', ['--json']],
    ['diff', ['FIRST', 'latest']],
    ['du', []],
    ['du', ['--json']],
    ['verify', []],
    ['verify', ['--json', '--read-data']],
    ['verify', ['--read-data', '1/2']],
  ];
  for (const [command, args] of cases) {
    it(`lb ${command} ${args.join(' ')} prints what it prints locally, and ends the same way`, () => {
      const words = args.map((arg) => (arg === 'FIRST' ? names[0]! : arg));
      const here = local(command, words);
      expect(here.status, here.stderr).toBe(0);
      expect(here.stdout.length).toBeGreaterThan(0);
      const there = remote(command, words);
      expect(there.stderr).toBe(here.stderr);
      expect(there.stdout).toBe(here.stdout);
      expect(there.status).toBe(here.status);
    });
  }

  it('shows the name that is not UTF-8 escaped in text, and gives its exact bytes in --json', () => {
    const text = remote('ls', ['albums']).stdout;
    expect(text).toContain('albums/caf\\xe9.txt\n');
    const entries = JSON.parse(remote('ls', ['--json', 'albums']).stdout) as { path: string; pathBase64?: string }[];
    const named = entries.find((entry) => entry.pathBase64 !== undefined)!;
    expect(Buffer.from(named.pathBase64!, 'base64')).toEqual(Buffer.from(latin1Path, 'latin1'));
  });

  it('says each bad input in the one line it says locally, with the same exit status (--json: the same error object)', () => {
    const notRepository = join(work, 'src');
    for (const [command, args, where] of [
      ['ls', ['2099'], repo], // no such snapshot
      ['ls', [names[0]!.slice(0, 4)], repo], // a prefix of every snapshot
      ['ls', ['latest', 'no/such/path'], repo],
      ['log', ['no-such-file'], repo],
      ['diff', ['2099'], repo],
      ['list', [], notRepository],
      ['du', [], join(work, 'missing')],
      ['ls', ['latest', '../up'], repo],
    ] as const) {
      for (const json of [[], ['--json']]) {
        const here = local(command, [...args, ...json], where);
        const there = remote(command, [...args, ...json], where);
        const context = `lb ${command} ${args.join(' ')} ${json.join(' ')}`;
        expect(here.status, context).toBe(2);
        expect(here.stderr.split('\n'), context).toHaveLength(2); // one line
        expect(there.stderr, context).toBe(here.stderr);
        expect(there.stdout, context).toBe(here.stdout);
        expect(there.status, context).toBe(2);
      }
    }
  });

  it('finds the same damage with --read-data there as here: the same lines, exit status 5', () => {
    // A copy, so that the other tests read a sound repository.
    const damaged = join(work, 'damaged');
    expect(spawnSync('cp', ['-a', repo, damaged]).status).toBe(0);
    const objects = join(damaged, '.lb', 'objects');
    const fanout = readdirSync(objects).find((dir) => readdirSync(join(objects, dir)).length > 0)!;
    const object = join(objects, fanout, readdirSync(join(objects, fanout))[0]!);
    const bytes = readFileSync(object);
    bytes.writeUInt8(bytes[0]! ^ 0xff, 0);
    writeFileSync(object, bytes); // in place: its links in the snapshot trees see the flipped byte

    for (const json of [[], ['--json']]) {
      const here = local('verify', ['--read-data', ...json], damaged);
      expect(here.status).toBe(5);
      expect(here.stdout).toMatch(json.length === 0 ? /its content hashes to [0-9a-f]{64}, not to its name; linked from / : /"links":\[\{"snapshot"/);
      const there = remote('verify', ['--read-data', ...json], damaged);
      expect(there.stdout).toBe(here.stdout);
      expect(there.stderr).toBe(here.stderr);
      expect(there.status).toBe(5);
    }
  });
});

describe('a tampered agent reading a repository', () => {
  let hostileBundle: string;
  beforeAll(async () => {
    hostileBundle = join(sshd.dir, 'hostile-agent.cjs');
    await build({ entryPoints: [join(ROOT, 'test', 'hostile-remote-agent.ts')], outfile: hostileBundle, bundle: true, platform: 'node', format: 'cjs', target: 'node20', logLevel: 'warning' });
  });

  function plant(attack: ReadAttack): void {
    expect(remote('list', []).status).toBe(0); // the honest agent is pushed and cached first
    const planted = cachedAgentPath();
    writeFileSync(planted, readFileSync(hostileBundle));
    const plan: AttackPlan = { attack, outside: work };
    writeFileSync(`${planted}.attack.json`, JSON.stringify(plan));
    for (const path of [planted, `${planted}.attack.json`]) chownSync(path, uid, uid);
  }

  /** The honest agent back, and the tampered one, which lingers on purpose, stopped. */
  function unplant(): void {
    const planted = cachedAgentPath();
    if (existsSync(`${planted}.pid`)) killIfAlive(Number(readFileSync(`${planted}.pid`, 'utf8')));
    for (const path of [planted, `${planted}.attack.json`, `${planted}.pid`]) rmSync(path, { force: true });
  }

  it('has its terminal escapes printed as harmless text, on stdout and stderr', () => {
    plant('escape-line');
    try {
      const r = remote('list', []);
      expect(r.stdout).toBe('snapshot \\x1b]0;owned\\x07\\x1b[31mred\\x1b[2J\\x9b1m done\n');
      expect(r.stderr).toBe('lb: careful\\x1b]0;owned\\x07\\x1b[31mred\\x1b[2J\\x9b1m\n');
      expect(r.status).toBe(0);
    } finally {
      unplant();
    }
  });

  it('has an exit status lb does not document refused, in one line, exit status 1', () => {
    plant('bad-exit');
    try {
      const r = remote('verify', []);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^lb: refused what lbread[0-9]+@127\.0\.0\.1 sent \(peer sent an invalid exit status\); .*agent-\*\.cjs.*\n$/);
      expect(r.status).toBe(1);
    } finally {
      unplant();
    }
  });
});
