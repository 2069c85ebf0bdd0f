// lb dedupe against util-linux hardlink (default and -c), jdupes -L and rdfind
// -makehardlinks true, side by side in one run on a generated photo tree:
// 20,000 files, 30% of them duplicates (half keeping the original's mtime, mode
// and owner, half not) and 2% near-duplicates (same size, one byte differs in
// the last 4 KiB). Each tool runs on its own `cp -a` of the pristine tree; then
// lb runs again over its already deduplicated copy (unchanged tree). Every
// tool runs once per round (fresh copies each time); times are the median.
//
//   npm run bench:dedupe -- [--files 20000] [--bytes 1.2e9] [--dirs 400] [--rounds 3] [--dir /tmp] [--warm] [--keep] [--json]
//
// Caches: as root, `sync; echo 3 > /proc/sys/vm/drop_caches` before every timed
// run (cold cache: every tool reads inodes and contents from disk); otherwise, or
// with --warm, every run is warm-cache (the copy just written is in the page cache).
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { LB, content, dropCaches, mb, median, parseArgs, photoSize, pick, printTargets, random, ratio, timed, usage, writeback } from './archive.js';

const opts = parseArgs(process.argv.slice(2), { files: 20000, bytes: 1.2e9, dirs: 400, rounds: 3, dir: '/tmp', warm: false, keep: false, json: false });

// ---------------------------------------------------------------- the tree

/** A file and its copy, as paths relative to the tree's root. */
interface Pair {
  original: string;
  copy: string;
  /** Blocks the copy holds (du's measure): what linking it gives back. */
  blockBytes: number;
  size: number;
}

interface Tree {
  files: number;
  bytes: number;
  /** Duplicates with the original's mtime, mode and owner: what every tool links. */
  sameMeta: Pair[];
  /** Duplicates with another mtime (and some another mode or owner): only content-only tools link these. */
  otherMeta: Pair[];
  /** Same size as the original, one byte different: nobody may link these. */
  near: Pair[];
}

const DAY = 86400;

/** The photo tree: deterministic, as archive.ts's PRNG is seeded. */
function generateTree(root: string): Tree {
  const folders: string[] = [];
  for (let d = 0; d < opts.dirs; d++) {
    const year = 2012 + (d % 12);
    const album = join(root, String(year), `${year}-${String(1 + (d % 12)).padStart(2, '0')}`, `Album ${d}`);
    mkdirSync(album, { recursive: true });
    folders.push(album);
    if (d % 3 === 0) {
      mkdirSync(join(album, d % 2 ? 'edited' : 'RAW'));
      folders.push(join(album, d % 2 ? 'edited' : 'RAW'));
    }
  }
  const duplicates = Math.round(opts.files * 0.3);
  const nearCount = Math.round(opts.files * 0.02);
  const originalCount = opts.files - duplicates - nearCount;
  const mean = opts.bytes / opts.files;
  const originals: { path: string; mtime: number }[] = [];
  let bytes = 0;
  const started = Date.UTC(2012, 0, 1) / 1000;
  for (let f = 0; f < originalCount; f++) {
    const path = join(pick(folders), `IMG_${String(f).padStart(6, '0')}.jpg`);
    const data = content(photoSize(mean));
    writeFileSync(path, data);
    chmodSync(path, 0o644);
    const mtime = started + Math.floor(random() * 12 * 365 * DAY);
    utimesSync(path, mtime, mtime);
    originals.push({ path, mtime });
    bytes += data.length;
  }
  const pair = (original: string, copy: string): Pair => {
    const s = lstatSync(copy);
    return { original: relative(root, original), copy: relative(root, copy), blockBytes: s.blocks * 512, size: s.size };
  };
  const tree: Tree = { files: opts.files, bytes: 0, sameMeta: [], otherMeta: [], near: [] };
  for (let f = 0; f < duplicates; f++) {
    const from = pick(originals);
    const path = join(pick(folders), `DUP_${String(f).padStart(6, '0')}.jpg`);
    copyFileSync(from.path, path);
    chmodSync(path, 0o644);
    if (f % 2 === 0) {
      utimesSync(path, from.mtime, from.mtime);
      tree.sameMeta.push(pair(from.path, path));
      bytes += tree.sameMeta.at(-1)!.size;
    } else {
      const mtime = from.mtime + DAY + Math.floor(random() * 400 * DAY);
      utimesSync(path, mtime, mtime);
      if (f % 8 === 1) chmodSync(path, 0o600);
      if (f % 8 === 5) {
        try {
          chownSync(path, 1000, 1000);
        } catch {
          // not root: mtime alone makes the difference
        }
      }
      tree.otherMeta.push(pair(from.path, path));
      bytes += tree.otherMeta.at(-1)!.size;
    }
  }
  const used = new Set<string>();
  for (let f = 0; f < nearCount; f++) {
    let from = pick(originals);
    while (used.has(from.path)) from = pick(originals);
    used.add(from.path);
    const data = readFileSync(from.path);
    const at = data.length - 1 - Math.floor(random() * Math.min(data.length, 4096));
    data[at] = data[at]! ^ 0xff;
    const path = join(pick(folders), `NEAR_${String(f).padStart(6, '0')}.jpg`);
    writeFileSync(path, data);
    chmodSync(path, 0o644);
    // Half with the original's mtime, so that even the metadata-respecting modes must look at the bytes.
    const mtime = f % 2 === 0 ? from.mtime : from.mtime + DAY;
    utimesSync(path, mtime, mtime);
    tree.near.push(pair(from.path, path));
    bytes += data.length;
  }
  tree.bytes = bytes;
  return tree;
}


