// A real OpenSSH sshd on 127.0.0.1 for the remote tests: generated host and
// client keys, a test ssh home whose .ssh holds known_hosts and config.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Sshd {
  port: number;
  /** The sshd process: every session's processes descend from it. */
  pid: number;
  dir: string;
  /** lb's ssh home (LB_SSH_HOME in `env`): .ssh/id_ed25519 is authorized, .ssh/known_hosts knows the host key. */
  home: string;
  /** The host's public key line ("ssh-ed25519 AAAA..."). */
  hostKey: string;
  /** With `ownRemoteHome`: the remote side's home and working directory (so its ~/.cache/lb), instead of root's. */
  remoteHome?: string;
  env: Record<string, string>;
  stop(): void;
}

function keygen(path: string): string {
  const r = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'lb-test', '-f', path]);
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  return readFileSync(path + '.pub', 'utf8').trim().split(' ').slice(0, 2).join(' ');
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function sshdPath(): string {
  return ['/usr/sbin/sshd', '/usr/local/sbin/sshd'].find((p) => spawnSync('test', ['-x', p]).status === 0) ?? 'sshd';
}

export async function startSshd(options: { ownRemoteHome?: boolean } = {}): Promise<Sshd> {
  const dir = mkdtempSync(join(tmpdir(), 'lb-sshd-'));
  const remoteHome = options.ownRemoteHome ? join(dir, 'remote-home') : undefined;
  if (remoteHome) mkdirSync(remoteHome);
  const home = join(dir, 'home');
  mkdirSync(join(home, '.ssh'), { recursive: true, mode: 0o700 });
  const hostKey = keygen(join(dir, 'host_ed25519'));
  const clientKey = keygen(join(home, '.ssh', 'id_ed25519'));
  writeFileSync(join(dir, 'authorized_keys'), clientKey + '\n');
  chmodSync(join(dir, 'authorized_keys'), 0o600);
  const port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_ed25519')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'LogLevel ERROR',
      // The remote command runs from the test's own home: what it caches there cannot reach other tests or root's.
      ...(remoteHome ? [`ForceCommand cd ${remoteHome} && HOME=${remoteHome} exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"`] : []),
      '',
    ].join('\n'),
  );
  writeFileSync(join(home, '.ssh', 'known_hosts'), `[127.0.0.1]:${port} ${hostKey}\n`);
  mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege separation directory
  const child: ChildProcess = spawn(sshdPath(), ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  for (let i = 0; i < 100 && !(await listening(port)); i++) {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    pid: child.pid!,
    dir,
    home,
    hostKey,
    remoteHome,
    // lb looks for .ssh in the password database's home (root's, here), as OpenSSH does; the tests point it at theirs.
    env: { LB_SSH_HOME: home, SSH_AUTH_SOCK: '', XDG_STATE_HOME: join(dir, 'state') },
    stop: () => {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
