// `lb prune` end to end, on the real filesystem with the real bin/lb: what a dry run says against
// what the prune then does (lb du, du -sb), what a prune leaves (rsync oracle per kept snapshot,
// link counts, verify --read-data), trees that are hard to remove, bad input, and the lock.
// The retention rules themselves are unit-tested in retention.test.ts; `lb backup --keep-*` in
// backup-keep.test.ts; prunes killed midway in prune-crash.test.ts.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatBytes } from '../src/cli/format.js';
import { DatedRepository, apparentBytes, copyTree, expectPrunedTo, storeObjects, storedBytes } from './dated-repository.js';
import { LB, deepFile, lb, mountOrSkip, run, skipBecause, snapshots, tempDir, umount } from './helpers.js';
import { lstatState } from './seeding-oracles.js';
import { TracedRun, holdAt } from './traced-run.js';

const S1 = '2025.01.10-09.00.00';
const S2 = '2025.01.20-09.00.00';
const S3 = '2025.02.10-09.00.00';
const S4 = '2025.02.20-09.00.00';
const S5 = '2025.03.05-09.00.00';
const S6 = '2025.03.15-09.00.00';
/** Keeps S6 (newest, last, monthly) and S4 (the newest of February); removes the rest. */
const POLICY = ['--keep-last', '1', '--keep-monthly', '2'];
const KEPT = [S4, S6];

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const objectOf = (hash: string) => `${hash.slice(0, 2)}/${hash}`;

let fixtureDir: string;
let fixture: DatedRepository;
/** Hashes of contents only removed snapshots (or no snapshot) hold, and of contents a kept one holds too. */
const exclusive: string[] = [];
const shared: string[] = [];
let twin: string;

/** Writes `name` in the source with fresh random content; its hash. */
function put(name: string, size = 20_000): string {
  const data = randomBytes(size);
  writeFileSync(join(fixture.src, name), data);
  return sha256(data);
}

beforeAll(() => {
  // Built once (a few backups); each test prunes a `cp -a` of it.
  fixtureDir = mkdtempSync(join(tmpdir(), 'lb-prune-fixture-'));
  fixture = new DatedRepository(fixtureDir);
  const { src, repo, catalog } = fixture;
  const everywhere = put('shared.bin');
  exclusive.push(put('only-s1.bin'), put('s1-s2.bin'), put('edited.txt', 3000));
  const linked = put('link-a');
  spawnSync('ln', [join(src, 'link-a'), join(src, 'link-b')]); // a source hard-link group
  fixture.backupAs(S1);
  rmSync(join(src, 'only-s1.bin'));
  shared.push(put('s2-s6.bin'));
  fixture.backupAs(S2);
  rmSync(join(src, 's1-s2.bin'));
  shared.push(put('s3-s4.bin'));
  // S3's link to shared.bin's object fails with EMLINK (strace injects it): lb links a twin, `<object>+1`, which only S3 links.
  const primary = join(repo, '.lb', 'objects', objectOf(everywhere));
  const traced = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-P', primary, '-e', 'trace=link,linkat', '-e', 'inject=link,linkat:error=EMLINK:when=1', process.execPath, LB, src, repo, '--always', '--quiet', '--catalog', catalog], { encoding: 'utf8' });
  if (traced.status !== 0) throw new Error(`the backup making a twin failed: ${traced.stderr}`);
  fixture.adopt(S3);
  twin = `${objectOf(everywhere)}+1`;
  if (storeObjects(repo).get(twin)?.nlink !== 2) throw new Error('no twin made');
  exclusive.push(twin);
  shared.push(put('edited.txt', 3000));
  fixture.backupAs(S4);
  rmSync(join(src, 's3-s4.bin'));
  exclusive.push(put('s5-only.bin'));
  writeFileSync(join(src, 'variant.bin'), readFileSync(join(src, 'shared.bin')));
  chmodSync(join(src, 'variant.bin'), 0o600); // same content, other metadata: an object of its own
  exclusive.push('variant');
  fixture.backupAs(S5);
  rmSync(join(src, 's5-only.bin'));
  rmSync(join(src, 'variant.bin'));
  shared.push(put('s6.bin'), everywhere, linked);
  fixture.backupAs(S6);
  // Content a --catalogonly run stored, which no snapshot links; and what an interrupted transfer left.
  const seeding = join(fixtureDir, 'seeding');
  mkdirSync(seeding);
  const seeded = randomBytes(7000);
  writeFileSync(join(seeding, 'seeded.bin'), seeded);
  const r = lb(['--catalogonly', seeding, repo, '--catalog', catalog, '--quiet']);
  if (r.status !== 0) throw new Error(`--catalogonly failed: ${r.stderr}`);
  exclusive.push(sha256(seeded));
  mkdirSync(join(repo, '.lb', 'partial'), { mode: 0o700 });
  writeFileSync(join(repo, '.lb', 'partial', sha256('a large file')), randomBytes(5000));
});

