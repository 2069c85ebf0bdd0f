// Memory and time per file at a million files: for each size (100,000 and 1,000,000 small
// files by default, 64-4096 bytes, 1,000 to a directory), lb against `rsync -aH` (--link-dest
// after the first): the first backup, an unchanged one, and one after churn (1% of files
// rewritten, 1% new, 1% of directories renamed). Prints wall time, µs per file and the peak
// RSS of every process (lb and its agent apart), polled from /proc. Then lb's first backup of
// one directory of 200,000 entries. All on a fresh tmpfs unless --dir names a directory.
//
//   npm run bench:scale -- [--sizes 100000,1000000] [--bigdir 200000] [--dir DIR] [--keep] [--json]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { LB, parseArgs, printTargets, random, timed } from './archive.js';
import { diskDir, formatPeaks, fsType, mountTmpfs, peaksByKind, runBench, type ProcessPeak, type Tmpfs } from './measure.js';

const opts = parseArgs(process.argv.slice(2), { sizes: '100000,1000000', bigdir: 200000, dir: '', keep: false, json: false });
const sizes = opts.sizes.split(',').map(Number);
const PER_DIR = 1000;
const LIMIT_KB = 200 * 1024;

/** Unique content of `size` bytes: a random block stamped with a counter. */
const block = Buffer.from(Array.from({ length: 4096 }, () => Math.floor(random() * 256)));
let stamp = 0;
function writeSmall(path: string, size: number): void {
  block.writeUInt32LE(++stamp, 0);
  writeFileSync(path, block.subarray(0, size));
}
const smallSize = () => 64 + Math.floor(random() * (4096 - 64));

/** `files` small files, PER_DIR to a directory, written in one tight synchronous loop. */
function generateSmall(source: string, files: number): string[] {
  const dirs: string[] = [];
  for (let f = 0; f < files; f++) {
    if (f % PER_DIR === 0) {
      dirs.push(join(source, `d${String(dirs.length).padStart(5, '0')}`));
      mkdirSync(dirs.at(-1)!, { recursive: true });
    }
    writeSmall(join(dirs.at(-1)!, `f${String(f % PER_DIR).padStart(4, '0')}`), smallSize());
  }
  return dirs;
}

/** 1% of files rewritten, 1% new, 1% of directories renamed (at least one of each). */
function churnSmall(dirs: string[], files: number): string {
  const count = (n: number) => Math.max(1, Math.round(n * 0.01));
  for (let i = 0; i < count(files); i++) writeSmall(join(dirs[Math.floor(random() * dirs.length)]!, `f${String(Math.floor(random() * PER_DIR)).padStart(4, '0')}`), smallSize());
  for (let i = 0; i < count(files); i++) writeSmall(join(dirs[i % dirs.length]!, `new${i}`), smallSize());
  for (let i = 0; i < count(dirs.length); i++) renameSync(dirs[i]!, dirs[i] + '-renamed');
  return `${count(files)} rewritten, ${count(files)} new, ${count(dirs.length)} directories renamed`;
}

interface StepResult {
  seconds: number;
  peaks: ProcessPeak[];
}

async function step(command: string, args: string[]): Promise<StepResult> {
  const r = await timed(command, args, undefined, { peaks: true });
  return { seconds: r.seconds, peaks: r.peaks! };
}

const lbBackup = (source: string, repo: string, catalog: string) => step(process.execPath, [LB, 'backup', source, repo, '-q', '--catalog', catalog]);
const rsyncCopy = (source: string, copies: string, n: number) =>
  step('rsync', ['-aH', ...(n > 1 ? [`--link-dest=${join(copies, String(n - 1))}`] : []), source + '/', join(copies, String(n)) + '/']);

const mbOf = (kb: number) => `${Math.round(kb / 1024)} MB`;
const lbKinds = (peaks: ProcessPeak[]) => peaks.filter((p) => p.kind === 'lb' || p.kind === 'agent');

function printStep(name: string, files: number, lb: StepResult, rsync: StepResult): void {
  const us = (r: StepResult) => ((r.seconds / files) * 1e6).toFixed(1);
  console.log(`  ${name.padEnd(14)}lb    ${lb.seconds.toFixed(2).padStart(8)} s ${us(lb).padStart(7)} µs/file  ${formatPeaks(lb.peaks)}`);
  console.log(`  ${''.padEnd(14)}rsync ${rsync.seconds.toFixed(2).padStart(8)} s ${us(rsync).padStart(7)} µs/file  ${formatPeaks(rsync.peaks)}   lb/rsync ${(lb.seconds / rsync.seconds).toFixed(2)}x`);
}

