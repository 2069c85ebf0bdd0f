// The catalog is a cache: whatever is wrong with it costs time and one warning,
// never data, never a file's read error, never a hang. A bad catalog is moved
// aside and rebuilt; runs on other repositories share it at once; a failure of
// either side of a run ends the run in one line.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, type TestContext } from 'vitest';
import { PROTOCOL_VERSION } from '../src/protocol/messages.js';
import { LB, ROOT, backup, mountOrSkip, rsyncDifferences, run, tempDir, umount, type LbRun, type Summary } from './helpers.js';

/** lb with a deadline: a run that hangs fails the test (status -1) instead of blocking it. */
function lbWithin(args: string[], ms = 60_000): LbRun {
  const r = spawnSync(process.execPath, [LB, ...args], { encoding: 'utf8', timeout: ms, killSignal: 'SIGKILL' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function summaryOf(result: LbRun): Summary {
  expect(result.stderr, 'stderr').toBe('');
  expect(result.status).toBe(0);
  return JSON.parse(result.stdout) as Summary;
}

/** `dirs` directories of `files` small distinct files each. */
function tree(root: string, dirs: number, files: number, size = 100): void {
  for (let d = 0; d < dirs; d++) {
    const dir = join(root, `d${String(d).padStart(3, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < files; f++) writeFileSync(join(dir, `f${f}`), `${d}/${f} `.padEnd(size, '.'));
  }
}

function asides(catalog: string): string[] {
  const dir = join(catalog, '..');
  const base = catalog.slice(dir.length + 1);
  return readdirSync(dir).filter((n) => n.startsWith(`${base}.broken-`) && !n.endsWith('-wal') && !n.endsWith('-shm'));
}

const warnings = (stderr: string) => stderr.split('\n').filter((l) => l !== '');

describe('an unusable catalog', () => {
  const kinds: [string, (path: string) => void][] = [
    ['garbage', (path) => writeFileSync(path, 'this is no database\n'.repeat(500))],
    [
      "another program's database",
      (path) => {
        const db = new Database(path);
        db.exec(`CREATE TABLE photos (name TEXT); INSERT INTO photos VALUES ('keep me')`);
        db.close();
      },
    ],
  ];
  for (const [kind, make] of kinds) {
    it(`(${kind}) is moved aside intact, said once, and a fresh one is used from then on`, () => {
      const work = tempDir();
      const src = join(work, 'src');
      tree(src, 5, 20);
      const catalog = join(work, 'catalog.sqlite');
      make(catalog);
      const original = readFileSync(catalog);

      const first = lbWithin(['backup', src, join(work, 'repo'), '--json', '--catalog', catalog]);
      expect(first.status).toBe(0);
      const lines = warnings(first.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^lb: warning: catalog .*catalog\.sqlite was unusable \(.+\); moved it aside to .*catalog\.sqlite\.broken-\d{8}T\d{6}Z and started a fresh one$/);
      const [aside] = asides(catalog);
      expect(readFileSync(join(work, aside!))).toEqual(original);
      const summary = JSON.parse(first.stdout) as Summary;
      expect(rsyncDifferences(src, join(work, 'repo', summary.snapshot!, 'tree'))).toEqual([]);

      // The fresh catalog serves the next run: nothing is read again, nothing said.
      const second = summaryOf(lbWithin(['backup', src, join(work, 'repo'), '--json', '--always', '--catalog', catalog]));
      expect(second.bytes.read).toBe(0);
      expect(asides(catalog)).toHaveLength(1);
    });
  }

  // With a catalog that is garbage, or cannot be made at all, lb used to trust size+mtime of the
  // previous snapshot, which came from another source: B's snapshot held A's hostname.
  const GARBAGE = 'garbage '.repeat(1000);
  const catalogs: { kind: string; place: (work: string, ctx: TestContext) => string; said: RegExp }[] = [
    {
      kind: 'garbage',
      place: (work) => join(work, 'catalog.sqlite'),
      said: /catalog\.sqlite was unusable \(file is not a database\); moved it aside to .* and started a fresh one$/,
    },
    {
      kind: 'garbage in a read-only directory',
      place: (work, ctx) => {
        const dir = join(work, 'state');
        mountOrSkip(ctx, ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs'], dir);
        mounted.push(dir);
        writeFileSync(join(dir, 'catalog.sqlite'), GARBAGE);
        expect(run('mount', ['-o', 'remount,ro', dir]).ok).toBe(true);
        return join(dir, 'catalog.sqlite');
      },
      said: /catalog\.sqlite is unusable \(.+\) and cannot be moved aside \(EROFS.*\); going on without it: every file is read$/,
    },
    {
      kind: 'impossible to make',
      place: (work) => {
        writeFileSync(join(work, 'a-file'), '');
        return join(work, 'a-file', 'catalog.sqlite');
      },
      said: /catalog .*a-file\/catalog\.sqlite cannot be used \(.+\); going on without it: every file is read$/,
    },
  ];
  const mounted: string[] = [];
  afterEach(() => mounted.splice(0).forEach(umount));
  for (const { kind, place, said } of catalogs) {
    it(`(${kind}) never lets one source's file stand for another's with the same size and mtime`, (ctx) => {
      const work = tempDir();
      const repo = join(work, 'repo');
      const catalog = place(work, ctx);
      const when = new Date('2026-01-02T03:04:05Z');
      const runs = (
        [
          ['hostA', 'alpha.example\n'],
          ['hostB', 'bravo.example\n'],
        ] as const
      ).map(([host, content]) => {
        const src = join(work, host);
        mkdirSync(src);
        writeFileSync(join(src, 'hostname'), content);
        utimesSync(join(src, 'hostname'), when, when);
        utimesSync(src, when, when);
        if (kind === 'garbage') writeFileSync(catalog, GARBAGE);
        return { src, content, run: lbWithin(['backup', src, repo, '--json', '--catalog', catalog]) };
      });
      for (const { src, content, run } of runs) {
        expect(run.status, run.stderr).toBe(0);
        const summary = JSON.parse(run.stdout) as Summary;
        // Before, B's tree was judged identical to A's: no snapshot, and `latest` held A's hostname for B.
        expect(summary.created, `a snapshot of ${src}`).toBe(true);
        expect(readFileSync(join(repo, summary.snapshot!, 'tree', 'hostname'), 'utf8')).toBe(content);
        expect(rsyncDifferences(src, join(repo, summary.snapshot!, 'tree'))).toEqual([]);
      }
      for (const { run } of runs) expect(warnings(run.stderr)).toEqual([expect.stringMatching(said)]);
      // Without a catalog nothing is trusted: every file is read, on every run.
      if (kind !== 'garbage') {
        const again = lbWithin(['backup', join(work, 'hostB'), repo, '--json', '--always', '--catalog', catalog]);
        expect((JSON.parse(again.stdout) as Summary).bytes.read).toBe(statSync(join(work, 'hostB', 'hostname')).size);
      }
    });
  }
});

describe('a catalog failing mid-run', () => {
  it('corrupted after its first page: the run goes on without it (no hang), says so once, and the next run rebuilds it', () => {
    const work = tempDir();
    const src = join(work, 'src');
    tree(src, 60, 50);
    const catalog = join(work, 'catalog.sqlite');
    backup(src, join(work, 'repo'), catalog);
    // Overwrite the middle third of the file: its header and schema (page 1) stay intact, so it opens.
    const bytes = readFileSync(catalog);
    expect(bytes.length).toBeGreaterThan(100_000);
    bytes.fill(0xa5, Math.floor(bytes.length / 3), Math.floor((2 * bytes.length) / 3));
    writeFileSync(catalog, bytes);
    writeFileSync(join(src, 'd000', 'f0'), 'changed');

    const r = lbWithin(['backup', src, join(work, 'repo'), '--json', '--catalog', catalog]);
    expect(r.status, r.stderr).toBe(0);
    expect(warnings(r.stderr)).toEqual([
      expect.stringMatching(
        /^lb: warning: catalog .*catalog\.sqlite unusable mid-run: database disk image is malformed; going on without it; moved it aside to .*\.broken-\d{8}T\d{6}Z, the next run starts a fresh one$/,
      ),
    ]);
    const summary = JSON.parse(r.stdout) as Summary;
    expect(summary.warnings).toEqual([]);
    expect(rsyncDifferences(src, join(work, 'repo', summary.snapshot!, 'tree'))).toEqual([]);

    summaryOf(lbWithin(['backup', src, join(work, 'repo'), '--json', '--always', '--catalog', catalog]));
    expect(summaryOf(lbWithin(['backup', src, join(work, 'repo'), '--json', '--always', '--catalog', catalog])).bytes.read).toBe(0);
  });

  it('on a full disk: one warning, no file reported unreadable, exit 0 and a faithful snapshot', (ctx) => {
    const work = tempDir();
    const mnt = join(work, 'mnt');
    mountOrSkip(ctx, ['-t', 'tmpfs', '-o', 'size=128k', 'tmpfs'], mnt);
    try {
      const src = join(work, 'src');
      tree(src, 30, 100);
      const r = lbWithin(['backup', src, join(work, 'repo'), '--json', '--catalog', join(mnt, 'catalog.sqlite')]);
      expect(r.status, r.stderr).toBe(0);
      expect(warnings(r.stderr)).toEqual([expect.stringMatching(/^lb: warning: catalog .* unusable mid-run: database or disk is full; going on without it$/)]);
      const summary = JSON.parse(r.stdout) as Summary;
      expect(summary.warnings).toEqual([]);
      expect(summary.files.total).toBe(3000);
      expect(rsyncDifferences(src, join(work, 'repo', summary.snapshot!, 'tree'))).toEqual([]);
    } finally {
      umount(mnt);
    }
  });

  it('held by another writer past the busy timeout: one warning, and the backup is whole', () => {
    const work = tempDir();
    const src = join(work, 'src');
    tree(src, 2, 5);
    const catalog = join(work, 'catalog.sqlite');
    backup(src, join(work, 'seed'), catalog);
    writeFileSync(join(src, 'd000', 'new'), 'new');
    const holder = new Database(catalog);
    holder.exec('BEGIN IMMEDIATE');
    try {
      const r = lbWithin(['backup', src, join(work, 'repo'), '--json', '--catalog', catalog]);
      expect(r.status, r.stderr).toBe(0);
      expect(warnings(r.stderr)).toEqual([expect.stringMatching(/^lb: warning: catalog .* unusable mid-run: database is locked; going on without it$/)]);
      const summary = JSON.parse(r.stdout) as Summary;
      expect(rsyncDifferences(src, join(work, 'repo', summary.snapshot!, 'tree'))).toEqual([]);
    } finally {
      holder.exec('ROLLBACK');
      holder.close();
    }
  });
});

/** Start lb (`under` another command, say strace); resolves once it exits, killing it after `ms` (a hang: status -1). */
function start(args: string[], under: string[] = [], ms = 60_000): { child: ChildProcess; done: Promise<LbRun> } {
  const [command, ...rest] = [...under, process.execPath, LB, ...args];
  const child = spawn(command!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const done = new Promise<LbRun>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr });
    }),
  );
  return { child, done };
}

describe('two runs sharing one catalog', () => {
  it('on two repositories at once: both succeed and are faithful, and nothing is ever "locked"', async () => {
    const work = tempDir();
    const catalog = join(work, 'catalog.sqlite');
    const srcA = join(work, 'srcA');
    tree(srcA, 30, 100, 1000);
    // A slow file in the middle of A keeps A busy (and, before, holding the write lock) while Y runs.
    const slow = join(srcA, 'd015', 'slow');
    writeFileSync(slow, randomBytes(2 * 1024 * 1024));
    const srcY = join(work, 'srcY');
    tree(srcY, 3, 30);

    // strace delays every read of `slow` by a second.
    const slowly = ['strace', '-f', '-qq', '--seccomp-bpf', '-o', '/dev/null', '-P', slow, '-e', 'trace=read', '-e', 'inject=read:delay_exit=1000000'];
    const a = start(['backup', srcA, join(work, 'repoA'), '--json', '--catalog', catalog], slowly);
    while (!existsSync(join(work, 'repoA', '.lb', 'lock'))) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 1000));

    const y = await start(['backup', srcY, join(work, 'repoY'), '--json', '--catalog', catalog]).done;
    expect(y.stderr).toBe('');
    expect(y.status).toBe(0);
    const ySummary = JSON.parse(y.stdout) as Summary;
    expect(ySummary.files.total).toBe(90);
    expect(rsyncDifferences(srcY, join(work, 'repoY', ySummary.snapshot!, 'tree'))).toEqual([]);
    expect(a.child.exitCode, 'A was still running when Y ended').toBeNull();

    const aSummary = summaryOf(await a.done);
    expect(aSummary.files.total).toBe(3001);
    expect(rsyncDifferences(srcA, join(work, 'repoA', aSummary.snapshot!, 'tree'))).toEqual([]);
    // Both runs' hashes went into the one catalog.
    expect(summaryOf(lbWithin(['backup', srcA, join(work, 'repoA'), '--json', '--always', '--catalog', catalog])).bytes.read).toBe(0);
    expect(summaryOf(lbWithin(['backup', srcY, join(work, 'repoY'), '--json', '--always', '--catalog', catalog])).bytes.read).toBe(0);
  });
});

describe('a side that fails', () => {
  it('a source side whose walk fails after its hello tells the repository side, which aborts and unlocks; both end in one line', () => {
    const work = tempDir();
    const repo = join(work, 'repo');
    const source = join(work, 'source');
    mkdirSync(source);
    writeFileSync(join(source, 'file'), 'content');
    // What lb sends a pulled source side first: one JSON frame (u32 length of type + payload, type 1).
    const request = Buffer.from(
      JSON.stringify({
        t: 'pull',
        version: PROTOCOL_VERSION,
        sourceRoot: source,
        repository: repo,
        options: { snapshotName: '2026.01.01-00.00.00', always: false, numericIds: false, verbose: false, quickCheck: false, sourceLabel: 'source', purpose: 'backup' },
      }),
    );
    const head = Buffer.alloc(5);
    head.writeUInt32BE(request.length + 1, 0);
    head[4] = 1;
    writeFileSync(join(work, 'request'), Buffer.concat([head, request]));
    // The two agents wired to each other by pipes, as sshd gives a pulled source its stdin and stdout. The source
    // side's third statx of its root (after resolving it and checking it before its hello) is the walk's own lstat:
    // it fails with EIO there, once the repository side has created and locked the repository.
    const fifo = join(work, 'replies');
    const agent = `${process.execPath} ${join(ROOT, 'dist', 'agent.cjs')}`;
    const failingWalk = `strace -f -qq -o /dev/null -P ${source} -e trace=statx -e inject=statx:error=EIO:when=3`;
    // `timeout` kills the whole group when the two sides wait for each other forever.
    const pipeline =
      `mkfifo ${fifo} && ${failingWalk} ${agent} source < ${fifo} 2> ${work}/source.err | ` +
      `{ cat ${work}/request; ${agent}; } > ${fifo} 2> ${work}/repository.err; echo $?`;
    const r = spawnSync('timeout', ['-s', 'KILL', '20', 'sh', '-c', pipeline], { encoding: 'utf8' });
    expect(r.status, 'the two sides waited for each other').toBe(0);
    expect(r.stdout).toBe('1\n'); // the repository side's status
    expect(readFileSync(join(work, 'source.err'), 'utf8')).toMatch(/^lb agent: EIO: i\/o error, lstat '.*source'\n$/);
    expect(existsSync(join(repo, '.lb', 'format')), 'the failure came after the hello').toBe(true);
    expect(existsSync(join(repo, '.lb', 'lock'))).toBe(false);
    expect(readdirSync(join(repo, '.lb', 'tmp'))).toEqual([]);
    expect(readdirSync(repo).filter((name) => name !== '.lb')).toEqual([]);
  });
});
