// Creating a repository: only its own directory is made (a missing parent is
// refused, as rsync does), and its filesystem is probed once, so that one that
// cannot hold a repository (FAT: no hard links, no symlinks, 2-second mtimes…)
// is refused in one line with nothing left on it. Real mounts, real sshd.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, type TestContext } from 'vitest';
import { LB, lb, mountExt4OrSkip, mountOrSkip, openedPaths, skipBecause, rsyncDifferences, run, snapshots, tempDir, umount } from './helpers.js';
import { startSshd, type Sshd } from './sshd.js';

function workWithSource(): { work: string; src: string; catalog: string } {
  const work = tempDir();
  const src = join(work, 'src');
  mkdirSync(join(src, 'album'), { recursive: true });
  writeFileSync(join(src, 'album', 'a.jpg'), 'photo');
  writeFileSync(join(src, 'b.txt'), 'text');
  return { work, src, catalog: join(work, 'catalog.sqlite') };
}

/** A refusal: the exit status, one `lb: ` line on stderr matching `message`, nothing on stdout. */
function expectRefused(r: { status: number; stdout: string; stderr: string }, status: number, message: RegExp): void {
  expect(r.stderr).toMatch(/^lb: [^\n]+\n$/);
  expect(r.stderr).toMatch(message);
  expect(r.status).toBe(status);
  expect(r.stdout).toBe('');
}

/**
 * Runs lb in a process group of its own, killed whole (agent included) if it is
 * still running after `limitMs`: a spinning agent must not outlive a failed test.
 */
function lbWithin(args: string[], limitMs: number, env: Record<string, string> = {}): Promise<{ status: number; stdout: string; stderr: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [LB, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), limitMs);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ status: code ?? -1, stdout, stderr, ms: Date.now() - started });
    }),
  );
}

/**
 * A fresh FAT filesystem (mkfs.vfat, from dosfstools) at `dir`: the kernel's vfat where
 * it has one, else FUSE fusefat (this project's VM kernel has no vfat); skipped, saying
 * why, when neither mounts.
 */
function mountFatOrSkip(ctx: TestContext, image: string, dir: string): void {
  if (!run('truncate', ['-s', '8M', image]).ok) throw new Error('cannot make a FAT image file');
  const mkfs = run('mkfs.vfat', [image]);
  if (!mkfs.ok) throw new Error(`mkfs.vfat failed (it comes with dosfstools): ${mkfs.err.trim()}`);
  mkdirSync(dir, { recursive: true });
  const kernel = run('mount', ['-t', 'vfat', '-o', 'loop', image, dir]);
  if (kernel.ok) return;
  const fuse = run('fusefat', ['-o', 'rw+', image, dir]);
  if (!fuse.ok) skipBecause(ctx, `no FAT mount here: kernel vfat: ${kernel.err.trim()}; fusefat: ${fuse.err.trim()}`);
}

/** FAT lacks these whether the kernel or fusefat serves it (as root, owners too). */
const FAT_REFUSAL =
  /^lb: cannot keep a repository in \S+ \((?:vfat|fuse\.fusefat)\): no hard links, no symlinks, permission bits cannot be set, owners cannot be set, mtimes kept only to 2 seconds, .*file names that differ only in case are one file; choose a place on a filesystem such as ext4, xfs or btrfs\n$/;

