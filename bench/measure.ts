// What the benches measure beyond wall time: the whole machine's CPU (which sees
// processes that are nobody's child here, as an SSH session's), each process's
// peak memory, and the tmpfs they can run on to take the disk out of the figures.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

export interface Cpu {
  user: number;
  sys: number;
}

/** CPU seconds the whole machine has spent so far, every core, from /proc/stat (user includes nice; sys, interrupts). */
export function machineCpu(): Cpu {
  const [user, nice, system, , , irq, softirq] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { user: (user! + nice!) / clockTicks, sys: (system! + irq! + softirq!) / clockTicks };
}

export const cpuSince = (start: Cpu): Cpu => {
  const now = machineCpu();
  return { user: now.user - start.user, sys: now.sys - start.sys };
};

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback; // the process has exited meanwhile
  }
}

/** Every live descendant of `pid`, from each of its threads' children lists. */
export function descendants(pid: number): number[] {
  const found: number[] = [];
  const visit = (parent: number) => {
    let threads: string[] = [];
    try {
      threads = readdirSync(`/proc/${parent}/task`);
    } catch {
      return;
    }
    for (const thread of threads) {
      for (const child of readOr(`/proc/${parent}/task/${thread}/children`, '').split(' ').filter(Boolean).map(Number)) {
        found.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return found;
}

/** Waits (up to `ms`) until `pid` has no descendant left: an SSH session's processes end after the client does. */
export async function childrenGone(pid: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (descendants(pid).length && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** A process's peak resident memory. */
export interface ProcessPeak {
  pid: number;
  /** `lb`, `agent` (lb's agent.cjs), else the executable's name (rsync, sh). */
  kind: string;
  peakKb: number;
}

function kindOf(argv: string[]): string {
  if (argv.some((a) => a.endsWith('agent.cjs'))) return 'agent';
  if (argv.some((a) => a.endsWith('/bin/lb'))) return 'lb';
  return argv[0]!.split('/').pop() || '?';
}

/**
 * Polls VmHWM (the kernel's own high-water mark, so a poll only misses what grows in a
 * process's last interval) of every descendant of `root` until stopped.
 */
export function watchPeaks(root: number, intervalMs = 25): () => ProcessPeak[] {
  const peaks = new Map<number, ProcessPeak & { cmdline: string }>();
  const poll = () => {
    for (const pid of descendants(root)) {
      const cmdline = readOr(`/proc/${pid}/cmdline`, '');
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readOr(`/proc/${pid}/status`, ''));
      if (!cmdline || !hwm) continue; // gone, or a zombie
      let peak = peaks.get(pid);
      // A child seen between fork and exec still looks like its parent: what it runs after exec starts afresh.
      if (peak?.cmdline !== cmdline) peaks.set(pid, (peak = { pid, kind: kindOf(cmdline.split('\0')), peakKb: 0, cmdline }));
      peak.peakKb = Math.max(peak.peakKb, Number(hwm[1]));
    }
  };
  poll();
  const timer = setInterval(poll, intervalMs);
  return () => {
    clearInterval(timer);
    return [...peaks.values()].map(({ pid, kind, peakKb }) => ({ pid, kind, peakKb })).sort((a, b) => a.pid - b.pid);
  };
}

/** The largest peak of each kind of process, e.g. { lb: 80000, agent: 120000 }. */
export function peaksByKind(peaks: ProcessPeak[]): Record<string, number> {
  const byKind: Record<string, number> = {};
  for (const p of peaks) byKind[p.kind] = Math.max(byKind[p.kind] ?? 0, p.peakKb);
  return byKind;
}

/** "lb 80 MB, agent 120 MB" or, for several of a kind, "rsync 6/30/25 MB". */
export function formatPeaks(peaks: ProcessPeak[]): string {
  const kinds = [...new Set(peaks.map((p) => p.kind))];
  return kinds.map((k) => `${k} ${peaks.filter((p) => p.kind === k).map((p) => Math.round(p.peakKb / 1024)).join('/')} MB`).join(', ');
}

/** The filesystem type of `dir` as stat(1) names it: ext2/ext3 (also ext4), tmpfs, xfs... */
export function fsType(dir: string): string {
  return spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).stdout.trim();
}

/** A directory on disk for a bench: `wanted` if given, else /tmp unless it is a tmpfs, then /var/tmp. */
export function diskDir(wanted: string): string {
  if (wanted) return wanted;
  return fsType('/tmp') === 'tmpfs' ? '/var/tmp' : '/tmp';
}

export interface Tmpfs {
  dir: string;
  unmount(): void;
}

/** A fresh tmpfs of `bytes` (and `inodes`, else the kernel's default) mounted on a new directory under `parent`. */
export function mountTmpfs(parent: string, bytes: number, inodes?: number): Tmpfs {
  if (process.getuid?.() !== 0) throw new Error('mounting a tmpfs needs root (run the bench as root)');
  const dir = mkdtempSync(join(parent, 'lb-bench-tmpfs-'));
  const options = `size=${Math.ceil(bytes / 2 ** 20)}m${inodes ? `,nr_inodes=${inodes}` : ''}`;
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`mount -t tmpfs failed: ${r.stderr.trim()}`);
  }
  return {
    dir,
    unmount() {
      // Lazily when still busy: the mount must not outlive the bench.
      if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs a bench's main, printing a failure as one line (`bench: ...`) with exit status 1. */
export async function runBench(name: string, main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (e) {
    console.error(`${name}: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  }
}
