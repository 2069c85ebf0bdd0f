// What a user does with a repository once it holds snapshots, side by side with
// the tools they would otherwise use, in one run:
//   - `lb restore` of the newest snapshot against `cp -a` and `rsync -aH` of its
//     tree (each followed by `sync`: all then hold durable data), alternating rounds;
//   - `lb restore` from a repository over SSH (root@127.0.0.1, a real sshd started
//     here as bench/remote.ts does) against `rsync -aH -e ssh` of its tree, to local
//     disk, and the other way, to a target over SSH; with each side's CPU time;
//   - `lb verify --read-data` against `sha256sum` of the same objects, cold cache,
//     with the bytes each read from disk;
//   - `lb list` and `lb du` on a repository of 100 snapshots: time and peak memory.
//
//   npm run bench:repository -- [--files 10000] [--bytes 5e8] [--dirs 100] [--rounds 3] [--snapshots 100] [--dir /tmp] [--keep]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { startSshd } from '../test/sshd.js';
import { LB, churn, content, dropCaches, generate, mb, median, parseArgs, printTargets, ratio, timed, type Timed } from './archive.js';

const opts = parseArgs(process.argv.slice(2), { files: 10000, bytes: 5e8, dirs: 100, rounds: 3, snapshots: 100, dir: '/tmp', keep: false });

/** A step run under /usr/bin/time: wall seconds, peak RSS and the bytes it read from the block device (with a cold cache). */
interface Measured {
  seconds: number;
  maxRssKb: number;
  readBytes: number;
}

async function measured(command: string, args: string[]): Promise<Measured> {
  const r: Timed = await timed('/usr/bin/time', ['-f', '%I', command, ...args]);
  // The inner time prints the blocks read (512 bytes each) as the last line of the command's stderr.
  const blocks = Number(r.stderr.trim().split('\n').at(-1));
  return { seconds: r.seconds, maxRssKb: r.maxRssKb, readBytes: blocks * 512 };
}

interface Cpu {
  seconds: number;
  /** User+sys seconds of the command and its children (ssh for rsync). */
  local: number;
  /** User+sys seconds of sshd's children meanwhile (the session, rsync's server) and of lb's agent. */
  remote: number;
}

/** Children's CPU seconds of a process, as far as they have been waited for. */
function childrenCpu(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100; // cutime, cstime, in clock ticks
}

async function cpuTimed(command: string, args: string[], env: NodeJS.ProcessEnv, sshdPid: number, agentCpu: string): Promise<Cpu> {
  const before = childrenCpu(sshdPid);
  const r = await timed('/usr/bin/time', ['-f', '%U %S', command, ...args], env);
  spawnSync('sleep', ['0.5']); // sshd waits for its session, and time(1) for lb's agent, once the connection has closed
  const sum = (line: string) => line.split(' ').reduce((total, n) => total + Number(n), 0);
  const agent = existsSync(agentCpu) ? readFileSync(agentCpu, 'utf8').trim().split('\n').reduce((total, line) => total + sum(line), 0) : 0;
  rmSync(agentCpu, { force: true });
  return { seconds: r.seconds, local: sum(r.stderr.trim().split('\n').at(-1)!), remote: childrenCpu(sshdPid) - before + agent };
}

