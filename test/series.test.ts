// --series: many sources in one repository. Two sources sharing 90% of their
// files go to two series of one repository; the second stores only its own
// content (counted in the store, and checked by Python hashing both sources
// against the store's names), each series' latest is its source (the rsync
// oracle), every read command, restore and prune work within a series and refuse
// one the repository lacks, and a prune of one series leaves the other as it was,
// path by path and inode by inode.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { seriesNameProblem } from '../src/diff/series-name.js';
import { ProtocolError } from '../src/protocol/frames.js';
import { PROTOCOL_VERSION, decodeSourceMessage } from '../src/protocol/messages.js';
import { decodeReadRequest } from '../src/protocol/read.js';
import { decodeRestoreFromRequest } from '../src/protocol/restore-messages.js';
import { decodeVerifyBackupRequest } from '../src/protocol/verify-backup.js';
import { backup, lb, rsyncDifferences, tempDir } from './helpers.js';

const FIXED_TIME = 1_700_000_000;
const FILES = 300;
const SHARED = 270;

interface Sources {
  work: string;
  a: string;
  b: string;
  repo: string;
  catalog: string;
  /** The bytes of each source's own files (the 10% the other lacks). */
  ownBytes: { a: number; b: number };
}

/**
 * Two sources of FILES files in ten directories: the first SHARED are the same in
 * both, content and metadata (a common userland); the rest differ, each source its own.
 */
function twoSources(): Sources {
  const work = tempDir('lb-series-');
  const ownBytes = { a: 0, b: 0 };
  for (const side of ['a', 'b'] as const) {
    const root = join(work, side);
    for (let i = 0; i < FILES; i++) {
      const dir = join(root, 'usr', `lib${i % 10}`);
      mkdirSync(dir, { recursive: true });
      const path = join(dir, `file${i}`);
      const size = 100 + ((i * 37) % 1900);
      if (i < SHARED) writeFileSync(path, Buffer.alloc(size, `common ${i};`));
      else {
        writeFileSync(path, randomBytes(size));
        ownBytes[side] += size;
      }
      utimesSync(path, FIXED_TIME, FIXED_TIME);
    }
  }
  return { work, a: join(work, 'a'), b: join(work, 'b'), repo: join(work, 'repo'), catalog: join(work, 'catalog.sqlite'), ownBytes };
}

/** The store as the filesystem shows it: object files, their bytes, and their inodes. */
function store(repo: string): { objects: number; bytes: number; inodes: Set<bigint> } {
  const objects = join(repo, '.lb', 'objects');
  let count = 0;
  let bytes = 0;
  const inodes = new Set<bigint>();
  for (const fanout of readdirSync(objects)) {
    for (const name of readdirSync(join(objects, fanout))) {
      const stat = lstatSync(join(objects, fanout, name), { bigint: true });
      count++;
      bytes += Number(stat.size);
      inodes.add(stat.ino);
    }
  }
  return { objects: count, bytes, inodes };
}

/** Python, without lb: the SHA-256 of every regular file of the sources, and the content hashes the store's names say. */
function pythonHashes(sources: string[], repo: string): { sources: string[]; store: string[] } {
  const script = `
import hashlib, json, os, sys
*sources, repo = sys.argv[1:]
found = set()
for source in sources:
    for top, dirs, files in os.walk(source):
        for name in files:
            with open(os.path.join(top, name), 'rb') as f:
                found.add(hashlib.sha256(f.read()).hexdigest())
stored = set()
objects = os.path.join(repo, '.lb', 'objects')
for fanout in os.listdir(objects):
    for name in os.listdir(os.path.join(objects, fanout)):
        stored.add(name[:64])
print(json.dumps({'sources': sorted(found), 'store': sorted(stored)}))
`;
  const r = spawnSync('python3', ['-c', script, ...sources, repo], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Every path under `dir` with its inode, type and size: what "untouched" means for a series. */
function pathsAndInodes(dir: string): Map<string, string> {
  const seen = new Map<string, string>();
  const walk = (path: string, shown: string): void => {
    const stat = lstatSync(path, { bigint: true });
    seen.set(shown, `${stat.ino} ${stat.mode} ${stat.size} ${stat.mtimeNs}`);
    if (stat.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name), `${shown}/${name}`);
  };
  walk(dir, '.');
  return seen;
}

/**
 * Backups in one second are named a second apart, so the newest name may lie a moment in the
 * future, and prune never removes a snapshot dated in the future: wait until none is.
 */
function pastNewest(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2100);
}

