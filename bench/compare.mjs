#!/usr/bin/env node
// lb against rsync --link-dest on the same synthetic photo archive, side by side
// in one run: first backup, unchanged backup, then a week's churn (moved albums,
// new, copied, touched and rewritten photos) and the backup after it.
//
//   node bench/compare.mjs [--files 30000] [--bytes 1e9] [--dirs 300] [--dir /tmp] [--keep] [--json]
//
// Both tools run with a warm page cache, and `sync` runs before every measured
// step so that neither pays for the other's writeback.
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LB = join(ROOT, 'bin', 'lb');

function parseArgs(argv) {
  const opts = { files: 30000, bytes: 1e9, dirs: 300, dir: '/tmp', keep: false, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--keep') opts.keep = true;
    else if (a === '--json') opts.json = true;
    else if (['--files', '--bytes', '--dirs'].includes(a)) opts[a.slice(2)] = Number(argv[++i]);
    else if (a === '--dir') opts.dir = argv[++i];
    else throw new Error(`unknown argument ${a}`);
  }
  return opts;
}

// ---- a deterministic PRNG, so two runs build the same archive ----
let seed = 20041009;
function random() {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed / 0x7fffffff;
}
const pick = (list) => list[Math.floor(random() * list.length)];

/** Incompressible content, unique per call: a slice of a random pool stamped with a counter. */
const pool = randomFillSync(Buffer.allocUnsafe(64 * 1024 * 1024));
let stamp = 0;
function content(size) {
  const offset = Math.floor(random() * (pool.length - size - 16));
  const data = Buffer.from(pool.subarray(offset, offset + size));
  data.writeUInt32BE(++stamp, 0);
  data.writeDoubleBE(random(), 4);
  return data;
}

/** Photo-like sizes around the mean, with a few large files (videos, raw). */
function photoSize(mean) {
  return random() < 0.01 ? Math.floor(mean * (20 + random() * 40)) : Math.floor(mean * (0.2 + random() * 1.2));
}