// ---------------------------------------------------------------- the tools

interface Tool {
  name: string;
  /** Links equal contents whatever the metadata (else: only with equal mtime, mode and owner). */
  contentOnly: boolean;
  command: string;
  args: (dir: string, catalog: string) => string[];
  lb?: boolean;
}

const lbArgs = (dir: string, catalog: string, more: string[] = []) => [LB, 'dedupe', dir, ...more, '--json', '--no-progress', '--catalog', catalog];

const TOOLS: Tool[] = [
  { name: 'hardlink', contentOnly: false, command: 'hardlink', args: (dir) => ['-q', dir] },
  { name: 'lb dedupe', contentOnly: false, command: process.execPath, args: (dir, catalog) => lbArgs(dir, catalog), lb: true },
  { name: 'hardlink -c', contentOnly: true, command: 'hardlink', args: (dir) => ['-q', '-c', dir] },
  { name: 'lb dedupe --content-only', contentOnly: true, command: process.execPath, args: (dir, catalog) => lbArgs(dir, catalog, ['--content-only']), lb: true },
  { name: 'jdupes -r -L', contentOnly: true, command: 'jdupes', args: (dir) => ['-q', '-r', '-L', dir] },
  { name: 'rdfind -makehardlinks true', contentOnly: true, command: 'rdfind', args: (dir) => ['-makehardlinks', 'true', '-makeresultsfile', 'false', dir] },
];

const installed = (command: string): boolean => spawnSync('sh', ['-c', `command -v "$0"`, command]).status === 0;

function version(command: string): string {
  const r = spawnSync(command, [command === 'rdfind' ? '-v' : '--version'], { encoding: 'utf8' });
  return (r.stdout || r.stderr).split('\n')[0]!.trim();
}

interface LbSummary {
  files: { scanned: number; hashed: number; linked: number; changed: number };
  groups: number;
  bytes: { scanned: number; read: number; reclaimed: number };
  collisions: number;
  skipped: unknown[];
}

interface Linked {
  sameMeta: number;
  otherMeta: number;
  near: number;
}

interface Run {
  tool: string;
  contentOnly: boolean;
  seconds: number;
  /** The writeback the tool left to the kernel, timed after it (not in `seconds`). */
  writeback: number;
  maxRssKb: number;
  /** `du -s -B1` before minus after: space the filesystem got back. */
  reclaimed: number;
  inodesFreed: number;
  /** Pairs of the tree that now share an inode. */
  linked: Linked;
  lb?: LbSummary;
}

