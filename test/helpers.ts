// Shared test plumbing: scratch directories, running the real lb binary, and
// independent oracles (rsync for tree fidelity, strace for which files were opened).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, type TestContext } from 'vitest';

export const ROOT = resolve(import.meta.dirname, '..');
export const LB = join(ROOT, 'bin', 'lb');

const scratch: string[] = [];

/** A fresh directory removed after the test. */
export function tempDir(prefix = 'lb-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

afterEach(() => {
  // rm, not rmSync: some tests make paths longer than PATH_MAX, which only rm's descriptor-relative walk removes.
  for (const dir of scratch.splice(0)) spawnSync('rm', ['-rf', '--', dir]);
});

export interface LbRun {
  status: number;
  stdout: string;
  stderr: string;
}

export function lb(args: string[], env: Record<string, string> = {}): LbRun {
  const r = spawnSync(process.execPath, [LB, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export interface Summary {
  snapshot: string | null;
  created: boolean;
  files: { new: number; copied: number; linked: number; total: number };
  bytes: { scanned: number; read: number; transferred: number; stored: number };
  warnings: string[];
  skipped: { path: string; reason: string }[];
}

/** Back up with --json and a test-local catalog; fails the test on a non-zero exit. */
export function backup(source: string, repo: string, catalog: string, extra: string[] = []): Summary {
  const r = lb(['backup', source, repo, '--json', '--catalog', catalog, ...extra]);
  if (r.status !== 0) throw new Error(`lb exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Summary;
}

/**
 * The independent fidelity oracle: rsync in dry-run, comparing checksums and all
 * metadata, lists every difference between the source and the snapshot tree.
 * An empty result means the tree is a faithful copy.
 */
export function rsyncDifferences(source: string, tree: string, options: { hardLinks?: boolean } = {}): string[] {
  // Without hard links where the source's link groups are merged into one object on purpose.
  const flags = options.hardLinks === false ? '-rlptgoDn' : '-rlptgoDHn';
  const r = rsync([flags, '--checksum', '--itemize-changes', '--delete', source + '/', tree + '/']);
  return r.stdout.split('\n').filter((line) => line.trim() !== '');
}

export function rsync(args: string[]): SpawnSyncReturns<string> {
  const r = spawnSync('rsync', args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`rsync failed: ${r.stderr}`);
  return r;
}

/** Runs lb under strace and returns every path it opened for reading. */
export function openedPaths(args: string[]): { run: LbRun; opened: string[] } {
  const log = join(tempDir('lb-strace-'), 'trace');
  const r = spawnSync('strace', ['-f', '-qq', '-e', 'trace=open,openat', '-o', log, process.execPath, LB, ...args], {
    encoding: 'utf8',
  });
  const trace = spawnSync('cat', [log], { encoding: 'utf8' }).stdout;
  const opened: string[] = [];
  for (const line of trace.split('\n')) {
    const m = /open(?:at)?\((?:[^,]+, )?"((?:[^"\\]|\\.)*)"/.exec(line);
    if (m && !line.includes('= -1')) opened.push(m[1]!);
  }
  return { run: { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }, opened };
}

export function snapshots(repo: string): string[] {
  return readdirSync(repo).filter((n) => /^\d{4}\.\d{2}\.\d{2}-\d{2}\.\d{2}\.\d{2}$/.test(n)).sort();
}

export function inode(path: string): bigint {
  return lstatSync(path, { bigint: true }).ino;
}

/** Every object file in the store. */
export function objectCount(repo: string): number {
  let n = 0;
  const objects = join(repo, '.lb', 'objects');
  for (const fanout of readdirSync(objects)) n += readdirSync(join(objects, fanout)).length;
  return n;
}

/**
 * Wait past the racily-clean window (100 ms on filesystems with fine timestamps):
 * lb rightly refuses to cache the hash of a file changed a moment ago.
 */
export function settle(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
}

// ---- real mounts for the tests that need a filesystem of their own (tests run as root) ----

export function run(command: string, args: string[]): { ok: boolean; err: string } {
  const r = spawnSync(command, args, { encoding: 'utf8' });
  return { ok: r.status === 0, err: (r.stderr ?? '') + (r.error?.message ?? '') };
}

/**
 * Skip a test this machine cannot run, saying why. On CI (`CI` set: .ci/run installs everything and runs as
 * root) nothing may be skipped, so there it fails instead: a skipped test must never pass for a green run.
 */
export function skipBecause(ctx: TestContext, reason: string): void {
  if (process.env.CI) throw new Error(`cannot run on this CI machine: ${reason}`);
  console.warn(`skipped: ${reason}`);
  ctx.skip();
}

/** Mount, or skip the test with the reason when this machine does not allow it. */
export function mountOrSkip(ctx: TestContext, args: string[], dir: string): void {
  mkdirSync(dir, { recursive: true });
  const r = run('mount', [...args, dir]);
  if (!r.ok) skipBecause(ctx, `mount ${args.join(' ')} is not allowed here: ${r.err.trim()}`);
}

export function umount(dir: string): void {
  // Lazily when busy (a loop device detaching): the mount must not outlive the test.
  if (!run('umount', [dir]).ok) run('umount', ['-l', dir]);
}

/** A fresh ext4 filesystem in a file, loop-mounted at `dir` (or the test skipped, saying why). */
export function mountExt4OrSkip(ctx: TestContext, image: string, sizeMiB: number, dir: string, inodes?: number): void {
  writeFileSync(image, '');
  const mkfs = ['-q', '-F', ...(inodes ? ['-N', String(inodes)] : []), image];
  if (!run('truncate', ['-s', `${sizeMiB}M`, image]).ok || !run('mkfs.ext4', mkfs).ok) throw new Error('cannot make an ext4 image');
  mountOrSkip(ctx, ['-o', 'loop', image], dir);
}

/** SIGKILL a process that may have ended on its own meanwhile (an agent that just finished its run). */
export function killIfAlive(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

// ---- fault injection ----

/** A small deterministic generator, so a failure can be replayed from the printed seed. */
export function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The first child of a process (lb's agent), or null once it has none. */
export function childOf(pid: number): number | null {
  const first = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
  return first ? Number(first) : null;
}

/**
 * Directories of 200-byte names under `root` (made here) down to a file whose absolute path is `length` bytes,
 * built by chdir-ing down, since paths near PATH_MAX are made that way. `also` runs in the deepest directory
 * (the working directory then), given the file's name.
 */
export function deepFile(root: string, length: number, also?: (file: string) => void): { parts: string[]; file: string } {
  const parts: string[] = [];
  const file = 'f'.repeat(150);
  const room = () => length - Buffer.byteLength(join(root, ...parts, file));
  for (let i = 0; room() > 0; i++) parts.push(`d${String(i).padStart(2, '0')}${'x'.repeat(Math.min(197, room() - 4))}`);
  mkdirSync(root);
  const original = process.cwd();
  try {
    process.chdir(root);
    for (const part of parts) {
      mkdirSync(part);
      process.chdir(part);
    }
    writeFileSync(file, 'deep content');
    also?.(file);
  } finally {
    process.chdir(original);
  }
  return { parts, file };
}