function seriesBackup(source: string, s: Sources, series: string, extra: string[] = []) {
  return backup(source, s.repo, s.catalog, ['--series', series, ...extra]);
}

describe('two sources in two series of one repository', () => {
  it('stores in the second series only what the first lacks, and each latest is its source', () => {
    const s = twoSources();
    const first = seriesBackup(s.a, s, 'alpha');
    expect(first.files).toMatchObject({ new: FILES, linked: 0 });
    const afterFirst = store(s.repo);

    // --showfiles into a series not made yet: the store alone answers, and lacks beta's own files only.
    const own = Array.from({ length: FILES - SHARED }, (_, k) => `usr/lib${(SHARED + k) % 10}/file${SHARED + k}`);
    const missing = lb(['--showfiles', s.b, s.repo, '--series', 'beta', '--catalog', s.catalog]);
    expect(missing.status, missing.stderr).toBe(0);
    expect(missing.stdout.split('\n').filter((line) => line !== '').sort()).toEqual(own.sort());
    expect(existsSync(join(s.repo, 'beta'))).toBe(false);

    const second = seriesBackup(s.b, s, 'beta');
    const afterSecond = store(s.repo);
    // Only beta's own files arrived: the shared ones link the objects alpha stored.
    expect(second.files).toMatchObject({ new: FILES - SHARED, copied: 0, linked: SHARED });
    expect(second.bytes.transferred).toBe(s.ownBytes.b);
    expect(afterSecond.objects - afterFirst.objects).toBe(FILES - SHARED);
    expect(afterSecond.bytes - afterFirst.bytes).toBe(s.ownBytes.b);
    const hashes = pythonHashes([s.a, s.b], s.repo);
    expect(hashes.store).toEqual(hashes.sources);
    expect(hashes.sources).toHaveLength(SHARED + 2 * (FILES - SHARED));

    // The layout: each series its own directory of snapshots and latest, one store.
    expect(readdirSync(s.repo).sort()).toEqual(['.lb', 'alpha', 'beta']);
    expect(readdirSync(join(s.repo, 'alpha')).sort()).toEqual([first.snapshot, 'latest']);
    expect(readlinkSync(join(s.repo, 'beta', 'latest'))).toBe(second.snapshot);
    expect(rsyncDifferences(s.a, join(s.repo, 'alpha', 'latest', 'tree'))).toEqual([]);
    expect(rsyncDifferences(s.b, join(s.repo, 'beta', 'latest', 'tree'))).toEqual([]);

    // The identical-tree rule and the quick check are per series: alpha again, after beta, makes nothing.
    const again = seriesBackup(s.a, s, 'alpha');
    expect([again.created, again.bytes.transferred]).toEqual([false, 0]);
    // The top level beside them: Link-Backup's layout, the same store.
    const top = backup(s.a, s.repo, s.catalog);
    expect(top.files).toMatchObject({ new: 0, linked: FILES });
    expect(existsSync(join(s.repo, top.snapshot!, 'tree'))).toBe(true);
    expect(store(s.repo).objects).toBe(afterSecond.objects);
  });
});