function linkedPairs(dir: string, tree: Tree): Linked {
  const same = (pairs: Pair[]) => pairs.filter((p) => lstatSync(join(dir, p.original)).ino === lstatSync(join(dir, p.copy)).ino).length;
  return { sameMeta: same(tree.sameMeta), otherMeta: same(tree.otherMeta), near: same(tree.near) };
}

let cold = false;

async function measure(tool: Tool, dir: string, catalog: string, tree: Tree): Promise<Run> {
  const before = usage(dir);
  if (cold) dropCaches();
  const r = await timed(tool.command, tool.args(dir, catalog));
  const left = writeback();
  const after = usage(dir);
  return {
    tool: tool.name,
    contentOnly: tool.contentOnly,
    seconds: r.seconds,
    writeback: left,
    maxRssKb: r.maxRssKb,
    reclaimed: before.bytes - after.bytes,
    inodesFreed: before.inodes - after.inodes,
    linked: linkedPairs(dir, tree),
    lb: tool.lb ? (JSON.parse(r.stdout) as LbSummary) : undefined,
  };
}

/** Regular files under `dir` that a command opened, by strace. */
function openedUnder(dir: string, command: string, args: string[], log: string): number {
  spawnSync('strace', ['-f', '-qq', '-e', 'trace=openat', '-o', log, command, ...args], { stdio: 'ignore' });
  const prefix = `"${dir}/`;
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((line) => line.includes(prefix) && !line.includes('O_DIRECTORY') && !/= -1 /.test(line)).length;
}

/** A tool's rounds: median time, and the byte counts, which must agree between rounds. */
interface Row {
  tool: string;
  contentOnly: boolean;
  rounds: Run[];
  seconds: number;
  writeback: number;
  /** The first round's; `consistent` says whether the others agree. */
  reclaimed: number;
  inodesFreed: number;
  linked: Linked;
  lb?: LbSummary;
  consistent: boolean;
  maxRssKb: number;
}

function row(rounds: Run[]): Row {
  const first = rounds[0]!;
  const key = (r: Run) => JSON.stringify([r.reclaimed, r.inodesFreed, r.linked, r.lb?.bytes, r.lb?.files]);
  return {
    tool: first.tool,
    contentOnly: first.contentOnly,
    rounds,
    seconds: median(rounds.map((r) => r.seconds)),
    writeback: median(rounds.map((r) => r.writeback)),
    reclaimed: first.reclaimed,
    inodesFreed: first.inodesFreed,
    linked: first.linked,
    lb: first.lb,
    consistent: rounds.every((r) => key(r) === key(first)),
    maxRssKb: Math.max(...rounds.map((r) => r.maxRssKb)),
  };
}

const spread = (r: Row) => (r.rounds.length > 1 ? `${Math.min(...r.rounds.map((x) => x.seconds)).toFixed(2)}–${Math.max(...r.rounds.map((x) => x.seconds)).toFixed(2)}` : '');

