// lb against rsync --link-dest on the same synthetic photo archive, side by side
// in one run: first backup, unchanged backup, then a week's churn (moved albums,
// new, copied, touched and rewritten photos) and the backup after it.
//
//   npm run bench -- [--files 30000] [--bytes 1e9] [--dirs 300] [--dir /tmp] [--keep] [--json]
//
// Both tools run with a warm page cache, and `sync` runs before every measured
// step so that neither pays for the other's writeback.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { LB, churn, generate, mb, parseArgs, printTargets, ratio, rsyncStat, timed, usage, writeback } from './archive.js';

interface Step {
  seconds: number;
  read: number;
  transferred: number;
  diskAdded: number;
  inodesAdded: number;
  maxRssKb: number;
  /** rsync only: the writeback it left to the kernel, timed after it. */
  writeback?: number;
}

async function rsyncStep(source: string, repo: string, step: string, previous?: string): Promise<Step> {
  const before = usage(repo);
  const args = ['-aH', '--stats', ...(previous ? [`--link-dest=${join(repo, previous)}`] : []), source + '/', join(repo, step) + '/'];
  const r = await timed('rsync', args);
  const left = writeback(); // lb syncs its objects before publishing; rsync leaves that to the kernel
  const after = usage(repo);
  const transferred = rsyncStat(r.stdout, 'Total transferred file size');
  return { seconds: r.seconds, writeback: left, read: transferred, transferred, diskAdded: after.bytes - before.bytes, inodesAdded: after.inodes - before.inodes, maxRssKb: r.maxRssKb };
}

async function lbStep(source: string, repo: string, catalog: string): Promise<Step> {
  const before = usage(repo);
  const r = await timed(process.execPath, [LB, 'backup', source, repo, '--json', '--catalog', catalog]);
  const after = usage(repo);
  const s = JSON.parse(r.stdout) as { bytes: { read: number; transferred: number } };
  return { seconds: r.seconds, read: s.bytes.read, transferred: s.bytes.transferred, diskAdded: after.bytes - before.bytes, inodesAdded: after.inodes - before.inodes, maxRssKb: r.maxRssKb };
}

function printStep(name: string, lb: Step, rsync: Step): void {
  console.log(`\n${name}`);
  console.log(`  ${'tool'.padEnd(7)}${'seconds'.padStart(9)}${'read'.padStart(12)}${'transferred'.padStart(13)}${'disk added'.padStart(12)}${'inodes'.padStart(8)}${'max RSS'.padStart(10)}`);
  for (const [tool, r] of [['lb', lb], ['rsync', rsync]] as const) {
    console.log(
      `  ${tool.padEnd(7)}${r.seconds.toFixed(2).padStart(9)}${mb(r.read).padStart(12)}${mb(r.transferred).padStart(13)}${mb(r.diskAdded).padStart(12)}` +
        `${String(r.inodesAdded).padStart(8)}${`${Math.round(r.maxRssKb / 1024)} MB`.padStart(10)}`,
    );
  }
  console.log(`  time lb/rsync: ${ratio(lb.seconds, rsync.seconds)}; rsync's writeback left to the kernel took ${rsync.writeback!.toFixed(2)} s more (lb's is inside its time)`);
}

const opts = parseArgs(process.argv.slice(2), { files: 30000, bytes: 1e9, dirs: 300, dir: '/tmp', keep: false, json: false });
const work = mkdtempSync(join(opts.dir, 'lb-bench-'));
const source = join(work, 'photos');
const lbRepo = join(work, 'lb-repo');
const rsyncRepo = join(work, 'rsync-repo');
const catalog = join(work, 'catalog.sqlite');
mkdirSync(rsyncRepo);
try {
  console.log(`lb bench: npm run bench -- ${process.argv.slice(2).join(' ')}`);
  console.log(`machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}; warm page cache, sync before each step`);
  const archive = generate(source, opts);
  console.log(`archive: ${archive.files.length} files, ${mb(archive.bytes)}, ${opts.dirs} albums, 5% duplicates`);

  const first = { rsync: await rsyncStep(source, rsyncRepo, '1'), lb: await lbStep(source, lbRepo, catalog) };
  printStep('1. first backup', first.lb, first.rsync);
  const unchanged = { rsync: await rsyncStep(source, rsyncRepo, '2', '1'), lb: await lbStep(source, lbRepo, catalog) };
  printStep('2. unchanged backup', unchanged.lb, unchanged.rsync);
  const c = churn(source, archive);
  console.log(
    `\nchurn: ${c.movedAlbums} albums moved, ${c.added} added (${mb(c.addedBytes)}), ${c.copied} copied (${mb(c.copiedBytes)}), ` +
      `${c.touched} touched (${mb(c.touchedBytes)}), ${c.rewritten} rewritten (${mb(c.rewrittenBytes)})`,
  );
  const after = { rsync: await rsyncStep(source, rsyncRepo, '3', '2'), lb: await lbStep(source, lbRepo, catalog) };
  printStep('3. backup after churn', after.lb, after.rsync);

  const newContent = c.addedBytes + c.rewrittenBytes;
  const changedContent = newContent + c.copiedBytes + c.touchedBytes;
  const l = after.lb;
  printTargets([
    ['unchanged run <= 0.5x rsync time', unchanged.lb.seconds <= 0.5 * unchanged.rsync.seconds, ratio(unchanged.lb.seconds, unchanged.rsync.seconds)],
    ['first run <= 1.0x rsync time', first.lb.seconds <= first.rsync.seconds, ratio(first.lb.seconds, first.rsync.seconds)],
    ['after churn: transferred <= new content + 2%', l.transferred <= newContent * 1.02, `${mb(l.transferred)} vs new content ${mb(newContent)} (rsync sent ${mb(after.rsync.transferred)})`],
    ['after churn: disk added <= new + changed content', l.diskAdded <= changedContent * 1.05 + 4096 * opts.dirs * 2, `${mb(l.diskAdded)} vs ${mb(changedContent)} (rsync added ${mb(after.rsync.diskAdded)})`],
    ['after churn: no moved file re-read', l.read <= changedContent, `read ${mb(l.read)}; added+copied+touched+rewritten ${mb(changedContent)}`],
  ]);
  if (opts.json) console.log(JSON.stringify({ opts, archive: { files: archive.files.length, bytes: archive.bytes }, churn: c, results: { first, unchanged, after } }));
} finally {
  if (!opts.keep) rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}