function syncSeconds(): number {
  const started = process.hrtime.bigint();
  spawnSync('sync');
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function lbJson(args: string[]): unknown {
  const r = spawnSync(process.execPath, [LB, ...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.status !== 0 && r.status !== 3) throw new Error(`lb ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const work = mkdtempSync(join(opts.dir, 'lb-bench-repo-'));
try {
  console.log(`lb repository bench: npm run bench:repository -- ${process.argv.slice(2).join(' ')}`);
  console.log(`machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
  const source = join(work, 'photos');
  const repo = join(work, 'repo');
  const catalog = join(work, 'catalog.sqlite');
  const archive = generate(source, opts);
  lbJson(['backup', source, repo, '--catalog', catalog]);
  churn(source, archive);
  lbJson(['backup', source, repo, '--catalog', catalog]);
  mkdirSync(join(source, 'new album'));
  for (let i = 0; i < 50; i++) writeFileSync(join(source, 'new album', `IMG_${i}.JPG`), content(200_000));
  const last = lbJson(['backup', source, repo, '--catalog', catalog]) as { snapshot: string };
  const storeBytes = Number(spawnSync('du', ['-s', '-b', join(repo, '.lb', 'objects')], { encoding: 'utf8' }).stdout.split('\t')[0]);
  console.log(`archive: ${archive.files.length} files, ${mb(archive.bytes)}; 3 snapshots; store ${mb(storeBytes)}`);

  // ---- restore ----
  const tree = join(repo, 'latest', 'tree');
  const restores: Record<'lb' | 'cp' | 'rsync', number[]> = { lb: [], cp: [], rsync: [] };
  for (let round = 0; round < opts.rounds; round++) {
    for (const tool of ['lb', 'cp', 'rsync'] as const) {
      const target = join(work, `restore-${tool}`);
      rmSync(target, { recursive: true, force: true });
      spawnSync('sync');
      const command: [string, string[]] =
        tool === 'lb' ? [process.execPath, [LB, 'restore', repo, last.snapshot, target]] : tool === 'cp' ? ['cp', ['-a', tree, target]] : ['rsync', ['-aH', tree + '/', target + '/']];
      const r = await timed(...command);
      restores[tool].push(r.seconds + syncSeconds());
      rmSync(target, { recursive: true, force: true });
    }
  }
  const restore = { lb: median(restores.lb), cp: median(restores.cp), rsync: median(restores.rsync) };
  console.log(`\n1. restore of the newest snapshot (median of ${opts.rounds} alternating rounds, each followed by sync)`);
  for (const [tool, seconds] of Object.entries(restore)) console.log(`  ${tool.padEnd(6)}${seconds.toFixed(2).padStart(8)} s`);
  console.log(`  lb/cp -a: ${ratio(restore.lb, restore.cp)}; lb/rsync -aH: ${ratio(restore.lb, restore.rsync)}`);

  // ---- restore over SSH, both ways ----
  const sshd = await startSshd();
  type Direction = 'from' | 'to';
  const remoteRuns: Record<`${Direction} ${'lb' | 'rsync'}`, Cpu[]> = { 'from lb': [], 'from rsync': [], 'to lb': [], 'to rsync': [] };
  try {
    const ssh = join(sshd.home, '.ssh');
    const sshCommand = `ssh -p ${sshd.port} -i ${join(ssh, 'id_ed25519')} -o UserKnownHostsFile=${join(ssh, 'known_hosts')} -o StrictHostKeyChecking=yes -o BatchMode=yes`;
    const env = { ...process.env, ...sshd.env, HOME: sshd.home };
    // lb's agent outlives its SSH session by a moment, so sshd never waits for it: its node runs under time(1).
    const remoteNode = join(work, 'remote-node');
    writeFileSync(remoteNode, `#!/bin/sh\nexec /usr/bin/time -a -o ${join(work, 'agent-cpu')} -f '%U %S' node "$@"\n`, { mode: 0o755 });
    const port = ['--ssh-p', String(sshd.port), '--remote-node', remoteNode];
    // Warm-up: the remote caches lb's agent by hash, as after a user's first run.
    await timed(process.execPath, [LB, 'restore', `root@127.0.0.1:${repo}`, last.snapshot, join(work, 'restore-warm'), '--dry-run', ...port], env);
    for (let round = 0; round < opts.rounds; round++) {
      for (const direction of ['from', 'to'] as const) {
        for (const tool of ['lb', 'rsync'] as const) {
          const target = join(work, `remote-restore-${tool}`);
          rmSync(target, { recursive: true, force: true });
          spawnSync('sync');
          const there = `root@127.0.0.1:${target}`;
          const command: [string, string[]] =
            tool === 'lb'
              ? [process.execPath, [LB, 'restore', ...(direction === 'from' ? [`root@127.0.0.1:${repo}`, last.snapshot, target] : [repo, last.snapshot, there]), ...port]]
              : ['rsync', ['-aH', '-e', sshCommand, ...(direction === 'from' ? [`root@127.0.0.1:${tree}/`, target + '/'] : [tree + '/', there + '/'])]];
          const r = await cpuTimed(command[0], command[1], env, sshd.pid, join(work, 'agent-cpu'));
          remoteRuns[`${direction} ${tool}`].push({ ...r, seconds: r.seconds + syncSeconds() });
          rmSync(target, { recursive: true, force: true });
        }
      }
    }
  } finally {
    sshd.stop();
  }
  const remoteRestore = { lb: median(remoteRuns['from lb'].map((r) => r.seconds)), rsync: median(remoteRuns['from rsync'].map((r) => r.seconds)) };
  const toRemote = { lb: median(remoteRuns['to lb'].map((r) => r.seconds)), rsync: median(remoteRuns['to rsync'].map((r) => r.seconds)) };
  console.log(`\n   over SSH (root@127.0.0.1), same rounds: median wall (each followed by sync); CPU user+sys of the local process and its children, and of the remote's (sshd's session, rsync's server or lb's agent)`);
  for (const [run, list] of Object.entries(remoteRuns)) {
    const cpu = (pick: (c: Cpu) => number) => median(list.map(pick)).toFixed(2).padStart(6);
    console.log(`  ${run.padEnd(12)}${median(list.map((r) => r.seconds)).toFixed(2).padStart(8)} s   CPU here ${cpu((c) => c.local)} s, there ${cpu((c) => c.remote)} s`);
  }
  console.log(`  lb/rsync -aH -e ssh: from a remote repository ${ratio(remoteRestore.lb, remoteRestore.rsync)}; to a remote target ${ratio(toRemote.lb, toRemote.rsync)}`);

  // ---- verify --read-data ----
  const cold = dropCaches();
  const verify = await measured(process.execPath, [LB, 'verify', repo, '--read-data']);
  dropCaches();
  const sha = await measured('sh', ['-c', `find '${join(repo, '.lb', 'objects')}' -type f -print0 | xargs -0 sha256sum > /dev/null`]);
  console.log(`\n2. re-hashing every object${cold ? ', cold cache' : ' (warm cache: not root, bytes read are not measured)'}`);
  for (const [tool, m] of [['lb verify --read-data', verify], ['sha256sum', sha]] as const) {
    console.log(`  ${tool.padEnd(22)}${m.seconds.toFixed(2).padStart(8)} s  read ${mb(m.readBytes).padStart(10)}  max RSS ${Math.round(m.maxRssKb / 1024)} MB`);
  }
  console.log(`  lb/sha256sum: ${ratio(verify.seconds, sha.seconds)}; store ${mb(storeBytes)}`);

  // ---- list and du on many snapshots ----
  const small = join(work, 'small');
  const manyRepo = join(work, 'many');
  mkdirSync(small);
  for (let i = 0; i < 2000; i++) writeFileSync(join(small, `f${i}`), content(2048));
  for (let n = 0; n < opts.snapshots; n++) {
    // A few files changed a day: each snapshot holds a little of its own.
    for (let k = 0; k < 10; k++) writeFileSync(join(small, `f${(n * 10 + k) % 2000}`), content(2048));
    utimesSync(small, 1e9 + n, 1e9 + n);
    lbJson(['backup', small, manyRepo, '--catalog', catalog]);
  }
  const lists: Measured[] = [];
  const dus: Measured[] = [];
  for (let round = 0; round < opts.rounds; round++) {
    lists.push(await measured(process.execPath, [LB, 'list', manyRepo]));
    dus.push(await measured(process.execPath, [LB, 'du', manyRepo]));
  }
  const snapshots = (lbJson(['list', manyRepo]) as unknown[]).length;
  const list = { seconds: median(lists.map((m) => m.seconds)), rss: Math.max(...lists.map((m) => m.maxRssKb)) };
  const du = { seconds: median(dus.map((m) => m.seconds)), rss: Math.max(...dus.map((m) => m.maxRssKb)) };
  console.log(`\n3. a repository of ${snapshots} snapshots of 2,000 files (median of ${opts.rounds}, warm cache)`);
  console.log(`  lb list ${list.seconds.toFixed(2).padStart(8)} s  max RSS ${Math.round(list.rss / 1024)} MB`);
  console.log(`  lb du   ${du.seconds.toFixed(2).padStart(8)} s  max RSS ${Math.round(du.rss / 1024)} MB`);

  printTargets([
    ['restore at least as fast as rsync -aH', restore.lb <= restore.rsync, ratio(restore.lb, restore.rsync)],
    ['restore over SSH at least as fast as rsync -aH -e ssh', remoteRestore.lb <= remoteRestore.rsync, ratio(remoteRestore.lb, remoteRestore.rsync)],
    ['restore to a remote target at least as fast as rsync -aH -e ssh', toRemote.lb <= toRemote.rsync, ratio(toRemote.lb, toRemote.rsync)],
    ['verify --read-data reads each object once', !cold || verify.readBytes <= storeBytes * 1.1 + 64e6, `${mb(verify.readBytes)} read, store ${mb(storeBytes)}`],
    [`lb list of ${snapshots} snapshots well under a second`, list.seconds < 0.5, `${list.seconds.toFixed(2)} s`],
  ]);
} finally {
  if (!opts.keep) rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}