function printRows(rows: Row[], tree: Tree): void {
  const header =
    `  ${'tool'.padEnd(27)}${'links'.padEnd(9)}${'seconds'.padStart(8)}${'range'.padStart(12)}${'+writeback'.padStart(11)}${'reclaimed (du)'.padStart(16)}` +
    `${'inodes freed'.padStart(14)}${'linked same/other/near'.padStart(24)}${'max RSS'.padStart(9)}`;
  console.log(`\n${header}`);
  for (const r of rows) {
    const linked = `${r.linked.sameMeta}/${r.linked.otherMeta}/${r.linked.near}`;
    console.log(
      `  ${r.tool.padEnd(27)}${(r.contentOnly ? 'content' : 'metadata').padEnd(9)}${r.seconds.toFixed(2).padStart(8)}${spread(r).padStart(12)}${r.writeback.toFixed(2).padStart(11)}` +
        `${String(r.reclaimed).padStart(16)}${String(r.inodesFreed).padStart(14)}${linked.padStart(24)}${`${Math.round(r.maxRssKb / 1024)} MB`.padStart(9)}` +
        (r.consistent ? '' : '  (rounds differ in bytes or links!)'),
    );
  }
  const sum = (pairs: Pair[], key: 'blockBytes' | 'size') => pairs.reduce((n, p) => n + p[key], 0);
  console.log(
    `  expected: metadata ${sum(tree.sameMeta, 'blockBytes')} (${tree.sameMeta.length} files), content ${sum(tree.sameMeta, 'blockBytes') + sum(tree.otherMeta, 'blockBytes')} ` +
      `(${tree.sameMeta.length + tree.otherMeta.length} files); linked same/other/near of ${tree.sameMeta.length}/${tree.otherMeta.length}/${tree.near.length} pairs`,
  );
  for (const r of rows) {
    if (!r.lb) continue;
    const expected = sum(tree.sameMeta, 'size') + (r.contentOnly ? sum(tree.otherMeta, 'size') : 0);
    console.log(
      `  ${r.tool}: its own report: ${r.lb.files.linked} linked in ${r.lb.groups} groups, ${r.lb.files.hashed} hashed, read ${mb(r.lb.bytes.read)}, ` +
        `reclaimed ${r.lb.bytes.reclaimed} (file sizes; expected ${expected}), ${r.lb.files.changed} changed, ${r.lb.collisions} collisions, ${r.lb.skipped.length} skipped`,
    );
  }
}

// ---------------------------------------------------------------- the run