afterAll(() => {
  spawnSync('rm', ['-rf', fixtureDir]);
});

function fresh(): DatedRepository {
  return fixture.copyTo(tempDir());
}

function pruneJson(repo: string, args: string[]): { snapshots: { name: string; keep: boolean; reasons: string[] }[]; removed: string[]; predicted?: { objects: number; bytes: number }; freed?: { objects: number; bytes: number } } {
  const r = lb(['prune', repo, ...args, '--json']);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe('lb prune --dry-run', () => {
  it('lists every snapshot with keep or remove and why, changes nothing, and predicts exactly the bytes the prune frees', () => {
    const { repo } = fresh();
    const before = lstatState(repo);
    const text = lb(['prune', repo, ...POLICY, '--dry-run']);
    expect(text.status, text.stderr).toBe(0);
    const dry = pruneJson(repo, [...POLICY, '--dry-run']);
    expect(lstatState(repo)).toEqual(before);
    expect(dry.snapshots).toEqual([
      { name: S6, keep: true, reasons: ['newest', 'last', 'monthly'] },
      { name: S5, keep: false, reasons: [] },
      { name: S4, keep: true, reasons: ['monthly'] },
      { name: S3, keep: false, reasons: [] },
      { name: S2, keep: false, reasons: [] },
      { name: S1, keep: false, reasons: [] },
    ]);
    expect(dry.removed).toEqual([S5, S3, S2, S1]);
    expect(dry.predicted!.objects).toBe(exclusive.length);
    expect(text.stdout).toBe(
      [
        `keep   ${S6}  (newest, last, monthly)`,
        `remove ${S5}`,
        `keep   ${S4}  (monthly)`,
        `remove ${S3}`,
        `remove ${S2}`,
        `remove ${S1}`,
        `lb: would remove 4 of 6 snapshot(s), freeing ${formatBytes(dry.predicted!.bytes)} in ${exclusive.length} object(s)`,
        '',
      ].join('\n'),
    );

    const stored = storedBytes(repo);
    const store = apparentBytes(join(repo, '.lb', 'objects'));
    const done = pruneJson(repo, POLICY);
    expect(done.removed).toEqual(dry.removed);
    expect(done.freed).toEqual(dry.predicted);
    expect(done).not.toHaveProperty('predicted'); // only a dry run pays for the prediction
    expect(stored - storedBytes(repo)).toBe(dry.predicted!.bytes);
    expect(store - apparentBytes(join(repo, '.lb', 'objects'))).toBe(dry.predicted!.bytes);
  });
});

describe('lb prune', () => {
  it('leaves the kept snapshots whole and a store of exactly what they link: shared objects stay, the rest, twins and partial transfers go', () => {
    const repository = fresh();
    const { repo } = repository;
    const objectsBefore = storeObjects(repo);
    const r = lb(['prune', repo, ...POLICY, '-v']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n').slice(0, 6)).toEqual([`keep   ${S6}  (newest, last, monthly)`, `remove ${S5}`, `keep   ${S4}  (monthly)`, `remove ${S3}`, `remove ${S2}`, `remove ${S1}`]);
    expect(r.stdout.split('\n').slice(6).join('\n')).toMatch(/^lb: removed 4 of 6 snapshot\(s\) and 7 object\(s\), freeing \d+ kB\n$/);
    expectPrunedTo(repository, KEPT);
    const objectsAfter = storeObjects(repo);
    for (const hash of shared) expect(objectsAfter.get(objectOf(hash))?.ino, hash).toBe(objectsBefore.get(objectOf(hash))!.ino);
    for (const hash of exclusive.filter((h) => h.length === 64)) expect(objectsAfter.has(objectOf(hash)), hash).toBe(false);
    expect(objectsAfter.has(twin)).toBe(false);
    expect([...objectsAfter.keys()].filter((name) => name.includes('.600.'))).toEqual([]); // the variant
    expect(objectsAfter.size).toBe(objectsBefore.size - exclusive.length);
    expect(existsSync(join(repo, '.lb', 'partial'))).toBe(false);
    expect(readdirSync(join(repo, '.lb')).sort()).toEqual(['format', 'last-write', 'objects', 'reserve', 'tmp', 'trash']);
    // Nothing left to do: a second run says so and frees nothing.
    const again = lb(['prune', repo, ...POLICY]);
    expect(again).toMatchObject({ status: 0, stdout: 'lb: nothing to remove: the policy keeps all 2 snapshot(s)\n', stderr: '' });
  });

  it('refuses bad input in one line, removing nothing', (ctx) => {
    const { work, repo, src } = fresh();
    const before = lstatState(repo);
    const usage = (args: string[], line: string | RegExp) => {
      const r = lb(['prune', ...args]);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      if (typeof line === 'string') expect(r.stderr).toBe(`lb: ${line}\n`);
      else expect(r.stderr).toMatch(line);
    };
    usage([repo], 'prune wants a policy: at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within');
    usage([repo, '--keep-daily', '-1'], '--keep-daily wants a count (0 or more) or "unlimited", not "-1"');
    usage([repo, '--keep-daily', 'x'], '--keep-daily wants a count (0 or more) or "unlimited", not "x"');
    usage([repo, '--keep-last', '1.5'], '--keep-last wants a count (0 or more) or "unlimited", not "1.5"');
    usage([repo, '--keep-within', '3w'], '--keep-within wants a duration of years, months, days and hours in that order, such as 1y2m3d4h or 7d, not "3w"');
    usage([repo, '--keep-lats', '1'], /^lb: unknown option '--keep-lats' \(Did you mean --keep-last\?\); usage: lb prune .*\n$/);
    const failure = (path: string, line: string) => {
      const r = lb(['prune', path, '--keep-last', '1']);
      expect(r).toMatchObject({ status: 1, stdout: '', stderr: `lb: ${line}\n` });
    };
    failure(src, `${src} is not an lb repository (it has no .lb/format)`);
    failure(join(work, 'missing'), `${join(work, 'missing')} does not exist, so it is no lb repository`);
    expect(lstatState(repo)).toEqual(before);

    // In use: the lock names a live process of this host.
    const holder = spawn('sleep', ['30']);
    try {
      const started = readFileSync(`/proc/${holder.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[19];
      const lock = join(repo, '.lb', 'lock');
      writeFileSync(lock, JSON.stringify({ host: hostname(), pid: holder.pid, since: '2026-01-01T00:00:00.000Z', started }));
      const held = lstatState(repo);
      const r = lb(['prune', repo, '--keep-last', '1']);
      expect(r).toMatchObject({ status: 1, stdout: '' });
      expect(r.stderr).toBe(`lb: repository is in use by another lb run (pid ${holder.pid} on ${hostname()}, since 2026-01-01T00:00:00.000Z); if that run is gone for good, remove ${lock}\n`);
      expect(lstatState(repo)).toEqual(held);
      rmSync(lock);
    } finally {
      holder.kill();
    }

    // Read-only: a bind mount of the repository remounted read-only.
    const unlocked = lstatState(repo);
    const readOnly = join(work, 'read-only');
    mountOrSkip(ctx, ['--bind', repo], readOnly);
    try {
      const remount = run('mount', ['-o', 'remount,ro,bind', readOnly]);
      if (!remount.ok) skipBecause(ctx, `cannot remount a bind mount read-only here: ${remount.err.trim()}`);
      const r = lb(['prune', readOnly, '--keep-last', '1']);
      expect(r).toMatchObject({ status: 1, stdout: '' });
      expect(r.stderr).toBe(`lb: ${readOnly} is read-only (a read-only filesystem), so nothing can be pruned there; nothing was removed\n`);
      const json = lb(['prune', readOnly, '--keep-last', '1', '--json']);
      expect(JSON.parse(json.stdout)).toMatchObject({ status: 'error', exit: 1 });
      expect(lb(['prune', readOnly, '--keep-last', '1', '--dry-run']).status).toBe(0); // looking needs no writing
    } finally {
      umount(readOnly);
    }
    expect(lstatState(repo)).toEqual(unlocked);
  });

  it('says in one line when it cannot write the lock: another user\'s repository, a full filesystem', (ctx) => {
    const { work, repo } = fresh();
    chmodSync(work, 0o755);
    const before = lstatState(repo);
    // Run as nobody (tests run as root, who may write anywhere).
    const other = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, LB, 'prune', repo, '--keep-last', '1'], { encoding: 'utf8' });
    expect(other.stderr).toBe(`lb: ${repo} is not writable by this user (permission denied), so nothing can be pruned there; prune as the user who writes its backups; nothing was removed\n`);
    expect(other.status).toBe(1);
    expect(lstatState(repo)).toEqual(before);

    const full = join(work, 'full');
    mountOrSkip(ctx, ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs'], full);
    try {
      const onFull = join(full, 'repo');
      copyTree(repo, onFull);
      const snapshotsBefore = snapshots(onFull);
      // A repository without the reserve block (made before lb kept one): the lock cannot be written.
      rmSync(join(onFull, '.lb', 'reserve'), { force: true });
      const fill = spawnSync('sh', ['-c', `head -c 4000000 /dev/zero > ${join(full, 'filler')}`], { encoding: 'utf8' });
      expect(fill.stderr).toMatch(/No space left on device/);
      const r = lb(['prune', onFull, '--keep-last', '1']);
      expect(r).toMatchObject({ status: 1, stdout: '' });
      expect(r.stderr).toBe(`lb: ${onFull} is on a full filesystem, too full for even the lock file; free a few kB there (root may write into ext4's reserve) and prune again; nothing was removed\n`);
      expect(snapshots(onFull)).toEqual(snapshotsBefore);
      expect(existsSync(join(onFull, '.lb', 'lock'))).toBe(false);
    } finally {
      umount(full);
    }
  });

  it("empties read-only directories of another user than root: that user's prune removes them, and so does the backup after a killed one", () => {
    const work = tempDir();
    const repository = new DatedRepository(work);
    const { src, repo, catalog } = repository;
    const asNobody = (args: string[]) => {
      const r = spawnSync('setpriv', ['--reuid', '65534', '--regid', '65534', '--clear-groups', process.execPath, LB, ...args], { encoding: 'utf8' });
      return { status: r.status, stderr: r.stderr };
    };
    // A source directory of mode 0555, as many are (a Go module cache, a copied CD): its snapshot's copy is 0555 too.
    mkdirSync(join(src, 'read-only'));
    writeFileSync(join(src, 'read-only', 'file'), 'kept read-only');
    spawnSync('chown', ['-R', '65534:65534', work]);
    chmodSync(join(src, 'read-only'), 0o555);
    const names = ['2025.07.01-08.00.00', '2025.07.02-08.00.00', '2025.07.03-08.00.00'];
    for (const name of names) {
      writeFileSync(join(src, 'changing'), name);
      chownSync(join(src, 'changing'), 65534, 65534); // the user's own, as the snapshot's copy will be
      const r = asNobody(['backup', src, repo, '--catalog', catalog, '--quiet']);
      expect(r.stderr).toBe('');
      repository.adopt(name);
    }
    expect(lstatSync(join(repo, names[0]!, 'tree', 'read-only')).mode & 0o777).toBe(0o555);
    // A prune killed right after its rename left the oldest in the trash: the next backup empties it.
    const trash = join(repo, '.lb', 'trash');
    expect(existsSync(trash)).toBe(true); // made with the repository
    spawnSync('chown', ['65534:65534', trash]);
    renameSync(join(repo, names[0]!), join(trash, names[0]!));
    const backup = asNobody(['backup', src, repo, '--catalog', catalog, '--quiet']);
    expect(backup).toEqual({ status: 0, stderr: '' });
    expect(readdirSync(trash)).toEqual([]);
    const pruned = asNobody(['prune', repo, '--keep-last', '1', '--quiet']);
    expect(pruned).toEqual({ status: 0, stderr: '' });
    expectPrunedTo(repository, [names[2]!]);
  });

  it('removes snapshots holding paths longer than PATH_MAX, and predicts what they free', () => {
    const repository = new DatedRepository(tempDir());
    const { src, repo } = repository;
    rmSync(src, { recursive: true });
    // A file whose source path is 4,080 bytes: under REPO/<name>/tree/ (and .lb/trash/<name>/tree/) beyond PATH_MAX.
    const { parts, file } = deepFile(src, 4080);
    const deep = join(src, ...parts, file);
    const names = ['2025.08.01-08.00.00', '2025.08.02-08.00.00', '2025.08.03-08.00.00'];
    for (const name of names) {
      spawnSync('sh', ['-c', 'cd -P "$1" && printf %s "$2" > "$3"', 'sh', join(src, ...parts), name.repeat(100), file]);
      repository.backupAs(name);
    }
    expect(Buffer.byteLength(join(repo, names[0]!, 'tree', ...parts, file))).toBeGreaterThan(4096);
    expect(deep.length).toBe(4080);
    const dry = pruneJson(repo, ['--keep-last', '1', '--dry-run']);
    expect(dry.predicted).toEqual({ objects: 2, bytes: 2 * 1900 });
    const done = pruneJson(repo, ['--keep-last', '1']);
    expect(done.freed).toEqual(dry.predicted);
    expectPrunedTo(repository, [names[2]!]);
  });

  it('holds the lock: a backup started meanwhile is refused in one line naming the prune', async () => {
    const repository = fresh();
    const { repo, src, catalog } = repository;
    // The prune is held (SIGSTOP) at its first rename of a snapshot into the trash.
    const prune = new TracedRun(['prune', repo, ...POLICY], holdAt(join(repo, S1), 'rename,renameat,renameat2', '1'));
    expect(await prune.nextHold()).toBe(true);
    const lock = join(repo, '.lb', 'lock');
    const holder = JSON.parse(readFileSync(lock, 'utf8')) as { pid: number; doing: string };
    expect(holder.doing).toBe('prune');
    const refused = lb(['backup', src, repo, '--catalog', catalog]);
    expect(refused).toMatchObject({ status: 1, stdout: '' });
    expect(refused.stderr).toMatch(new RegExp(`^lb: repository is in use by another lb prune \\(pid ${holder.pid} on ${hostname()}, since [^)]+\\); if that run is gone for good, remove ${lock}\\n$`));
    prune.resume();
    expect((await prune.end()).status).toBe(0);
    expectPrunedTo(repository, KEPT);
  });
});
