// The synthetic photo archive every benchmark runs on, its week of churn, and
// the measuring helpers: the same for every tool so that ratios mean something.
import { spawn, spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, renameSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpuSince, machineCpu, watchPeaks, type Cpu, type ProcessPeak } from './measure.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const LB = join(ROOT, 'bin', 'lb');

/** --name value pairs and bare --flags, over defaults whose types they keep. */
export function parseArgs<T extends Record<string, number | string | boolean>>(argv: string[], defaults: T): T {
  const opts: Record<string, number | string | boolean> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]!.replace(/^--/, '');
    if (!(name in defaults)) throw new Error(`unknown argument ${argv[i]}; known: ${Object.keys(defaults).map((k) => '--' + k).join(' ')}`);
    const kind = typeof defaults[name];
    if (kind === 'boolean') opts[name] = true;
    else opts[name] = kind === 'number' ? Number(argv[++i]) : argv[++i]!;
  }
  return opts as T;
}

// A deterministic PRNG, so two runs build the same archive.
let seed = 20041009;
export function random(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff; // imul: exact mod 2^32 (a float product loses the low bits: period 10,466)
  return seed / 0x7fffffff;
}
export const pick = <T>(list: T[]): T => list[Math.floor(random() * list.length)]!;

/** Incompressible content, unique per call: a slice of a random pool stamped with a counter. */
let pool: Buffer | null = null;
let stamp = 0;
export function content(size: number): Buffer {
  pool ??= randomFillSync(Buffer.allocUnsafe(64 * 1024 * 1024));
  const offset = Math.floor(random() * (pool.length - size - 16));
  const data = Buffer.from(pool.subarray(offset, offset + size));
  data.writeUInt32BE(++stamp, 0);
  data.writeDoubleBE(random(), 4);
  return data;
}

/** Photo-like sizes around the mean, with a few large files (videos, raw). */
export function photoSize(mean: number): number {
  return random() < 0.01 ? Math.floor(mean * (20 + random() * 40)) : Math.floor(mean * (0.2 + random() * 1.2));
}

export interface Archive {
  albums: string[];
  files: string[];
  bytes: number;
}

/** `files` photos of `bytes` in all over `dirs` albums; 5% are duplicates, half of those keeping the original mtime. */
export function generate(source: string, opts: { files: number; bytes: number; dirs: number }): Archive {
  const albums: string[] = [];
  for (let d = 0; d < opts.dirs; d++) {
    const year = 2005 + (d % 20);
    const album = join(source, String(year), `${year}-${String(1 + (d % 12)).padStart(2, '0')}-${String(1 + (d % 28)).padStart(2, '0')} Album ${d}`);
    mkdirSync(album, { recursive: true });
    albums.push(album);
  }
  const mean = opts.bytes / opts.files;
  const files: string[] = [];
  let bytes = 0;
  const originals = Math.round(opts.files * 0.95);
  for (let f = 0; f < originals; f++) {
    const path = join(pick(albums), `IMG_${String(f).padStart(6, '0')}.jpg`);
    const data = content(photoSize(mean));
    writeFileSync(path, data);
    files.push(path);
    bytes += data.length;
  }
  for (let f = originals; f < opts.files; f++) {
    const from = pick(files);
    const path = join(pick(albums), `DUP_${String(f).padStart(6, '0')}.jpg`);
    copyFileSync(from, path);
    if (f % 2 === 0) {
      const s = statSync(from);
      utimesSync(path, s.atime, s.mtime);
    }
    files.push(path);
    bytes += statSync(path).size;
  }
  // Old files, as in a real archive (and past lb's racily-clean window).
  const old = new Date('2024-01-01T00:00:00Z');
  for (const path of files) utimesSync(path, old, old);
  return { albums, files, bytes };
}

export interface Churn {
  movedAlbums: number;
  added: number;
  addedBytes: number;
  copied: number;
  copiedBytes: number;
  touched: number;
  touchedBytes: number;
  rewritten: number;
  rewrittenBytes: number;
}

