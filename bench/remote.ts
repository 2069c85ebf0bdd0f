// lb over SSH against rsync -e ssh, side by side in one run, to a real sshd on 127.0.0.1:
//   1. latency: a first backup of small files straight to sshd, then through a proxy adding 50 ms each way;
//   2. throughput: a first backup of the bench archive (1 GB), rsync followed by `sync` (the remote is
//      this machine), fresh destinations each round, alternating; CPU of the local processes (time(1))
//      and of the whole machine (/proc/stat, which sees the remote side too: sshd's session, rsync's
//      server, lb's agent; the rest of the machine as well, so it means something on an idle machine);
//   3. wire: the backup after the core benchmark's churn, lb against rsync --link-dest,
//      both through a byte-counting proxy so both are measured on the same wire.
//
//   npm run bench:remote -- [--files 30000] [--bytes 1e9] [--dirs 300] [--small 2000] [--delay 50] [--rounds 3] [--dir /tmp] [--keep]
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { startSshd, type Sshd } from '../test/sshd.js';
import { LB, churn, generate, mb, median, parseArgs, printTargets, ratio, rsyncStat, timed, type Timed } from './archive.js';
import { startLatencyProxy } from './latency-proxy.js';
import { childrenGone } from './measure.js';

const opts = parseArgs(process.argv.slice(2), { files: 30000, bytes: 1e9, dirs: 300, small: 2000, delay: 50, rounds: 3, dir: '/tmp', keep: false });

interface Run {
  seconds: number;
  /** Bytes on the wire, both directions, where measured. */
  wire?: number;
  /** CPU seconds (user+sys) of the local process and its children. */
  localCpu: number;
  /** CPU seconds (user+sys) of the whole machine, until the SSH session's processes had ended. */
  machineCpu: number;
}

function cpuOf(r: Timed): Pick<Run, 'localCpu' | 'machineCpu'> {
  return { localCpu: r.user + r.sys, machineCpu: r.machine.user + r.machine.sys };
}

/** Where a tool connects: sshd itself or a proxy in front of it. */
function sshCommand(sshd: Sshd, port: number): string {
  const ssh = join(sshd.home, '.ssh');
  return `ssh -p ${port} -i ${join(ssh, 'id_ed25519')} -o UserKnownHostsFile=${join(ssh, 'known_hosts')} -o StrictHostKeyChecking=yes -o BatchMode=yes`;
}

const sessionsEnded = (sshd: Sshd) => () => childrenGone(sshd.pid, 3000);

async function lbPush(sshd: Sshd, port: number, source: string, repo: string, catalog: string): Promise<Run> {
  const args = [LB, 'backup', source, `root@127.0.0.1:${repo}`, '--json', '--catalog', catalog, '--ssh-p', String(port)];
  const r = await timed(process.execPath, args, { ...process.env, ...sshd.env }, { settle: sessionsEnded(sshd) });
  const summary = JSON.parse(r.stdout) as { wire: { sent: number; received: number } };
  return { seconds: r.seconds, wire: summary.wire.sent + summary.wire.received, ...cpuOf(r) };
}

/** With `sync`: rsync then `sync` as one timed unit, the remote's writeback included (the remote is this machine). */
async function rsyncPush(sshd: Sshd, port: number, source: string, destination: string, options: { linkDest?: string; sync?: boolean } = {}): Promise<Run> {
  const args = ['-aH', '--stats', '-e', sshCommand(sshd, port), ...(options.linkDest ? [`--link-dest=${options.linkDest}`] : []), source + '/', `root@127.0.0.1:${destination}/`];
  const env = { ...process.env, HOME: sshd.home };
  const settle = { settle: sessionsEnded(sshd) };
  const r = options.sync ? await timed('sh', ['-c', 'rsync "$@" && sync', 'rsync-then-sync', ...args], env, settle) : await timed('rsync', args, env, settle);
  return { seconds: r.seconds, wire: rsyncStat(r.stdout, 'Total bytes sent') + rsyncStat(r.stdout, 'Total bytes received'), ...cpuOf(r) };
}

