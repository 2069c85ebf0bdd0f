// Push and pull over a real OpenSSH sshd on 127.0.0.1, with rsync as the oracle.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LB, lb, mountOrSkip, rsyncDifferences, tempDir, umount } from './helpers.js';
import { startSshd, type Sshd } from './sshd.js';

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(() => sshd?.stop());

function photoTree(root: string): void {
  mkdirSync(join(root, '2019', 'holiday'), { recursive: true });
  mkdirSync(join(root, 'empty'));
  for (let i = 0; i < 20; i++) writeFileSync(join(root, '2019', 'holiday', `IMG_${i}.jpg`), randomBytes(5000 + i * 100));
  writeFileSync(Buffer.from(join(root, 'caf\xe9'), 'latin1'), 'latin-1 name');
  symlinkSync('2019/holiday/IMG_1.jpg', join(root, 'favourite'));
  utimesSync(join(root, '2019', 'holiday', 'IMG_0.jpg'), 1_500_000_000, 1_500_000_000);
}

function remoteLb(args: string[], env: Record<string, string> = {}) {
  return lb([...args, '--ssh-p', String(sshd.port)], { ...sshd.env, ...env });
}

describe('lb over SSH', () => {
  it('pushes a backup to the remote and pulls one from it, both faithful to the source', () => {
    const work = tempDir();
    const source = join(work, 'photos');
    mkdirSync(source);
    photoTree(source);
    const pushed = remoteLb(['backup', source, `root@127.0.0.1:${join(work, 'pushed')}`, '--json']);
    expect(pushed.stderr).toBe('');
    expect(pushed.status).toBe(0);
    const summary = JSON.parse(pushed.stdout);
    expect(summary.files.new).toBeGreaterThan(0);
    expect(summary.wire.sent).toBeGreaterThan(summary.bytes.transferred);
    expect(rsyncDifferences(source, join(work, 'pushed', 'latest', 'tree'))).toEqual([]);

    const pulled = remoteLb(['backup', `root@127.0.0.1:${source}`, join(work, 'pulled'), '--json']);
    expect(pulled.status).toBe(0);
    expect(rsyncDifferences(source, join(work, 'pulled', 'latest', 'tree'))).toEqual([]);
    const again = remoteLb(['backup', `root@127.0.0.1:${source}`, join(work, 'pulled'), '--json']);
    expect(JSON.parse(again.stdout).created).toBe(false);
  });

  it('says in one line when the remote repository is on a read-only filesystem', (ctx) => {
    const work = tempDir();
    const source = join(work, 'photos');
    mkdirSync(source);
    photoTree(source);
    const mnt = join(work, 'ro');
    mountOrSkip(ctx, ['-t', 'tmpfs', '-o', 'size=1m,ro', 'tmpfs'], mnt);
    try {
      const r = remoteLb(['backup', source, `root@127.0.0.1:${join(mnt, 'photos')}`]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/^lb: the repository is on a read-only filesystem; remount it read-write and run again .*\n$/);
    } finally {
      umount(mnt);
    }
  });

  it('honours --minutes when pulling: the remote source stops at the budget, no snapshot, the next run completes', () => {
    const work = tempDir();
    const source = join(work, 'photos');
    mkdirSync(source);
    photoTree(source);
    const repo = join(work, 'pulled');
    // A budget already spent when the remote walk begins: nothing may be sent.
    const spent = remoteLb(['backup', `root@127.0.0.1:${source}`, repo, '--minutes', '0.0000001', '--json']);
    expect(spent.status, spent.stderr).toBe(4);
    const summary = JSON.parse(spent.stdout);
    expect([summary.status, summary.snapshot, summary.bytes.transferred]).toEqual(['incomplete', null, 0]);
    expect(existsSync(join(repo, 'latest'))).toBe(false);
    const complete = remoteLb(['backup', `root@127.0.0.1:${source}`, repo, '--minutes', '10', '--json']);
    expect(complete.status, complete.stderr).toBe(0);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('follows a ~/.ssh/config alias, with --ssh-C, and a hashed known_hosts', () => {
    const work = tempDir();
    const source = join(work, 'photos');
    mkdirSync(source);
    photoTree(source);
    const home = join(work, 'home');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    spawnSync('cp', [join(sshd.home, '.ssh', 'id_ed25519'), join(home, '.ssh', 'backup_key')]);
    writeFileSync(join(home, '.ssh', 'config'), `Host backupbox\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User root\n  IdentityFile ~/.ssh/backup_key\n  IdentitiesOnly yes\n`);
    writeFileSync(join(home, '.ssh', 'known_hosts'), `[127.0.0.1]:${sshd.port} ${sshd.hostKey}\n`);
    // ssh-keygen -H hashes the host names: an independent check of the |1| format.
    expect(spawnSync('ssh-keygen', ['-H', '-f', join(home, '.ssh', 'known_hosts')]).status).toBe(0);
    expect(readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8')).toMatch(/^\|1\|/);
    const r = lb(['backup', source, `backupbox:${join(work, 'repo')}`, '--ssh-C'], { ...sshd.env, LB_SSH_HOME: home });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/on the wire: .* sent/);
    expect(rsyncDifferences(source, join(work, 'repo', 'latest', 'tree'))).toEqual([]);
  });

  it('refuses an unknown host key before sending anything, and records it when told to', () => {
    const work = tempDir();
    const source = join(work, 'photos');
    mkdirSync(source);
    writeFileSync(join(source, 'f'), 'x');
    const home = join(work, 'home');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    spawnSync('cp', [join(sshd.home, '.ssh', 'id_ed25519'), join(home, '.ssh', 'id_ed25519')]);
    const target = `root@127.0.0.1:${join(work, 'repo')}`;
    const refused = remoteLb(['backup', source, target], { LB_SSH_HOME: home });
    expect(refused.status).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/host key of \[127\.0\.0\.1\]:\d+ is not known \(ssh-ed25519 key SHA256:[A-Za-z0-9+/]{43}\).*--accept-new-host-key/);
    // The fingerprint is the one ssh-keygen computes: an independent check.
    const expected = spawnSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(sshd.dir, 'host_ed25519.pub')], { encoding: 'utf8' }).stdout.split(' ')[1]!;
    expect(refused.stderr).toContain(expected);
    expect(existsSync(join(work, 'repo'))).toBe(false);

    const accepted = remoteLb(['backup', source, target, '--accept-new-host-key'], { LB_SSH_HOME: home });
    expect(accepted.status).toBe(0);
    expect(accepted.stderr).toMatch(/recorded new host key/);
    expect(readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8')).toContain(sshd.hostKey);
    expect(remoteLb(['backup', source, target, '--always'], { LB_SSH_HOME: home }).status).toBe(0);
  });

  it('refuses a changed host key loudly, even with --accept-new-host-key, and writes nothing', () => {
    const work = tempDir();
    const home = join(work, 'home');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    spawnSync('cp', [join(sshd.home, '.ssh', 'id_ed25519'), join(home, '.ssh', 'id_ed25519')]);
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'impostor')]);
    const impostor = readFileSync(join(work, 'impostor.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(join(home, '.ssh', 'known_hosts'), `[127.0.0.1]:${sshd.port} ${impostor}\n`);
    mkdirSync(join(work, 'src'));
    const r = remoteLb(['backup', join(work, 'src'), `root@127.0.0.1:${join(work, 'repo')}`, '--accept-new-host-key'], { LB_SSH_HOME: home });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/host key of \[127\.0\.0\.1\]:\d+ has CHANGED.*ssh-keygen -R/);
    expect(existsSync(join(work, 'repo'))).toBe(false);
  });

  it('says clearly when the key is refused, the port is closed, the name is unknown or node is missing', () => {
    const work = tempDir();
    mkdirSync(join(work, 'src'));
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(work, 'stranger')]);
    const home = join(work, 'home');
    mkdirSync(join(home, '.ssh'), { recursive: true });
    appendFileSync(join(home, '.ssh', 'known_hosts'), `[127.0.0.1]:${sshd.port} ${sshd.hostKey}\n`);
    // The authorized key is there too, but as with ssh, naming a key leaves the default ones out.
    spawnSync('cp', [join(sshd.home, '.ssh', 'id_ed25519'), join(home, '.ssh', 'id_ed25519')]);
    const target = `root@127.0.0.1:${join(work, 'repo')}`;

    const wrongKey = remoteLb(['backup', join(work, 'src'), target, '--ssh-i', join(work, 'stranger')], { LB_SSH_HOME: home });
    expect(wrongKey.status).toBe(1);
    expect(wrongKey.stderr).toMatch(/^lb: root@\[127\.0\.0\.1\]:\d+ refused authentication/);

    const closed = lb(['backup', join(work, 'src'), target, '--ssh-p', '1'], sshd.env);
    expect(closed.status).toBe(1);
    expect(closed.stderr).toBe('lb: cannot connect to 127.0.0.1 port 1: connection refused\n');

    const unknown = lb(['backup', join(work, 'src'), 'root@no-such-host.invalid:/x'], sshd.env);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toBe('lb: unknown host name no-such-host.invalid\n');

    const noNode = remoteLb(['backup', join(work, 'src'), target, '--remote-node', '/nonexistent/node']);
    expect(noNode.status).toBe(1);
    expect(noNode.stderr).toMatch(/has no '\/nonexistent\/node' to run lb's agent: install Node\.js >= 18/);
    expect(existsSync(join(work, 'repo'))).toBe(false);

    const both = lb(['backup', 'a:/x', 'b:/y']);
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/cannot both be remote/);
  });
});