function generate(source, opts) {
  const albums = [];
  for (let d = 0; d < opts.dirs; d++) {
    const year = 2005 + (d % 20);
    const album = join(source, String(year), `${year}-${String(1 + (d % 12)).padStart(2, '0')}-${String(1 + (d % 28)).padStart(2, '0')} Album ${d}`);
    mkdirSync(album, { recursive: true });
    albums.push(album);
  }
  const mean = opts.bytes / opts.files;
  const files = [];
  let bytes = 0;
  const originals = Math.round(opts.files * 0.95);
  for (let f = 0; f < originals; f++) {
    const path = join(pick(albums), `IMG_${String(f).padStart(6, '0')}.jpg`);
    const data = content(photoSize(mean));
    writeFileSync(path, data);
    files.push(path);
    bytes += data.length;
  }
  // 5% duplicates: imported twice, half keeping the original mtime.
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

/** A week of reorganising: the same for both tools, applied once to the one source. */
function churn(source, archive) {
  const moved = new Set();
  const count = Math.round(archive.albums.length * 0.3);
  const target = join(source, 'sorted');
  mkdirSync(target);
  for (const album of archive.albums.slice(0, count)) {
    const to = join(target, `${album.split('/').pop()} (sorted)`);
    renameSync(album, to);
    moved.add(album);
  }
  const live = readdirSync(source, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? e.path, e.name));
  const mean = archive.bytes / archive.files.length;
  const stats = { movedAlbums: count, added: 0, addedBytes: 0, copied: 0, copiedBytes: 0, touched: 0, touchedBytes: 0, rewritten: 0, rewrittenBytes: 0 };
  const albums = readdirSync(source, { recursive: true, withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name.includes('Album'))
    .map((e) => join(e.parentPath ?? e.path, e.name));
  for (let i = 0; i < Math.round(live.length * 0.02); i++) {
    const data = content(photoSize(mean));
    writeFileSync(join(pick(albums), `NEW_${i}.jpg`), data);
    stats.added++;
    stats.addedBytes += data.length;
  }
  const shuffled = [...live].sort(() => random() - 0.5);
  let at = 0;
  for (let i = 0; i < Math.round(live.length * 0.01); i++, at++) {
    const from = shuffled[at];
    copyFileSync(from, join(pick(albums), `COPY_${i}.jpg`));
    stats.copied++;
    stats.copiedBytes += statSync(from).size;
  }
  const now = new Date();
  for (let i = 0; i < Math.round(live.length * 0.01); i++, at++) {
    utimesSync(shuffled[at], now, now);
    stats.touched++;
    stats.touchedBytes += statSync(shuffled[at]).size;
  }
  for (let i = 0; i < Math.round(live.length * 0.005); i++, at++) {
    const size = statSync(shuffled[at]).size;
    writeFileSync(shuffled[at], content(size));
    stats.rewritten++;
    stats.rewrittenBytes += size;
  }
  // Past lb's racily-clean window, as a nightly run would be.
  spawnSync('sleep', ['0.3']);
  return stats;
}

function run(command, args) {
  spawnSync('sync');
  const started = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', command, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  const maxRssKb = Number(r.stderr.trim().split('\n').pop());
  return { seconds, stdout: r.stdout, maxRssKb };
}

function usage(dir) {
  const bytes = Number(spawnSync('du', ['-s', '-B1', dir], { encoding: 'utf8' }).stdout.split('\t')[0]);
  const inodes = Number(spawnSync('du', ['-s', '--inodes', dir], { encoding: 'utf8' }).stdout.split('\t')[0]);
  return { bytes, inodes };
}

function rsyncStep(source, repo, step, previous) {
  const before = usage(repo);
  const args = ['-aH', '--stats', ...(previous ? [`--link-dest=${join(repo, previous)}`] : []), source + '/', join(repo, step) + '/'];
  const r = run('rsync', args);
  // lb syncs its objects before publishing a snapshot; rsync leaves that writeback to the kernel. Timed apart, so it shows.
  const syncStarted = process.hrtime.bigint();
  spawnSync('sync');
  const writeback = Number(process.hrtime.bigint() - syncStarted) / 1e9;
  const after = usage(repo);
  const transferred = Number(/Total transferred file size: ([\d,]+)/.exec(r.stdout)[1].replace(/,/g, ''));
  return { seconds: r.seconds, writeback, read: transferred, transferred, diskAdded: after.bytes - before.bytes, inodesAdded: after.inodes - before.inodes, maxRssKb: r.maxRssKb };
}

function lbStep(source, repo, catalog) {
  const before = usage(repo);
  const r = run(process.execPath, [LB, 'backup', source, repo, '--json', '--catalog', catalog]);
  const after = usage(repo);
  const s = JSON.parse(r.stdout);
  return { seconds: r.seconds, read: s.bytes.read, transferred: s.bytes.transferred, diskAdded: after.bytes - before.bytes, inodesAdded: after.inodes - before.inodes, maxRssKb: r.maxRssKb, files: s.files };
}

const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;

function printStep(name, lb, rsync) {
  console.log(`\n${name}`);
  console.log(`  ${'tool'.padEnd(7)}${'seconds'.padStart(9)}${'read'.padStart(12)}${'transferred'.padStart(13)}${'disk added'.padStart(12)}${'inodes'.padStart(8)}${'max RSS'.padStart(10)}`);
  for (const [tool, r] of [['lb', lb], ['rsync', rsync]]) {
    console.log(`  ${tool.padEnd(7)}${r.seconds.toFixed(2).padStart(9)}${mb(r.read).padStart(12)}${mb(r.transferred).padStart(13)}${mb(r.diskAdded).padStart(12)}${String(r.inodesAdded).padStart(8)}${`${Math.round(r.maxRssKb / 1024)} MB`.padStart(10)}`);
  }
  console.log(`  time lb/rsync: ${(lb.seconds / rsync.seconds).toFixed(2)}x; rsync's writeback left to the kernel took ${rsync.writeback.toFixed(2)} s more (lb's is inside its time)`);
}

const opts = parseArgs(process.argv.slice(2));
const work = mkdtempSync(join(opts.dir, 'lb-bench-'));
const source = join(work, 'photos');
const lbRepo = join(work, 'lb-repo');
const rsyncRepo = join(work, 'rsync-repo');
const catalog = join(work, 'catalog.sqlite');
mkdirSync(rsyncRepo);
try {
  console.log(`lb bench: node bench/compare.mjs ${process.argv.slice(2).join(' ')}`);
  console.log(`machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}; warm page cache, sync before each step`);
  const archive = generate(source, opts);
  console.log(`archive: ${archive.files.length} files, ${mb(archive.bytes)}, ${opts.dirs} albums, 5% duplicates`);

  const results = {};
  results.first = { rsync: rsyncStep(source, rsyncRepo, '1'), lb: lbStep(source, lbRepo, catalog) };
  printStep('1. first backup', results.first.lb, results.first.rsync);
  results.unchanged = { rsync: rsyncStep(source, rsyncRepo, '2', '1'), lb: lbStep(source, lbRepo, catalog) };
  printStep('2. unchanged backup', results.unchanged.lb, results.unchanged.rsync);
  const c = churn(source, archive);
  console.log(`\nchurn: ${c.movedAlbums} albums moved, ${c.added} added (${mb(c.addedBytes)}), ${c.copied} copied (${mb(c.copiedBytes)}), ${c.touched} touched (${mb(c.touchedBytes)}), ${c.rewritten} rewritten (${mb(c.rewrittenBytes)})`);
  results.churn = { rsync: rsyncStep(source, rsyncRepo, '3', '2'), lb: lbStep(source, lbRepo, catalog) };
  printStep('3. backup after churn', results.churn.lb, results.churn.rsync);

  const newContent = c.addedBytes + c.rewrittenBytes;
  const changedContent = newContent + c.copiedBytes + c.touchedBytes;
  const l = results.churn.lb;
  const targets = [
    ['unchanged run <= 0.5x rsync time', results.unchanged.lb.seconds <= 0.5 * results.unchanged.rsync.seconds, `${(results.unchanged.lb.seconds / results.unchanged.rsync.seconds).toFixed(2)}x`],
    ['first run <= 1.0x rsync time', results.first.lb.seconds <= results.first.rsync.seconds, `${(results.first.lb.seconds / results.first.rsync.seconds).toFixed(2)}x`],
    ['after churn: transferred <= new content + 2%', l.transferred <= newContent * 1.02, `${mb(l.transferred)} vs new content ${mb(newContent)} (rsync sent ${mb(results.churn.rsync.transferred)})`],
    ['after churn: disk added <= new + changed content', l.diskAdded <= changedContent * 1.05 + 4096 * opts.dirs * 2, `${mb(l.diskAdded)} vs ${mb(changedContent)} (rsync added ${mb(results.churn.rsync.diskAdded)})`],
    ['after churn: no moved file re-read', l.read <= changedContent, `read ${mb(l.read)}; added+copied+touched+rewritten ${mb(changedContent)}`],
  ];
  console.log('\ntargets');
  for (const [name, ok, detail] of targets) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${name}: ${detail}`);
  if (opts.json) console.log(JSON.stringify({ opts, archive: { files: archive.files.length, bytes: archive.bytes }, churn: c, results }));
} finally {
  if (!opts.keep) rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}