const work = mkdtempSync(join(opts.dir, 'lb-bench-remote-'));
const sshd = await startSshd();
// The proxies are other ports of the same host: the same host key is known for them.
const hostLine = (port: number) => `[127.0.0.1]:${port} ${sshd.hostKey}\n`;
try {
  console.log(`lb remote bench: npm run bench:remote -- ${process.argv.slice(2).join(' ')}`);
  console.log(`machine: ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}; OpenSSH sshd on 127.0.0.1, both tools with their default ciphers`);
  const catalog = (name: string) => join(work, `catalog-${name}.sqlite`);

  // Warm-up: the remote caches lb's agent by hash, as after a user's first run.
  const warm = join(work, 'warm');
  mkdirSync(warm);
  await lbPush(sshd, sshd.port, warm, join(work, 'warm-repo'), catalog('warm'));

  // 1. latency
  const small = join(work, 'small');
  generate(small, { files: opts.small, bytes: opts.small * 4000, dirs: Math.max(1, Math.round(opts.small / 50)) });
  const slow = await startLatencyProxy(sshd.port, opts.delay);
  appendFileSync(join(sshd.home, '.ssh', 'known_hosts'), hostLine(slow.port));
  const near = { lb: await lbPush(sshd, sshd.port, small, join(work, 'near-lb'), catalog('near')), rsync: await rsyncPush(sshd, sshd.port, small, join(work, 'near-rsync')) };
  const far = { lb: await lbPush(sshd, slow.port, small, join(work, 'far-lb'), catalog('far')), rsync: await rsyncPush(sshd, slow.port, small, join(work, 'far-rsync')) };
  await slow.close();
  console.log(`\n1. first backup of ${opts.small} small files (${mb(opts.small * 4000)}), then through ${opts.delay} ms each way`);
  console.log(`  ${'tool'.padEnd(7)}${'direct s'.padStart(10)}${`+${opts.delay}ms s`.padStart(11)}${'ratio'.padStart(8)}`);
  for (const tool of ['lb', 'rsync'] as const) {
    console.log(`  ${tool.padEnd(7)}${near[tool].seconds.toFixed(2).padStart(10)}${far[tool].seconds.toFixed(2).padStart(11)}${ratio(far[tool].seconds, near[tool].seconds).padStart(8)}`);
  }

  // 2. throughput
  const source = join(work, 'photos');
  const archive = generate(source, opts);
  const firsts: Record<'lb' | 'rsync', Run[]> = { lb: [], rsync: [] };
  console.log(`\n2. first backup of ${archive.files.length} files, ${mb(archive.bytes)}: ${opts.rounds} alternating rounds, fresh destinations`);
  console.log(`  CPU: user+sys seconds of the local processes (time(1)) and of the whole machine (/proc/stat, remote side included)`);
  console.log(`  ${'round'.padEnd(7)}${'tool'.padEnd(7)}${'wall s'.padStart(8)}${'MB/s'.padStart(9)}${'CPU local'.padStart(11)}${'machine'.padStart(9)}`);
  const row = (label: string, tool: string, r: Pick<Run, 'seconds' | 'localCpu' | 'machineCpu'>) =>
    console.log(`  ${label.padEnd(7)}${tool.padEnd(7)}${r.seconds.toFixed(2).padStart(8)}${(archive.bytes / 1e6 / r.seconds).toFixed(1).padStart(9)}${r.localCpu.toFixed(2).padStart(11)}${r.machineCpu.toFixed(2).padStart(9)}`);
  for (let round = 0; round < opts.rounds; round++) {
    // The last round's destinations stay: step 3 backs up on top of them.
    for (const stale of ['lb-repo', 'rsync-repo', 'catalog-main.sqlite']) rmSync(join(work, stale), { recursive: true, force: true });
    mkdirSync(join(work, 'rsync-repo'));
    spawnSync('sync');
    for (const tool of round % 2 ? (['rsync', 'lb'] as const) : (['lb', 'rsync'] as const)) {
      const r =
        tool === 'lb'
          ? await lbPush(sshd, sshd.port, source, join(work, 'lb-repo'), catalog('main'))
          : await rsyncPush(sshd, sshd.port, source, join(work, 'rsync-repo', '1'), { sync: true });
      firsts[tool].push(r);
      row(String(round + 1), tool, r);
    }
  }
  const medianRun = (runs: Run[]) => ({ seconds: median(runs.map((r) => r.seconds)), localCpu: median(runs.map((r) => r.localCpu)), machineCpu: median(runs.map((r) => r.machineCpu)) });
  const first = { lb: medianRun(firsts.lb), rsync: medianRun(firsts.rsync) };
  for (const tool of ['lb', 'rsync'] as const) row('median', tool, first[tool]);
  console.log(`  lb/rsync: throughput ${ratio(first.rsync.seconds, first.lb.seconds)}, machine CPU ${ratio(first.lb.machineCpu, first.rsync.machineCpu)} (rsync -aH -e ssh followed by sync)`);

  // 3. wire after churn, both through a counting proxy without delay
  const c = churn(source, archive);
  const newContent = c.addedBytes + c.rewrittenBytes;
  const meter = await startLatencyProxy(sshd.port, 0);
  appendFileSync(join(sshd.home, '.ssh', 'known_hosts'), hostLine(meter.port));
  const lbAfter = await lbPush(sshd, meter.port, source, join(work, 'lb-repo'), catalog('main'));
  const lbWire = meter.bytes.up + meter.bytes.down;
  const rsyncAfter = await rsyncPush(sshd, meter.port, source, join(work, 'rsync-repo', '2'), { linkDest: join(work, 'rsync-repo', '1') });
  const rsyncWire = meter.bytes.up + meter.bytes.down - lbWire;
  await meter.close();
  console.log(`\n3. backup after churn (${c.movedAlbums} albums moved; new content ${mb(newContent)}: ${c.added} added, ${c.rewritten} rewritten)`);
  console.log(`  lb      ${lbAfter.seconds.toFixed(2).padStart(8)} s  wire ${mb(lbWire)} (lb's own count ${mb(lbAfter.wire!)})`);
  console.log(`  rsync   ${rsyncAfter.seconds.toFixed(2).padStart(8)} s  wire ${mb(rsyncWire)} (rsync's own count ${mb(rsyncAfter.wire!)})`);

  printTargets([
    [`latency: +${opts.delay} ms each way costs lb <= 3x`, far.lb.seconds <= 3 * near.lb.seconds, ratio(far.lb.seconds, near.lb.seconds)],
    ['throughput: lb >= 0.8x rsync -aH -e ssh + sync (medians)', first.rsync.seconds / first.lb.seconds >= 0.8, ratio(first.rsync.seconds, first.lb.seconds)],
    ['wire after churn <= new content + 2%', lbWire <= newContent * 1.02, `${mb(lbWire)} vs ${mb(newContent)} (rsync --link-dest ${mb(rsyncWire)})`],
  ]);
} finally {
  sshd.stop();
  if (!opts.keep) rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
}