describe('the commands within a series', () => {
  /** alpha: two snapshots (a shared file changed, an own file added), beta: one. */
  function twoSeries() {
    const s = twoSources();
    const alpha = [seriesBackup(s.a, s, 'alpha').snapshot!];
    seriesBackup(s.b, s, 'beta');
    writeFileSync(join(s.a, 'usr', 'lib3', 'file3'), 'alpha changed this one');
    writeFileSync(join(s.a, 'usr', 'added'), 'alpha alone');
    alpha.push(seriesBackup(s.a, s, 'alpha').snapshot!);
    return { ...s, alpha, betaOwn: `usr/lib${(FILES - 1) % 10}/file${FILES - 1}` };
  }

  it('list, ls, diff, log, du, verify and restore read the series named, and refuse one there is not in one line', () => {
    const s = twoSeries();
    const json = (args: string[]) => {
      const r = lb([...args, '--json']);
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    };
    expect(json(['list', s.repo, '--series', 'alpha']).map((row: { name: string }) => row.name)).toEqual(s.alpha);
    expect(json(['list', s.repo, '--series', 'beta'])).toHaveLength(1);

    const lsBeta = lb(['ls', s.repo, '--series', 'beta', '-R', 'usr']);
    expect(lsBeta.stdout).toContain(`file${FILES - 1}\n`);
    expect(lb(['ls', s.repo, '--series', 'alpha', 'usr']).stdout.split('\n')).toContain('usr/added');
    expect(lb(['ls', s.repo, '--series', 'beta', 'usr']).stdout.split('\n')).not.toContain('usr/added');

    const diff = lb(['diff', s.repo, '--series', 'alpha']);
    expect(diff.status, diff.stderr).toBe(0);
    expect(diff.stdout).toContain('M usr/lib3/file3\n');
    expect(diff.stdout).toContain('+ usr/added\n');
    expect(diff.stdout).toContain(`${s.alpha[0]} -> ${s.alpha[1]}: 1 added`);

    const log = lb(['log', s.repo, 'usr/added', '--series', 'alpha']);
    expect(log.status, log.stderr).toBe(0);
    expect(log.stdout).toContain('usr/added: in 1 of 2 snapshots');
    const notInBeta = lb(['log', s.repo, 'usr/added', '--series', 'beta']);
    expect([notInBeta.status, notInBeta.stderr]).toEqual([2, `lb: no usr/added in any of the 1 snapshots of series beta of ${s.repo}\n`]);

    // du: the series alone, or the whole repository with each row naming its series.
    const duBeta = json(['du', s.repo, '--series', 'beta']);
    expect(duBeta.snapshots.map((row: { series: string }) => row.series)).toEqual(['beta']);
    const duAll = json(['du', s.repo]);
    expect(duAll.snapshots.map((row: { series: string; name: string }) => `${row.series}/${row.name}`).sort()).toEqual(
      [`alpha/${s.alpha[0]}`, `alpha/${s.alpha[1]}`, `beta/${readlinkSync(join(s.repo, 'beta', 'latest'))}`].sort(),
    );
    const added = duAll.snapshots.reduce((sum: number, row: { addedBytes: number }) => sum + row.addedBytes, 0);
    expect(added + duAll.totals.unreferencedBytes).toBe(store(s.repo).bytes);

    const verifyAlpha = lb(['verify', s.repo, '--series', 'alpha', '--read-data']);
    expect([verifyAlpha.status, verifyAlpha.stdout]).toEqual([0, expect.stringMatching(/^checked 2 snapshots, .*: no problems\n$/)]);
    expect(lb(['verify', s.repo]).stdout).toMatch(/^checked 3 snapshots, .*: no problems\n$/);

    const target = join(s.work, 'restored');
    const restored = lb(['restore', s.repo, '--series', 'beta', target]);
    expect(restored.status, restored.stderr).toBe(0);
    expect(rsyncDifferences(s.b, target)).toEqual([]);

    const unknown = `lb: no series gamma in ${s.repo}; it has series alpha, beta\n`;
    const refusals: string[][] = [['list'], ['ls'], ['diff'], ['log', 'usr'], ['du'], ['verify'], ['restore', join(s.work, 'nowhere')]];
    for (const [command, ...rest] of refusals) {
      const r = lb([command!, s.repo, ...rest, '--series', 'gamma']);
      expect([command, r.status, r.stdout, r.stderr]).toEqual([command, 2, '', unknown]);
    }
    expect(existsSync(join(s.work, 'nowhere'))).toBe(false);
  });

  it('verify without --series checks every series, and names a series in what it finds; the next backup there repairs its latest', () => {
    const s = twoSeries();
    const latest = join(s.repo, 'beta', 'latest');
    unlinkSync(latest);
    const missing = lb(['verify', s.repo]);
    expect(missing.status).toBe(5);
    expect(missing.stdout).toContain('beta/latest is missing; it should point to the newest snapshot\n');
    symlinkSync('2020.01.01-00.00.00', latest);
    const dangling = lb(['verify', s.repo]);
    expect([dangling.status, dangling.stdout]).toEqual([5, expect.stringMatching(/^beta\/latest points to 2020\.01\.01-00\.00\.00, which is not a complete snapshot\nchecked 3 snapshots/)]);
    expect(lb(['verify', s.repo, '--series', 'alpha']).status).toBe(0);
    // A killed run's half-made link in a series is a leftover like any other.
    symlinkSync('nowhere', join(s.repo, 'beta', '.latest-999999'));
    const repaired = lb(['backup', s.b, s.repo, '--series', 'beta', '--catalog', s.catalog]);
    expect(repaired.status).toBe(0);
    expect(repaired.stderr).toMatch(/^lb: warning: latest points to 2020\.01\.01-00\.00\.00, which is gone; repaired to point to /);
    expect(repaired.stdout).toMatch(/^lb: nothing changed since the latest snapshot in series beta of /);
    expect(readdirSync(join(s.repo, 'beta')).sort()).toEqual([readlinkSync(join(s.repo, 'beta', 'latest')), 'latest']);
    expect(lb(['verify', s.repo]).status).toBe(0);
  });

  it('prune --series prunes that series alone: the other keeps every path and inode, and every object it links', () => {
    const s = twoSeries();
    const beta = join(s.repo, 'beta');
    const before = pathsAndInodes(beta);
    pastNewest();
    // alpha's first snapshot alone holds the old content of usr/lib3/file3 only if beta does not: it does, so that object stays.
    const r = lb(['prune', s.repo, '--series', 'alpha', '--keep-last', '1', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const outcome = JSON.parse(r.stdout);
    expect(outcome.removed).toEqual([`alpha/${s.alpha[0]}`]);
    expect(outcome.snapshots.map((v: { series: string; name: string; keep: boolean }) => [v.series, v.name, v.keep])).toEqual([
      ['alpha', s.alpha[1], true],
      ['alpha', s.alpha[0], false],
    ]);
    expect(readdirSync(join(s.repo, 'alpha')).sort()).toEqual([s.alpha[1], 'latest']);
    expect(pathsAndInodes(beta)).toEqual(before);
    const inodes = store(s.repo).inodes;
    for (const [path, facts] of before) {
      if (!path.includes('/tree/') || !lstatSync(join(beta, path)).isFile()) continue;
      expect(inodes.has(BigInt(facts.split(' ')[0]!)), path).toBe(true);
    }
    expect(rsyncDifferences(s.b, join(beta, 'latest', 'tree'))).toEqual([]);
    expect(lb(['verify', s.repo, '--read-data']).status).toBe(0);
    // The cron line: a backup into one series with --keep-… prunes that series alone.
    const cron = lb(['backup', s.a, s.repo, '--series', 'alpha', '--always', '--keep-last', '1', '--catalog', s.catalog]);
    expect(cron.status, cron.stderr).toBe(0);
    expect(cron.stdout).toMatch(/\nlb: removed 1 of 2 snapshot\(s\) and \d+ object\(s\), freeing [^\n]*\n$/);
    expect(readdirSync(join(s.repo, 'alpha')).filter((name) => name !== 'latest')).toEqual([readlinkSync(join(s.repo, 'alpha', 'latest'))]);
    expect(pathsAndInodes(beta)).toEqual(before);
    const unknown = lb(['prune', s.repo, '--series', 'gamma', '--keep-last', '1']);
    expect([unknown.status, unknown.stderr]).toEqual([2, `lb: no series gamma in ${s.repo}; it has series alpha, beta\n`]);
  });

  it('prune without --series applies the policy within each series and the top level, each on its own; GC is global', () => {
    const s = twoSeries();
    const top = [backup(s.a, s.repo, s.catalog).snapshot!];
    top.push(backup(s.a, s.repo, s.catalog, ['--always']).snapshot!);
    const beta = [readlinkSync(join(s.repo, 'beta', 'latest'))];
    beta.push(seriesBackup(s.b, s, 'beta', ['--always']).snapshot!);
    pastNewest();
    const dry = lb(['prune', s.repo, '--keep-last', '1', '--dry-run']);
    expect(dry.stdout.split('\n').filter((line) => line.startsWith('remove'))).toEqual([`remove ${top[0]}`, `remove alpha/${s.alpha[0]}`, `remove beta/${beta[0]}`]);
    const r = lb(['prune', s.repo, '--keep-last', '1', '--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).removed).toEqual([top[0], `alpha/${s.alpha[0]}`, `beta/${beta[0]}`]);
    expect(readdirSync(join(s.repo, 'alpha')).sort()).toEqual([s.alpha[1], 'latest']);
    expect(readdirSync(join(s.repo, 'beta')).sort()).toEqual([beta[1], 'latest']);
    expect(readdirSync(s.repo).filter((name) => /^\d{4}\./.test(name))).toEqual([top[1]]);
    // Nothing a kept snapshot links went; the objects only removed snapshots held did (link count 1 is gone).
    const objects = join(s.repo, '.lb', 'objects');
    for (const fanout of readdirSync(objects)) {
      for (const name of readdirSync(join(objects, fanout))) expect(lstatSync(join(objects, fanout, name)).nlink).toBeGreaterThan(1);
    }
    expect(lb(['verify', s.repo, '--read-data']).status).toBe(0);
    expect(rsyncDifferences(s.a, join(s.repo, 'alpha', 'latest', 'tree'))).toEqual([]);
    expect(rsyncDifferences(s.b, join(s.repo, 'beta', 'latest', 'tree'))).toEqual([]);
  });
});

const BAD_NAMES = ['', '.hidden', '.lb', '-x', 'latest', '2026.11.22-03.00.00', 'a/b', '..', 'x'.repeat(65), 'café', 'two words', 'nul\0'];

describe('series names and places', () => {
  it("holds a peer's series name to the same rule as the command line's, in every request that carries one", () => {
    const options = { snapshotName: '2026.11.22-03.00.00', always: false, numericIds: false, verbose: false, quickCheck: false, sourceLabel: '/src', purpose: 'backup' };
    const requests = (series: string) => [
      () => decodeSourceMessage({ t: 'hello', version: PROTOCOL_VERSION, repository: '/r', options: { ...options, series } }),
      () => decodeReadRequest({ t: 'read', version: PROTOCOL_VERSION, repository: '/r', json: false, read: { command: 'list' }, series }),
      () => decodeRestoreFromRequest({ t: 'restore-from', version: PROTOCOL_VERSION, repository: '/r', paths: [], listOnly: false, series }),
      () => decodeVerifyBackupRequest({ t: 'verify-backup', version: PROTOCOL_VERSION, repository: '/r', snapshot: null, publishedNow: false, series }),
    ];
    for (const name of BAD_NAMES) {
      expect(seriesNameProblem(name), name).not.toBeNull();
      for (const decode of requests(name)) expect(decode, name).toThrow(ProtocolError);
    }
    for (const name of ['web', 'x'.repeat(64), 'db_1.old-2', '_', '2026']) {
      expect(seriesNameProblem(name), name).toBeNull();
      for (const decode of requests(name)) expect(JSON.stringify(decode())).toContain(`"series":"${name}"`);
    }
    // Without one: no series field at all, as before series existed.
    expect(decodeReadRequest({ t: 'read', version: PROTOCOL_VERSION, repository: '/r', json: false, read: { command: 'du' } })).not.toHaveProperty('series');
  });

  it('refuses a bad series name in one line, before anything is written', () => {
    const s = twoSources();
    const bad = BAD_NAMES.filter((name) => !name.includes('\0')); // no NUL on a command line
    for (const name of bad) {
      const r = lb(['backup', s.a, s.repo, '--series', name, '--catalog', s.catalog]);
      expect([name, r.status, r.stdout]).toEqual([name, 2, '']);
      expect(r.stderr).toMatch(/^lb: --series ".*": [^\n]*\n$/);
      expect(existsSync(s.repo)).toBe(false);
      expect(existsSync(s.catalog)).toBe(false);
    }
    seriesBackup(s.a, s, 'alpha');
    for (const name of bad) {
      const r = lb(['list', s.repo, '--series', name]);
      expect([name, r.status, r.stderr]).toEqual([name, 2, expect.stringMatching(/^lb: --series ".*": [^\n]*\n$/)]);
    }
    // The longest name is 64 characters.
    expect(seriesBackup(s.a, s, 'x'.repeat(64)).created).toBe(true);
  });

  it('never writes through a symlink or over a file that has the series name', () => {
    const s = twoSources();
    seriesBackup(s.a, s, 'alpha');
    const elsewhere = join(s.work, 'elsewhere');
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, join(s.repo, 'linked'));
    writeFileSync(join(s.repo, 'plain'), 'a file');
    for (const [name, kind] of [['linked', 'a symbolic link'], ['plain', 'a file']]) {
      const r = lb(['backup', s.b, s.repo, '--series', name!, '--catalog', s.catalog]);
      expect([r.status, r.stderr]).toEqual([2, `lb: ${join(s.repo, name!)} is ${kind}, not a series directory; choose another --series name\n`]);
      const read = lb(['list', s.repo, '--series', name!]);
      expect([read.status, read.stderr]).toEqual([2, `lb: no series ${name} in ${s.repo}; it has series alpha\n`]);
    }
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('keeps one lock for the whole repository: a run holding it refuses a backup into any series', () => {
    const s = twoSources();
    seriesBackup(s.a, s, 'alpha');
    const lock = join(s.repo, '.lb', 'lock');
    writeFileSync(lock, JSON.stringify({ host: 'another-machine', pid: 4242, since: '2026-11-22T03:00:00.000Z', doing: 'backup' }));
    const r = lb(['backup', s.b, s.repo, '--series', 'beta', '--catalog', s.catalog]);
    expect([r.status, r.stderr]).toEqual([1, expect.stringMatching(/^lb: repository is in use by another lb backup \(pid 4242 on another-machine, [^\n]*\n$/)]);
    expect(readdirSync(s.repo).sort()).toEqual(['.lb', 'alpha']);
    unlinkSync(lock);
    expect(seriesBackup(s.b, s, 'beta').created).toBe(true);
  });

  it('lb list on a repository that has only series says so, naming them; with a top level too it names them after the table', () => {
    const s = twoSources();
    seriesBackup(s.a, s, 'alpha');
    seriesBackup(s.b, s, 'beta');
    const only = lb(['list', s.repo]);
    expect(only).toEqual({ status: 0, stdout: `lb: the repository ${s.repo} holds no snapshot at its top level; it has series alpha, beta (name one with --series)\n`, stderr: '' });
    const ls = lb(['ls', s.repo]);
    expect([ls.status, ls.stderr]).toEqual([2, `lb: the repository ${s.repo} holds no snapshot at its top level; it has series alpha, beta (name one with --series)\n`]);
    backup(s.a, s.repo, s.catalog);
    const both = lb(['list', s.repo]);
    expect(both.status).toBe(0);
    expect(both.stdout).toMatch(/1 snapshot\(s\); \* is latest\nthe repository holds series too: alpha, beta \(lb list REPOSITORY --series NAME\)\n$/);
  });
});
