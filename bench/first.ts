// A first local backup, lb against `rsync -aH`, on a fresh tmpfs (the software's own
// cost, no disk) and on disk (where rsync runs followed by `sync`, so that both then hold
// durable data: lb syncs itself), side by side: alternating rounds, fresh destinations and
// a fresh catalog each round, medians. Wall time next to user and sys CPU of the process and
// every child it waited for (lb's agent; rsync's receiver and generator), from time(1).
//
//   npm run bench:first -- [--files 12000] [--bytes 4.8e8] [--dirs 120] [--rounds 5] [--dir DISK_DIR] [--keep] [--json]
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { LB, generate, mb, median, parseArgs, printTargets, ratio, timed, type Timed } from './archive.js';
import { diskDir, fsType, mountTmpfs, runBench, type Tmpfs } from './measure.js';

const opts = parseArgs(process.argv.slice(2), { files: 12000, bytes: 4.8e8, dirs: 120, rounds: 5, dir: '', keep: false, json: false });
const tools = ['lb', 'rsync'] as const;
type Tool = (typeof tools)[number];
type Place = 'tmpfs' | 'disk';

interface Measure {
  wall: number;
  user: number;
  sys: number;
  cpu: number;
  maxRssKb: number;
}

const measureOf = (r: Timed): Measure => ({ wall: r.seconds, user: r.user, sys: r.sys, cpu: r.user + r.sys, maxRssKb: r.maxRssKb });

/** One first backup into `dir` (emptied beforehand, outside the timing). */
async function firstBackup(tool: Tool, place: Place, source: string, dir: string): Promise<Measure> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir);
  spawnSync('sync');
  if (tool === 'lb') {
    // A first backup: an empty repository and an empty catalog (the catalog would vouch for every file's hash).
    return measureOf(await timed(process.execPath, [LB, 'backup', source, join(dir, 'repo'), '-q', '--catalog', join(dir, 'catalog.sqlite')]));
  }
  const args = ['-aH', source + '/', join(dir, 'copy') + '/'];
  return measureOf(place === 'disk' ? await timed('sh', ['-c', 'rsync "$@" && sync', 'rsync-then-sync', ...args]) : await timed('rsync', args));
}

function row(label: string, tool: string, m: Measure): string {
  const s = (n: number) => n.toFixed(2).padStart(8);
  return `  ${label.padEnd(8)}${tool.padEnd(7)}${s(m.wall)}${s(m.user)}${s(m.sys)}${s(m.cpu)}${`${Math.round(m.maxRssKb / 1024)} MB`.padStart(9)}`;
}

function medianOf(list: Measure[]): Measure {
  const of = (pick: (m: Measure) => number) => median(list.map(pick));
  return { wall: of((m) => m.wall), user: of((m) => m.user), sys: of((m) => m.sys), cpu: of((m) => m.cpu), maxRssKb: Math.max(...list.map((m) => m.maxRssKb)) };
}

await runBench('bench:first', async () => {
  const disk = diskDir(opts.dir);
  const diskType = fsType(disk);
  if (diskType === 'tmpfs') throw new Error(`${disk} is a tmpfs: give a directory on disk with --dir`);
  let tmpfs: Tmpfs | null = null;
  const work = mkdtempSync(join(disk, 'lb-bench-first-'));
  try {
    tmpfs = mountTmpfs(disk, 3 * opts.bytes + 2 ** 30);
    console.log(`lb first-backup bench: npm run bench:first -- ${process.argv.slice(2).join(' ')}`);
    console.log(`machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}; disk: ${work} (${diskType}); tmpfs: ${tmpfs.dir}`);
    const places: Record<Place, string> = { tmpfs: tmpfs.dir, disk: work };
    const archive = generate(join(places.tmpfs, 'photos'), opts);
    // The same archive on disk, byte for byte and with its times.
    const copy = spawnSync('cp', ['-a', join(places.tmpfs, 'photos'), join(places.disk, 'photos')], { encoding: 'utf8' });
    if (copy.status !== 0) throw new Error(`cp -a of the archive to disk failed: ${copy.stderr.trim()}`);
    console.log(`archive: ${archive.files.length} files, ${mb(archive.bytes)}, ${opts.dirs} albums, 5% duplicates; warm page cache, sync before each run`);
    console.log(`on disk rsync is timed as \`rsync -aH\` then \`sync\`; lb syncs itself. CPU: user/sys seconds of the process and its children`);

    const results: Record<Place, Record<Tool, Measure[]>> = { tmpfs: { lb: [], rsync: [] }, disk: { lb: [], rsync: [] } };
    for (let round = 0; round < opts.rounds; round++) {
      for (const place of ['tmpfs', 'disk'] as const) {
        for (const tool of round % 2 ? [...tools].reverse() : tools) {
          results[place][tool].push(await firstBackup(tool, place, join(places[place], 'photos'), join(places[place], `dest-${tool}`)));
        }
      }
    }

    const medians = {} as Record<Place, Record<Tool, Measure>>;
    for (const place of ['tmpfs', 'disk'] as const) {
      console.log(`\nfirst backup on ${place}${place === 'disk' ? ` (${diskType})` : ''}`);
      console.log(`  ${'round'.padEnd(8)}${'tool'.padEnd(7)}${'wall s'.padStart(8)}${'user s'.padStart(8)}${'sys s'.padStart(8)}${'CPU s'.padStart(8)}${'max RSS'.padStart(9)}`);
      for (let round = 0; round < opts.rounds; round++) for (const tool of tools) console.log(row(String(round + 1), tool, results[place][tool][round]!));
      medians[place] = { lb: medianOf(results[place].lb), rsync: medianOf(results[place].rsync) };
      for (const tool of tools) console.log(row('median', tool, medians[place][tool]));
      const m = medians[place];
      console.log(`  lb/rsync${place === 'disk' ? '+sync' : ''}: wall ${ratio(m.lb.wall, m.rsync.wall)}, CPU ${ratio(m.lb.cpu, m.rsync.cpu)}`);
    }

    const { tmpfs: t, disk: d } = medians;
    printTargets([
      ['tmpfs: lb wall <= 1.5x rsync -aH', t.lb.wall <= 1.5 * t.rsync.wall, ratio(t.lb.wall, t.rsync.wall)],
      ['tmpfs: lb CPU <= 2x rsync -aH', t.lb.cpu <= 2 * t.rsync.cpu, ratio(t.lb.cpu, t.rsync.cpu)],
      [`disk: lb wall <= 1.0x rsync -aH + sync`, d.lb.wall <= d.rsync.wall, ratio(d.lb.wall, d.rsync.wall)],
    ]);
    if (opts.json) console.log(JSON.stringify({ opts, disk: { dir: work, type: diskType }, archive: { files: archive.files.length, bytes: archive.bytes }, results, medians }));
  } finally {
    tmpfs?.unmount();
    if (!opts.keep) rmSync(work, { recursive: true, force: true });
    else console.log(`kept ${work} (the tmpfs is gone)`);
  }
});