await runBench('bench:scale', async () => {
  if (sizes.some((n) => !Number.isInteger(n) || n < PER_DIR)) throw new Error(`--sizes takes file counts of at least ${PER_DIR}, comma-separated: ${opts.sizes}`);
  const largest = Math.max(...sizes, opts.bigdir);
  let tmpfs: Tmpfs | null = null;
  // Each small file holds a page and an inode on tmpfs; the source, lb's objects and rsync's first copy each
  // have one, and manifests, catalogs and remembered streams need room beside them (1 GiB of it ran out at 1M).
  if (!opts.dir) tmpfs = mountTmpfs(diskDir(''), largest * 4096 * 4 + 2 ** 31, largest * 4 + 100_000);
  const work = mkdtempSync(join(opts.dir || tmpfs!.dir, 'lb-bench-scale-'));
  const results: Record<string, unknown> = {};
  const targets: [string, boolean, string][] = [];
  const lbPeaksBySize = new Map<number, Record<string, number>>();
  try {
    console.log(`lb scale bench: npm run bench:scale -- ${process.argv.slice(2).join(' ')}`);
    console.log(`machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}; ${work} on ${fsType(work)}`);
    console.log(`peak RSS (VmHWM) of each process, polled every 25 ms; several of a kind are listed in start order`);
    for (const files of sizes) {
      const source = join(work, 'source');
      const started = Date.now();
      const dirs = generateSmall(source, files);
      console.log(`\n${files} files of 64-4096 bytes in ${dirs.length} directories (generated in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
      const repo = join(work, 'lb-repo');
      const catalog = join(work, 'catalog.sqlite');
      const copies = join(work, 'rsync');
      mkdirSync(copies);
      const first = { lb: await lbBackup(source, repo, catalog), rsync: await rsyncCopy(source, copies, 1) };
      printStep('first', files, first.lb, first.rsync);
      const unchanged = { lb: await lbBackup(source, repo, catalog), rsync: await rsyncCopy(source, copies, 2) };
      printStep('unchanged', files, unchanged.lb, unchanged.rsync);
      const churned = churnSmall(dirs, files);
      spawnSync('sleep', ['0.1']); // past the racily-clean window of the churned files' timestamps
      const after = { lb: await lbBackup(source, repo, catalog), rsync: await rsyncCopy(source, copies, 3) };
      printStep('after churn', files, after.lb, after.rsync);
      console.log(`  (churn: ${churned})`);
      results[files] = { first, unchanged, after };
      const lbPeaks = [first, unchanged, after].flatMap((s) => lbKinds(s.lb.peaks));
      lbPeaksBySize.set(files, peaksByKind(lbPeaks));
      const worst = Math.max(...lbPeaks.map((p) => p.peakKb));
      targets.push([`${files} files: every lb process < 200 MB at every step`, worst < LIMIT_KB, `largest ${mbOf(worst)}`]);
      for (const stale of [source, repo, catalog, copies]) rmSync(stale, { recursive: true, force: true });
    }

    const [smallest, biggest] = [Math.min(...sizes), Math.max(...sizes)];
    if (smallest !== biggest) {
      for (const kind of ['lb', 'agent']) {
        const [low, high] = [lbPeaksBySize.get(smallest)![kind] ?? 0, lbPeaksBySize.get(biggest)![kind] ?? 0];
        targets.push([`${kind}: peak RSS at ${biggest} files within 20% of at ${smallest}`, high <= low * 1.2, `${mbOf(high)} vs ${mbOf(low)} (${(high / low).toFixed(2)}x)`]);
      }
    }

    if (opts.bigdir > 0) {
      const source = join(work, 'bigdir');
      mkdirSync(source);
      const started = Date.now();
      const block100 = block.subarray(0, 100);
      for (let f = 0; f < opts.bigdir; f++) {
        block100.writeUInt32LE(++stamp, 0);
        writeFileSync(join(source, `IMG_${String(f).padStart(7, '0')}.JPG`), block100);
      }
      console.log(`\none directory of ${opts.bigdir} files of 100 bytes (generated in ${((Date.now() - started) / 1000).toFixed(1)} s)`);
      const r = await lbBackup(source, join(work, 'bigdir-repo'), join(work, 'bigdir-catalog.sqlite'));
      console.log(`  first backup  lb    ${r.seconds.toFixed(2).padStart(8)} s ${((r.seconds / opts.bigdir) * 1e6).toFixed(1).padStart(7)} µs/file  ${formatPeaks(r.peaks)}`);
      results.bigdir = r;
      const worst = Math.max(...lbKinds(r.peaks).map((p) => p.peakKb));
      targets.push([`one directory of ${opts.bigdir}: every lb process < 200 MB`, worst < LIMIT_KB, `largest ${mbOf(worst)} (${Math.round((worst * 1024) / opts.bigdir)} bytes an entry)`]);
    }

    printTargets(targets);
    if (opts.json) console.log(JSON.stringify({ opts, results }));
  } finally {
    if (!opts.keep) rmSync(work, { recursive: true, force: true });
    else if (!tmpfs) console.log(`kept ${work}`);
    tmpfs?.unmount();
  }
});
