// What 20 exclude rules cost an unchanged run: the bench archive backed up
// once, then unchanged runs with and without the rules in alternating rounds
// (lb and, as the peer, rsync --link-dest with the same rules), medians printed
// with their ratios. Target: lb with the rules within 5% of lb without them.
//
//   npm run bench:excludes -- [--files 30000] [--bytes 3e8] [--dirs 300] [--rounds 5] [--dir /tmp] [--keep]
//
// The rules are the kind users write (thumbnail caches, OS litter, build
// outputs), and the archive holds a little of what they match, so every rule is
// tried on every name and a few directories really are left out.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { LB, generate, mb, median, parseArgs, printTargets, ratio, timed } from './archive.js';

const RULES = [
  'Thumbs.db',
  '.DS_Store',
  'desktop.ini',
  '._*',
  '*.tmp',
  '*.part',
  '*~',
  '.Trash-*/',
  '.thumbnails/',
  'node_modules/',
  '.git/',
  '/lost+found/',
  'cache/',
  '*.swp',
  '.picasaoriginals/',
  '**/@eaDir',
  '*.lrdata/',
  'tmp/',
  '[Bb]ackup*.zip',
  '/scratch/',
];

const opts = parseArgs(process.argv.slice(2), { files: 30000, bytes: 3e8, dirs: 300, rounds: 5, dir: '/tmp', keep: false });
const work = mkdtempSync(join(opts.dir, 'lb-bench-excludes-'));
const source = join(work, 'photos');
// One repository per variant, so that every measured run is truly unchanged against its own previous one.
const lbRepo = (withRules: boolean) => join(work, withRules ? 'lb-rules' : 'lb-plain');
const rsyncRepo = (withRules: boolean) => join(work, withRules ? 'rsync-rules' : 'rsync-plain');
const rsyncSteps = [0, 0];
const catalog = join(work, 'catalog.sqlite');
const rulesFile = join(work, 'rules');

async function lbRun(withRules: boolean): Promise<number> {
  const r = await timed(process.execPath, [LB, 'backup', source, lbRepo(withRules), '-q', '--catalog', catalog, ...(withRules ? ['--exclude-from', rulesFile] : [])]);
  return r.seconds;
}

async function rsyncRun(withRules: boolean): Promise<number> {
  const repo = rsyncRepo(withRules);
  const previous = rsyncSteps[withRules ? 1 : 0]!;
  const step = previous + 1;
  rsyncSteps[withRules ? 1 : 0] = step;
  const args = ['-aH', ...(previous ? [`--link-dest=${join(repo, String(previous))}`] : []), ...(withRules ? [`--exclude-from=${rulesFile}`] : []), source + '/', join(repo, String(step)) + '/'];
  const r = await timed('rsync', args);
  if (previous) rmSync(join(repo, String(previous)), { recursive: true, force: true }); // only the newest is linked against
  return r.seconds;
}

try {
  console.log(`lb bench: npm run bench:excludes -- ${process.argv.slice(2).join(' ')}`);
  console.log(`machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}; warm page cache, sync before each run`);
  const archive = generate(source, opts);
  // A little of what the rules are for, so some really match.
  for (let i = 0; i < 20; i++) {
    mkdirSync(join(source, `album-extra-${i}`, '.thumbnails'), { recursive: true });
    writeFileSync(join(source, `album-extra-${i}`, '.thumbnails', 'a.png'), 'thumb');
    writeFileSync(join(source, `album-extra-${i}`, 'Thumbs.db'), 'litter');
  }
  writeFileSync(rulesFile, RULES.join('\n') + '\n');
  console.log(`archive: ${archive.files.length} files, ${mb(archive.bytes)}; ${RULES.length} rules: ${RULES.join(' ')}`);
  for (const withRules of [false, true]) {
    mkdirSync(rsyncRepo(withRules));
    await lbRun(withRules);
    await rsyncRun(withRules);
  }
  const times = { lb: [[], []] as number[][], rsync: [[], []] as number[][] };
  for (let round = 0; round < opts.rounds; round++) {
    // Alternating, so drift in the machine's speed falls on both alike.
    for (const withRules of round % 2 === 0 ? [false, true] : [true, false]) {
      times.lb[withRules ? 1 : 0]!.push(await lbRun(withRules));
      times.rsync[withRules ? 1 : 0]!.push(await rsyncRun(withRules));
    }
  }
  const lbPlain = median(times.lb[0]!);
  const lbRules = median(times.lb[1]!);
  const rsyncPlain = median(times.rsync[0]!);
  const rsyncRules = median(times.rsync[1]!);
  console.log(`\nunchanged run, median of ${opts.rounds} (seconds)`);
  console.log(`  ${'tool'.padEnd(7)}${'no rules'.padStart(10)}${'20 rules'.padStart(10)}${'ratio'.padStart(8)}`);
  console.log(`  ${'lb'.padEnd(7)}${lbPlain.toFixed(3).padStart(10)}${lbRules.toFixed(3).padStart(10)}${ratio(lbRules, lbPlain).padStart(8)}`);
  console.log(`  ${'rsync'.padEnd(7)}${rsyncPlain.toFixed(3).padStart(10)}${rsyncRules.toFixed(3).padStart(10)}${ratio(rsyncRules, rsyncPlain).padStart(8)}`);
  console.log(`  lb/rsync with the rules: ${ratio(lbRules, rsyncRules)}`);
  printTargets([['unchanged run with 20 rules <= 1.05x without', lbRules <= lbPlain * 1.05, ratio(lbRules, lbPlain)]]);
} finally {
  if (!opts.keep) rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}