const benchStarted = process.hrtime.bigint();
const work = mkdtempSync(join(opts.dir, 'lb-bench-dedupe-'));
const pristine = join(work, 'pristine');
try {
  console.log(`lb dedupe bench: npm run bench:dedupe -- ${process.argv.slice(2).join(' ')}`);
  console.log(`date: ${new Date().toISOString()}; machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
  const tools = TOOLS.filter((tool) => {
    if (installed(tool.command)) return true;
    console.log(`skipping ${tool.name}: ${tool.command} is not installed (apt-get install ${tool.command === 'hardlink' ? 'util-linux' : tool.command})`);
    return false;
  });
  console.log(`peers: ${[...new Set(tools.filter((t) => !t.lb).map((t) => version(t.command)))].join('; ')}`);
  cold = !opts.warm && dropCaches();
  console.log(
    (cold
      ? 'caches: cold, `sync; echo 3 > /proc/sys/vm/drop_caches` before every timed run'
      : `caches: warm (${opts.warm ? '--warm' : 'cannot drop caches: not root'}), each tool runs on a copy just written`) +
      `; \`sync\` after each run timed separately (writeback); ${opts.rounds} round(s), each tool on a fresh \`cp -a\` every round, median time`,
  );

  const generated = process.hrtime.bigint();
  const tree = generateTree(pristine);
  const size = usage(pristine);
  console.log(
    `tree: ${tree.files} files, ${mb(tree.bytes)} (${mb(size.bytes)} on disk), ${opts.dirs} albums; ` +
      `${tree.sameMeta.length} duplicates with the original's mtime, mode and owner, ${tree.otherMeta.length} with another mtime (some another mode or owner), ` +
      `${tree.near.length} same size with one byte different; generated in ${(Number(process.hrtime.bigint() - generated) / 1e9).toFixed(1)} s`,
  );

  const rounds = new Map<Tool, Run[]>(tools.map((t) => [t, []]));
  const again: Run[] = [];
  let opened: number | undefined;
  for (let round = 1; round <= opts.rounds; round++) {
    // Every tool once per round, so that the VM's drift spreads over all of them.
    for (const [i, tool] of tools.entries()) {
      const copy = join(work, `copy-${round}-${i}`);
      const catalog = join(work, `catalog-${round}-${i}.sqlite`); // fresh per copy: a copy has new inodes
      const cp = spawnSync('cp', ['-a', pristine, copy]);
      if (cp.status !== 0) throw new Error(`cp -a failed: ${cp.stderr}`);
      const run = await measure(tool, copy, catalog, tree);
      rounds.get(tool)!.push(run);
      let line = `  round ${round}: ${tool.name}: ${run.seconds.toFixed(2)} s, reclaimed ${mb(run.reclaimed)}`;
      if (tool.lb && !tool.contentOnly) {
        // Again over the tree it just deduplicated, with the same catalog: nothing changed.
        const rerun = await measure(tool, copy, catalog, tree);
        again.push(rerun);
        line += `; again over the unchanged tree: ${rerun.seconds.toFixed(2)} s, read ${rerun.lb!.bytes.read} bytes`;
        if (round === opts.rounds && installed('strace')) opened = openedUnder(copy, tool.command, tool.args(copy, catalog), join(work, 'strace.log'));
      }
      console.log(line);
      if (!opts.keep) rmSync(copy, { recursive: true, force: true });
    }
  }

  const rows = tools.map((t) => row(rounds.get(t)!));
  printRows(rows, tree);
  const find = (name: string) => rows.find((r) => r.tool === name);
  const first = find('lb dedupe');
  const rerun = again.length > 0 ? row(again) : undefined;
  const rereadBytes = Math.max(...again.map((r) => r.lb!.bytes.read));
  if (first && rerun) {
    console.log(
      `\n  lb dedupe again over its deduplicated copy, same catalog: ${rerun.seconds.toFixed(2)} s (${spread(rerun) ? `${spread(rerun)}; ` : ''}first run ${first.seconds.toFixed(2)} s, ` +
        `${ratio(first.seconds, rerun.seconds)} faster); read ${rereadBytes} bytes, hashed ${rerun.lb!.files.hashed} files, linked ${rerun.lb!.files.linked}` +
        (opened === undefined ? '' : `; strace (last round, once more): opened ${opened} regular files under the tree`),
    );
  }

  const targets: [string, boolean, string][] = [];
  for (const [lbName, peerName] of [
    ['lb dedupe', 'hardlink'],
    ['lb dedupe --content-only', 'hardlink -c'],
  ] as const) {
    const l = find(lbName);
    const p = find(peerName);
    if (!l || !p) {
      console.log(`no target for ${lbName} against ${peerName}: ${p ? lbName : peerName} did not run`);
      continue;
    }
    targets.push([
      `${lbName}: same bytes reclaimed as ${peerName}`,
      l.reclaimed === p.reclaimed && l.consistent && p.consistent,
      `${l.reclaimed} vs ${p.reclaimed} (${l.reclaimed - p.reclaimed >= 0 ? '+' : ''}${l.reclaimed - p.reclaimed}); inodes freed ${l.inodesFreed} vs ${p.inodesFreed}`,
    ]);
    targets.push([
      `${lbName}: first run <= 1.0x ${peerName} time`,
      l.seconds <= p.seconds,
      `median ${l.seconds.toFixed(2)} s vs ${p.seconds.toFixed(2)} s = ${ratio(l.seconds, p.seconds)}`,
    ]);
  }
  if (first && rerun) {
    const speedup = first.seconds / rerun.seconds;
    targets.push(['re-run over the unchanged tree >= 3x faster than the first run', speedup >= 3, `median ${first.seconds.toFixed(2)} s / ${rerun.seconds.toFixed(2)} s = ${speedup.toFixed(2)}x`]);
    targets.push(['re-run reads nothing', rereadBytes === 0 && (opened ?? 0) === 0, `bytes.read ${rereadBytes}${opened === undefined ? '' : `, ${opened} files opened (strace)`}`]);
  }
  for (const r of rows.filter((r) => r.lb)) {
    const wrong = r.linked.near + (r.contentOnly ? 0 : r.linked.otherMeta);
    targets.push([`${r.tool}: links nothing it must not`, wrong === 0, `near-duplicates linked ${r.linked.near}${r.contentOnly ? '' : `, other-metadata duplicates linked ${r.linked.otherMeta}`}`]);
  }
  printTargets(targets);
  console.log(`\nwhole bench: ${(Number(process.hrtime.bigint() - benchStarted) / 1e9).toFixed(0)} s`);
  if (opts.json) console.log(JSON.stringify({ opts, cold, tree: { files: tree.files, bytes: tree.bytes, onDisk: size.bytes }, rows, rerun, opened }));
} finally {
  if (!opts.keep) rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}
