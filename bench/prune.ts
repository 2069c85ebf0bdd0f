// Removing old snapshots: `lb prune` against the floor, side by side in one run. The bench archive
// gets 30 snapshots (lb backups, a week's churn between two); the repository is copied twice with
// `cp -a` (which keeps its hard links); on one copy `lb prune --keep-last 10` removes the 20 oldest,
// on the other the floor does the same work with no bookkeeping: `rm -rf` of those 20 trees, then
// `find .lb/objects -links 1 -delete`. Each step starts with a cold cache (when allowed) and ends with
// a sync, counted in its time. Also `lb prune --dry-run`'s predicted bytes freed against what the prune
// freed and what du measured.
//
//   npm run bench:prune -- [--files 30000] [--bytes 3e8] [--dirs 300] [--snapshots 30] [--keep 10] [--dir /tmp] [--keep-files]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { LB, churn, dropCaches, generate, mb, parseArgs, ratio, timed, type Archive } from './archive.js';

const opts = parseArgs(process.argv.slice(2), { files: 30000, bytes: 3e8, dirs: 300, snapshots: 30, keep: 10, dir: '/tmp', 'keep-files': false });

interface PruneJson {
  removed: string[];
  /** A dry run's. */
  predicted?: { objects: number; bytes: number };
  /** A prune's. */
  freed?: { objects: number; bytes: number };
}

function must(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** Apparent bytes of the store, each inode once (du -sb). */
function storeBytes(repo: string): number {
  return Number(must('du', ['-sb', join(repo, '.lb', 'objects')]).split('\t')[0]);
}

function inodes(dir: string): number {
  return Number(must('du', ['-s', '--inodes', dir]).split('\t')[0]);
}

/** The albums where they are now (a churn moves some), in a rotating order so that each churn moves others. */
function currentAlbums(source: string, round: number): string[] {
  const albums = readdirSync(source, { recursive: true, withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name.includes('Album'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
  const shift = (round * 37) % albums.length;
  return [...albums.slice(shift), ...albums.slice(0, shift)];
}

/** A step's wall time, its final sync included, from a cold cache when this user may drop caches. */
async function coldStep(command: string, args: string[]): Promise<{ seconds: number; stdout: string }> {
  dropCaches();
  const r = await timed(command, args);
  const started = process.hrtime.bigint();
  spawnSync('sync');
  return { seconds: r.seconds + Number(process.hrtime.bigint() - started) / 1e9, stdout: r.stdout };
}

const work = mkdtempSync(join(opts.dir, 'lb-bench-prune-'));
try {
  console.log(`lb prune bench: npm run bench:prune -- ${process.argv.slice(2).join(' ')}`);
  console.log(`machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
  const source = join(work, 'photos');
  const repo = join(work, 'repo');
  const catalog = join(work, 'catalog.sqlite');
  const archive: Archive = generate(source, opts);
  const backup = () => must(process.execPath, [LB, 'backup', source, repo, '--catalog', catalog, '--quiet', '--always']);
  const started = Date.now();
  backup();
  for (let round = 1; round < opts.snapshots; round++) {
    // churn() gathers the albums it moves under sorted/: move last round's away first.
    if (existsSync(join(source, 'sorted'))) renameSync(join(source, 'sorted'), join(source, `sorted-${round}`));
    churn(source, { ...archive, albums: currentAlbums(source, round) });
    backup();
  }
  const names = readdirSync(repo).filter((n) => /^\d{4}\./.test(n)).sort();
  const doomed = names.slice(0, names.length - opts.keep);
  console.log(
    `archive: ${archive.files.length} files, ${mb(archive.bytes)}; ${names.length} snapshots made in ${((Date.now() - started) / 1000).toFixed(0)} s; ` +
      `repository ${inodes(repo).toLocaleString('en')} inodes, store ${mb(storeBytes(repo))}`,
  );

  const withLb = join(work, 'lb');
  const floor = join(work, 'floor');
  must('cp', ['-a', repo, withLb]);
  must('cp', ['-a', repo, floor]);
  if (!opts['keep-files']) rmSync(repo, { recursive: true });

  const links = must('find', doomed.map((name) => join(floor, name, 'tree')).concat(['-type', 'f'])).split('\n').length - 1;
  const cold = dropCaches();
  // The prediction is a dry run's, untimed: a prune itself only says what it freed.
  const { predicted } = JSON.parse(must(process.execPath, [LB, 'prune', withLb, '--keep-last', String(opts.keep), '--dry-run', '--json'])) as PruneJson;
  const lbBefore = storeBytes(withLb);
  const lbRun = await coldStep(process.execPath, [LB, 'prune', withLb, '--keep-last', String(opts.keep), '--json']);
  const pruned = JSON.parse(lbRun.stdout) as PruneJson;
  const freed = pruned.freed!;
  const lbMeasured = lbBefore - storeBytes(withLb);
  if (pruned.removed.sort().join() !== doomed.join()) throw new Error(`lb removed ${pruned.removed.join(', ')}, not the ${doomed.length} oldest`);

  const floorBefore = storeBytes(floor);
  const script = 'cd "$1" && shift && rm -rf -- "$@" && find .lb/objects -type f -links 1 -delete';
  const floorRun = await coldStep('sh', ['-c', script, 'sh', floor, ...doomed]);
  const floorMeasured = floorBefore - storeBytes(floor);

  console.log(`\nremoving the ${doomed.length} oldest of ${names.length} snapshots, ${links.toLocaleString('en')} tree files (cold cache: ${cold ? 'yes' : 'no, not root'}; each step ends with sync)`);
  console.log(`  lb prune --keep-last ${opts.keep}                         ${lbRun.seconds.toFixed(2).padStart(7)} s`);
  console.log(`  rm -rf + find .lb/objects -links 1 -delete   ${floorRun.seconds.toFixed(2).padStart(7)} s`);
  console.log(`  lb / floor: ${ratio(lbRun.seconds, floorRun.seconds)}`);
  console.log(`\nbytes freed in the store`);
  console.log(`  lb predicted (--dry-run)  ${predicted!.bytes.toLocaleString('en').padStart(14)} B in ${predicted!.objects} objects`);
  console.log(`  lb freed                  ${freed.bytes.toLocaleString('en').padStart(14)} B in ${freed.objects} objects`);
  console.log(`  du -sb, lb's copy         ${lbMeasured.toLocaleString('en').padStart(14)} B`);
  console.log(`  du -sb, the floor's copy  ${floorMeasured.toLocaleString('en').padStart(14)} B`);
  const exact = predicted!.bytes === lbMeasured && freed.bytes === lbMeasured && floorMeasured === lbMeasured;
  console.log(`  ${exact ? 'all equal' : 'NOT EQUAL'}`);
  if (!exact) process.exitCode = 1;
} finally {
  if (!opts['keep-files']) rmSync(work, { recursive: true, force: true });
  else console.log(`kept: ${work}`);
}