describe('a repository path whose parent does not exist', () => {
  it('is refused up front with exit status 2, and no parent is made', () => {
    const { work, src, catalog } = workWithSource();
    const repo = join(work, 'typo', 'nested', 'repo');
    const r = lb(['backup', src, repo, '--catalog', catalog]);
    expectRefused(r, 2, new RegExp(`^lb: cannot create repository ${repo}: its parent ${join(work, 'typo', 'nested')} does not exist; create it first\n$`));
    expect(existsSync(join(work, 'typo'))).toBe(false);
    expect(existsSync(catalog)).toBe(false);
  });

  it('is refused when the parent is a file', () => {
    const { work, src, catalog } = workWithSource();
    writeFileSync(join(work, 'notes'), 'a file');
    const r = lb(['backup', src, join(work, 'notes', 'repo'), '--catalog', catalog]);
    expectRefused(r, 2, new RegExp(`^lb: cannot create repository ${join(work, 'notes', 'repo')}: its parent ${join(work, 'notes')} is not a directory\n$`));
  });

  it('is made when only its last component is missing', () => {
    const { work, src, catalog } = workWithSource();
    const r = lb(['backup', src, join(work, 'repo'), '--catalog', catalog, '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(rsyncDifferences(src, join(work, 'repo', 'latest', 'tree'))).toEqual([]);
  });
});

describe('a repository in a place where no directory can be made', () => {
  it('ends at once with one line for /proc/nope (a recursive mkdir span there forever)', async () => {
    const { src, catalog } = workWithSource();
    const r = await lbWithin(['backup', src, '/proc/nope', '--catalog', catalog], 20_000);
    expectRefused(r, 2, /^lb: cannot create repository \/proc\/nope: \/proc \(proc\) does not allow new directories\n$/);
    expect(r.ms).toBeLessThan(5000);
  });
});

describe('the filesystem is probed when a repository is created', () => {
  it('refuses FAT in one line naming what it lacks, leaving nothing on it; an empty directory found there stays, empty', (ctx) => {
    const { work, src, catalog } = workWithSource();
    const fat = join(work, 'fat');
    mountFatOrSkip(ctx, join(work, 'fat.img'), fat);
    try {
      expectRefused(lb(['backup', src, join(fat, 'repo'), '--catalog', catalog]), 2, FAT_REFUSAL);
      expect(readdirSync(fat)).toEqual([]);
      mkdirSync(join(fat, 'empty'));
      expectRefused(lb(['backup', src, join(fat, 'empty'), '--catalog', catalog]), 2, FAT_REFUSAL);
      expect(readdirSync(fat)).toEqual(['empty']);
      expect(readdirSync(join(fat, 'empty'))).toEqual([]);
    } finally {
      umount(fat);
    }
  });

  it('refuses a mount where chmod and chown succeed without effect (bindfs --chmod-ignore --chown-ignore)', (ctx) => {
    const { work, src, catalog } = workWithSource();
    const under = join(work, 'under');
    const mnt = join(work, 'ignoring');
    mkdirSync(under);
    mkdirSync(mnt);
    const bound = run('bindfs', ['--chmod-ignore', '--chown-ignore', under, mnt]);
    if (!bound.ok) skipBecause(ctx, `bindfs cannot mount here: ${bound.err.trim()}`);
    try {
      const r = lb(['backup', src, join(mnt, 'repo'), '--catalog', catalog]);
      expectRefused(r, 2, /^lb: cannot keep a repository in \S+ignoring\/repo \(fuse\): permission bits cannot be set, owners cannot be set; choose a place/);
      expect(readdirSync(under)).toEqual([]);
    } finally {
      umount(mnt);
    }
  });

  it('accepts tmpfs and ext4, probing once at creation and not on later runs', (ctx) => {
    const { work, src, catalog } = workWithSource();
    const tmpfs = join(work, 'tmpfs');
    const ext4 = join(work, 'ext4');
    mountOrSkip(ctx, ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs'], tmpfs);
    try {
      mountExt4OrSkip(ctx, join(work, 'ext4.img'), 16, ext4);
      try {
        for (const repo of [join(tmpfs, 'repo'), join(ext4, 'repo')]) {
          const first = openedPaths(['backup', src, repo, '--catalog', catalog]);
          expect(first.run.stderr).toBe('');
          expect(first.run.status).toBe(0);
          expect(rsyncDifferences(src, join(repo, 'latest', 'tree'))).toEqual([]);
          expect(first.opened).toContain(join(repo, '.lb.creating', 'probe', 'file'));
          expect(readdirSync(repo)).not.toContain('.lb.creating');
          expect(readdirSync(join(repo, '.lb'))).not.toContain('probe');
          const again = openedPaths(['backup', src, repo, '--catalog', catalog, '--always']);
          expect(again.run.status).toBe(0);
          expect(again.opened.filter((path) => path.includes('.lb.creating'))).toEqual([]);
        }
      } finally {
        umount(ext4);
      }
    } finally {
      umount(tmpfs);
    }
  });

  it('takes over a creation killed midway instead of refusing the directory it left', () => {
    const { work, src, catalog } = workWithSource();
    const repo = join(work, 'repo');
    // The agent killed (strace's fault injection) as it renames the new .lb into place.
    const killed = spawnSync('strace', ['-f', '-qq', '-o', '/dev/null', '-e', 'trace=rename', '-e', 'inject=rename:error=EIO:signal=SIGKILL:when=1', process.execPath, LB, 'backup', src, repo, '--catalog', catalog], { encoding: 'utf8' });
    expect(killed.stderr).toMatch(/killed by SIGKILL/);
    expect(readdirSync(repo)).toEqual(['.lb.creating']);
    const next = lb(['backup', src, repo, '--catalog', catalog]);
    expect(next.stderr).toBe('');
    expect(next.status).toBe(0);
    expect(readdirSync(repo).sort()).toEqual(['.lb', snapshots(repo)[0], 'latest'].sort());
    expect(rsyncDifferences(src, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('refuses a filesystem with whole-second mtimes (ext4 with 128-byte inodes, as ext3 has)', (ctx) => {
    const { work, src, catalog } = workWithSource();
    const image = join(work, 'small-inodes.img');
    const mnt = join(work, 'mnt');
    writeFileSync(image, '');
    if (!run('truncate', ['-s', '16M', image]).ok || !run('mkfs.ext4', ['-q', '-F', '-I', '128', image]).ok) throw new Error('cannot make an ext4 image');
    mountOrSkip(ctx, ['-o', 'loop', image], mnt);
    try {
      const before = readdirSync(mnt);
      expectRefused(lb(['backup', src, join(mnt, 'repo'), '--catalog', catalog]), 2, /^lb: cannot keep a repository in \S+mnt\/repo \(ext4\): mtimes kept only to the second; choose a place/);
      expect(readdirSync(mnt)).toEqual(before);
    } finally {
      umount(mnt);
    }
  });
});

describe('over SSH, the agent makes and probes the repository with the same words', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(() => sshd?.stop());
  const remoteLb = (args: string[]) => lb([...args, '--ssh-p', String(sshd.port)], sshd.env);

  it('refuses a remote repository whose parent does not exist, exit status 2, making no parent', () => {
    const { work, src, catalog } = workWithSource();
    const repo = join(work, 'typo', 'repo');
    const r = remoteLb(['backup', src, `root@127.0.0.1:${repo}`, '--catalog', catalog]);
    expectRefused(r, 2, new RegExp(`^lb: cannot create repository ${repo}: its parent ${join(work, 'typo')} does not exist; create it first\n$`));
    expect(existsSync(join(work, 'typo'))).toBe(false);
  });

  it('ends at once for a remote /proc/nope', async () => {
    const { src, catalog } = workWithSource();
    const r = await lbWithin(['backup', src, 'root@127.0.0.1:/proc/nope', '--catalog', catalog, '--ssh-p', String(sshd.port)], 20_000, sshd.env);
    expectRefused(r, 2, /^lb: cannot create repository \/proc\/nope: \/proc \(proc\) does not allow new directories\n$/);
    expect(r.ms).toBeLessThan(10_000);
  });

  it('refuses FAT when pushing to it and when pulling onto it, in the same one line, leaving nothing on it', (ctx) => {
    const { work, src, catalog } = workWithSource();
    const fat = join(work, 'fat');
    mountFatOrSkip(ctx, join(work, 'fat.img'), fat);
    try {
      expectRefused(remoteLb(['backup', src, `root@127.0.0.1:${join(fat, 'pushed')}`, '--catalog', catalog]), 2, FAT_REFUSAL);
      expect(readdirSync(fat)).toEqual([]);
      expectRefused(remoteLb(['backup', `root@127.0.0.1:${src}`, join(fat, 'pulled'), '--catalog', catalog]), 2, FAT_REFUSAL);
      expect(readdirSync(fat)).toEqual([]);
    } finally {
      umount(fat);
    }
  });
});