/** An ssh home (LB_SSH_HOME) that knows the test host key and holds `keys` (name → private key file to copy). */
function homeWith(work: string, keys: Record<string, string> = {}, config = ''): string {
  const home = join(work, 'home');
  mkdirSync(join(home, '.ssh'), { recursive: true });
  writeFileSync(join(home, '.ssh', 'known_hosts'), `[127.0.0.1]:${sshd.port} ${sshd.hostKey}\n`);
  for (const [name, file] of Object.entries(keys)) spawnSync('cp', [file, join(home, '.ssh', name)]);
  if (config) writeFileSync(join(home, '.ssh', 'config'), config);
  return home;
}

/** A copy of the authorized client key, encrypted with `passphrase` by ssh-keygen. */
function encryptedKey(work: string, passphrase: string): string {
  const key = join(work, 'encrypted_key');
  spawnSync('cp', [join(sshd.home, '.ssh', 'id_ed25519'), key]);
  expect(spawnSync('ssh-keygen', ['-q', '-p', '-N', passphrase, '-P', '', '-f', key]).status).toBe(0);
  return key;
}

describe('lb over SSH: authentication and reaching the host', () => {
  it('authenticates through a running ssh-agent when the ssh home holds no key', () => {
    const work = tempDir();
    mkdirSync(join(work, 'src'));
    writeFileSync(join(work, 'src', 'f'), 'agent');
    const home = homeWith(work);
    const socket = join(work, 'agent.sock');
    const agent = spawnSync('ssh-agent', ['-a', socket], { encoding: 'utf8' });
    expect(agent.status).toBe(0);
    const pid = /SSH_AGENT_PID=(\d+)/.exec(agent.stdout)![1]!;
    try {
      expect(spawnSync('ssh-add', ['-q', join(sshd.home, '.ssh', 'id_ed25519')], { env: { ...process.env, SSH_AUTH_SOCK: socket } }).status).toBe(0);
      const r = remoteLb(['backup', join(work, 'src'), `root@127.0.0.1:${join(work, 'repo')}`], { LB_SSH_HOME: home, SSH_AUTH_SOCK: socket });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(readFileSync(join(work, 'repo', 'latest', 'tree', 'f'), 'utf8')).toBe('agent');
    } finally {
      process.kill(Number(pid));
    }
  });

  it('asks for an encrypted key passphrase on the terminal, and fails in one line without one (cron)', () => {
    const work = tempDir();
    mkdirSync(join(work, 'src'));
    writeFileSync(join(work, 'src', 'f'), 'secret');
    const home = homeWith(work, { id_ed25519: encryptedKey(work, 'open sesame') });
    const target = `root@127.0.0.1:${join(work, 'repo')}`;
    const env = { ...process.env, ...sshd.env, LB_SSH_HOME: home };

    // setsid: no controlling terminal, as under cron.
    const cron = spawnSync('setsid', ['-w', process.execPath, LB, 'backup', join(work, 'src'), target, '--ssh-p', String(sshd.port)], { encoding: 'utf8', env });
    expect(cron.status).toBe(1);
    expect(cron.stderr.trim().split('\n')).toHaveLength(1);
    expect(cron.stderr).toMatch(/refused authentication .*id_ed25519 is encrypted and there is no terminal to ask for its passphrase/);
    expect(existsSync(join(work, 'repo'))).toBe(false);

    // script(1) gives lb a real pseudo-terminal; the passphrase is typed on it.
    const command = [process.execPath, LB, 'backup', join(work, 'src'), target, '--ssh-p', String(sshd.port), '--no-progress'].map((w) => `'${w}'`).join(' ');
    const typed = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', env, input: 'open sesame\n' });
    expect(typed.stdout).toMatch(/Enter passphrase for key '.*id_ed25519'/);
    expect(typed.status).toBe(0);
    expect(readFileSync(join(work, 'repo', 'latest', 'tree', 'f'), 'utf8')).toBe('secret');
  });

  it('reaches the host through a ProxyJump hop named in the config', () => {
    const work = tempDir();
    const source = join(work, 'photos');
    mkdirSync(source);
    photoTree(source);
    const key = join(sshd.home, '.ssh', 'id_ed25519');
    const home = homeWith(
      work,
      { id_ed25519: key },
      `Host bastion\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User root\n\nHost behind\n  HostName 127.0.0.1\n  Port ${sshd.port}\n  User root\n  ProxyJump bastion\n`,
    );
    const r = lb(['backup', source, `behind:${join(work, 'repo')}`, '--json'], { ...sshd.env, LB_SSH_HOME: home });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(rsyncDifferences(source, join(work, 'repo', 'latest', 'tree'))).toEqual([]);
  });

  it('gives up on a host that never answers after ConnectTimeout, in one line', async () => {
    const work = tempDir();
    mkdirSync(join(work, 'src'));
    // A listener that says nothing (the kernel completes the TCP handshake even while lb runs synchronously).
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const home = homeWith(work, {}, `Host mute\n  HostName 127.0.0.1\n  Port ${port}\n  ConnectTimeout 1\n`);
      const started = Date.now();
      const r = lb(['backup', join(work, 'src'), `mute:${join(work, 'repo')}`], { ...sshd.env, LB_SSH_HOME: home });
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`lb: timed out waiting for the SSH handshake with [127.0.0.1]:${port}\n`);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(existsSync(join(work, 'repo'))).toBe(false);
    } finally {
      silent.close();
    }
  });

  it('refuses a remote node older than 18 and names its version', () => {
    const work = tempDir();
    mkdirSync(join(work, 'src'));
    // Stands in for an old install: answers the version probe as Node 16 would.
    const oldNode = join(work, 'node16');
    writeFileSync(oldNode, '#!/bin/sh\nprintf 16.20.2\n', { mode: 0o755 });
    const r = remoteLb(['backup', join(work, 'src'), `root@127.0.0.1:${join(work, 'repo')}`, '--remote-node', oldNode]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/has Node\.js 16\.20\.2; lb's agent needs 18 or newer/);
    expect(existsSync(join(work, 'repo'))).toBe(false);
  });
});