/** A week of reorganising: 30% of albums moved, 2% new photos, 1% copied, 1% touched, 0.5% rewritten. */
export function churn(source: string, archive: Archive): Churn {
  const count = Math.round(archive.albums.length * 0.3);
  const target = join(source, 'sorted');
  mkdirSync(target);
  for (const album of archive.albums.slice(0, count)) renameSync(album, join(target, `${album.split('/').pop()} (sorted)`));
  const entries = readdirSync(source, { recursive: true, withFileTypes: true });
  const live = entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  const albums = entries.filter((e) => e.isDirectory() && e.name.includes('Album')).map((e) => join(e.parentPath, e.name));
  const mean = archive.bytes / archive.files.length;
  const stats: Churn = { movedAlbums: count, added: 0, addedBytes: 0, copied: 0, copiedBytes: 0, touched: 0, touchedBytes: 0, rewritten: 0, rewrittenBytes: 0 };
  for (let i = 0; i < Math.round(live.length * 0.02); i++) {
    const data = content(photoSize(mean));
    writeFileSync(join(pick(albums), `NEW_${i}.jpg`), data);
    stats.added++;
    stats.addedBytes += data.length;
  }
  const shuffled = [...live].sort(() => random() - 0.5);
  let at = 0;
  for (let i = 0; i < Math.round(live.length * 0.01); i++, at++) {
    const from = shuffled[at]!;
    copyFileSync(from, join(pick(albums), `COPY_${i}.jpg`));
    stats.copied++;
    stats.copiedBytes += statSync(from).size;
  }
  const now = new Date();
  for (let i = 0; i < Math.round(live.length * 0.01); i++, at++) {
    utimesSync(shuffled[at]!, now, now);
    stats.touched++;
    stats.touchedBytes += statSync(shuffled[at]!).size;
  }
  for (let i = 0; i < Math.round(live.length * 0.005); i++, at++) {
    const size = statSync(shuffled[at]!).size;
    writeFileSync(shuffled[at]!, content(size));
    stats.rewritten++;
    stats.rewrittenBytes += size;
  }
  // Past lb's racily-clean window, as a nightly run would be.
  spawnSync('sleep', ['0.3']);
  return stats;
}

export interface Timed {
  seconds: number;
  /** CPU seconds of the process and every child it waited for (lb's agent, rsync's receiver and generator), from time(1). */
  user: number;
  sys: number;
  /** The whole machine's CPU seconds meanwhile (/proc/stat): sees the processes that are not its children too, an SSH session's. */
  machine: Cpu;
  stdout: string;
  stderr: string;
  /** The largest peak RSS of the process and its waited-for children (not their sum). */
  maxRssKb: number;
  /** With `peaks`: each descendant's peak RSS, polled. */
  peaks?: ProcessPeak[];
}

/**
 * Run a command to completion after a sync (so no tool pays for another's writeback), timing it, its CPU and its peak memory.
 * Asynchronous, so that servers in this process (a proxy) keep running meanwhile.
 */
export async function timed(
  command: string,
  args: string[],
  env?: NodeJS.ProcessEnv,
  /** settle: awaited before the machine's CPU is read, e.g. until an SSH session's processes have ended. */
  options: { peaks?: boolean; settle?: () => Promise<void> } = {},
): Promise<Timed> {
  spawnSync('sync');
  const cpu = machineCpu();
  const started = process.hrtime.bigint();
  const child = spawn('/usr/bin/time', ['-f', '%U %S %M', command, ...args], { env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const stopWatching = options.peaks ? watchPeaks(child.pid!) : null;
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const peaks = stopWatching?.();
  await options.settle?.();
  const machine = cpuSince(cpu);
  if (status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${status}):\n${stderr}`);
  // time(1) prints last, on a line of its own unless the command's stderr did not end with a newline.
  const figures = /(\d+\.\d+) (\d+\.\d+) (\d+)\n?$/.exec(stderr);
  if (!figures) throw new Error(`no figures from /usr/bin/time at the end of ${command}'s stderr:\n${stderr}`);
  const [user, sys, maxRssKb] = figures.slice(1).map(Number) as [number, number, number];
  return { seconds, user, sys, machine, stdout, stderr: stderr.slice(0, figures.index).replace(/\n$/, ''), maxRssKb, ...(peaks && { peaks }) };
}

/** Writes back dirty pages and empties the page, dentry and inode caches, so the next step reads from disk; false if not allowed (not root). */
export function dropCaches(): boolean {
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

/** Seconds a `sync` takes now: the writeback a tool left to the kernel. */
export function writeback(): number {
  const started = process.hrtime.bigint();
  spawnSync('sync');
  return Number(process.hrtime.bigint() - started) / 1e9;
}

export function usage(dir: string): { bytes: number; inodes: number } {
  const bytes = Number(spawnSync('du', ['-s', '-B1', dir], { encoding: 'utf8' }).stdout.split('\t')[0]);
  const inodes = Number(spawnSync('du', ['-s', '--inodes', dir], { encoding: 'utf8' }).stdout.split('\t')[0]);
  return { bytes, inodes };
}

/** One figure from rsync --stats, e.g. "Total bytes sent". */
export function rsyncStat(stdout: string, name: string): number {
  const match = new RegExp(`${name}: ([\\d,]+)`).exec(stdout);
  if (!match) throw new Error(`rsync --stats printed no "${name}"`);
  return Number(match[1]!.replace(/,/g, ''));
}

export const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function ratio(a: number, b: number): string {
  return `${(a / b).toFixed(2)}x`;
}

export function printTargets(targets: [name: string, ok: boolean, detail: string][]): void {
  console.log('\ntargets');
  for (const [name, ok, detail] of targets) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${name}: ${detail}`);
}
