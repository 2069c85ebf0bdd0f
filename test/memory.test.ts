// Memory does not grow with the size of a directory: while one directory of
// 50,000 entries is backed up, every process (lb and its agent) stays within a
// bound that holding a few hundred bytes more per entry would pass. Peak RSS is
// the kernel's own figure (VmHWM), polled from /proc while the run goes on.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LB, tempDir, type Summary } from './helpers.js';

const ENTRIES = 50_000;
/**
 * A run's own footprint (node, V8's heap with its garbage, the windows of entries in flight) is
 * 90 to 150 MB on any tree; 175 MB leaves room for a few hundred bytes an entry, no more. A stat
 * kept per entry while a directory is sorted (lb once took 290 MB here), or the content of every
 * file hashed and found in the store (195 MB), passes it.
 */
const BOUND_MB = 175;

interface Peak {
  command: string;
  mb: number;
}

/** The process `pid` and every process under it. */
function processTree(pid: number): number[] {
  const found = [pid];
  for (let i = 0; i < found.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${found[i]}/task`)) {
        const children = readFileSync(`/proc/${found[i]}/task/${task}/children`, 'utf8').trim();
        if (children) found.push(...children.split(' ').map(Number));
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return found;
}

/** Runs lb, polling every 50 ms the peak RSS of it and of every process it started. */
async function peaksOf(args: string[]): Promise<{ status: number; stdout: string; stderr: string; peaks: Peak[] }> {
  const child = spawn(process.execPath, [LB, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const peaks = new Map<number, Peak>();
  const poll = () => {
    for (const pid of processTree(child.pid!)) {
      try {
        const status = readFileSync(`/proc/${pid}/status`, 'utf8');
        const kb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
        const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, 2).join(' ');
        if (kb / 1024 > (peaks.get(pid)?.mb ?? -1)) peaks.set(pid, { command, mb: kb / 1024 });
      } catch {
        // Gone meanwhile.
      }
    }
  };
  const timer = setInterval(poll, 50);
  const status = await new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  clearInterval(timer);
  return { status, stdout, stderr, peaks: [...peaks.values()] };
}

describe('memory', () => {
  it('one directory of 50,000 files: every process stays under the bound, on the first run and on an unchanged one', async () => {
    const root = tempDir();
    const source = join(root, 'source');
    mkdirSync(source);
    // A hundred contents, one mtime: the store links most files to an object it already has, so the
    // run is quick, and each file is still listed, stat'ed, hashed and matched like any other.
    for (let i = 0; i < ENTRIES; i++) {
      const file = join(source, `f${String(i).padStart(6, '0')}`);
      writeFileSync(file, `content ${i % 100} `.padEnd(100, '.'));
      utimesSync(file, 1_000_000_000, 1_000_000_000);
    }
    const args = ['backup', source, join(root, 'repo'), '--json', '--catalog', join(root, 'catalog.sqlite')];

    const first = await peaksOf(args);
    expect(first.status, first.stderr).toBe(0);
    expect((JSON.parse(first.stdout) as Summary).files).toEqual({ new: 100, copied: 0, linked: ENTRIES - 100, total: ENTRIES });
    const unchanged = await peaksOf(args);
    expect(unchanged.status, unchanged.stderr).toBe(0);
    expect((JSON.parse(unchanged.stdout) as Summary).created).toBe(false);

    for (const [run, peaks] of [['first', first.peaks], ['unchanged', unchanged.peaks]] as const) {
      // lb and its agent at least were seen.
      expect(peaks.filter((p) => p.command.includes('node')).length, run).toBeGreaterThanOrEqual(2);
      for (const peak of peaks) expect(peak.mb, `${run} run: ${peak.command}`).toBeLessThan(BOUND_MB);
    }
  }, 60_000);
});
