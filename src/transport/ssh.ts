// Reaching a remote agent over SSH (ssh2), behaving as OpenSSH does for the
// user: ~/.ssh/config (Host patterns, HostName, User, Port, IdentityFile,
// IdentitiesOnly, ProxyJump), ssh-agent then identity files, known_hosts
// checked before anything is sent. The agent bundle is pushed once and cached
// on the remote under its content hash, then run with the remote's node.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { connect as tcpConnect, type Socket } from 'node:net';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { ReadStream as TtyReadStream } from 'node:tty';
import SSHConfig from 'ssh-config';
import type { AnyAuthMethod, Client, ClientChannel, ConnectConfig } from 'ssh2';
import { checkHostKey, fingerprint, hostField, keyTypeOf, recordHostKey } from './known-hosts.js';
import { agentBundlePath, type AgentConnection } from './local.js';

export interface SshOptions {
  /** --ssh-i: an identity file tried before the configured ones. */
  identityFile?: string;
  /** --ssh-p: overrides the configured port. */
  port?: number;
  /** --ssh-C */
  compress?: boolean;
  acceptNewHostKey?: boolean;
  /** The remote's node executable (--remote-node), `node` from PATH by default. */
  remoteNode?: string;
  onNotice?: (line: string) => void;
}

export class SshError extends Error {}

export interface SshTarget {
  /** The name as given (a config alias, perhaps). */
  alias: string;
  host: string;
  port: number;
  user: string;
  identityFiles: string[];
  identitiesOnly: boolean;
  proxyJump: string | null;
  /** ConnectTimeout from the config, for both the TCP connection and the SSH handshake. */
  connectTimeoutMs: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;
const KEEPALIVE_MS = 15_000;
const MIN_REMOTE_NODE = 18;

/**
 * The home whose .ssh lb reads, as OpenSSH finds it: the password database's, not $HOME (which
 * sudo or a cron environment may set to someone else's); LB_SSH_HOME names another on purpose.
 */
function sshHome(): string {
  if (process.env.LB_SSH_HOME) return process.env.LB_SSH_HOME;
  try {
    return userInfo().homedir;
  } catch {
    return homedir(); // a uid without a password entry (some containers): $HOME is all there is
  }
}

function sshDir(): string {
  return join(sshHome(), '.ssh');
}

function expandHome(path: string): string {
  return path.startsWith('~/') ? join(sshHome(), path.slice(2)) : path;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** What ~/.ssh/config and the command line say about reaching `alias`. */
export function resolveTarget(alias: string, user: string | undefined, options: SshOptions): SshTarget {
  const configPath = join(sshDir(), 'config');
  const computed = existsSync(configPath) ? SSHConfig.parse(readFileSync(configPath, 'utf8')).compute(alias) : {};
  const configured = computed.IdentityFile;
  const identityFiles = [
    ...(options.identityFile ? [options.identityFile] : []),
    ...(configured ? (Array.isArray(configured) ? configured : [configured]) : []),
  ].map(expandHome);
  // As ssh: the default keys only when neither the command line nor the config names one.
  if (identityFiles.length === 0) {
    for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
      const path = join(sshDir(), name);
      if (existsSync(path)) identityFiles.push(path);
    }
  }
  const port = options.port ?? Number(first(computed.Port) ?? 22);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new SshError(`invalid port ${port} for ${alias}`);
  const proxyJump = first(computed.ProxyJump);
  const connectTimeout = Number(first(computed.ConnectTimeout));
  return {
    alias,
    host: first(computed.HostName) ?? alias,
    port,
    user: user ?? first(computed.User) ?? process.env.USER ?? 'root',
    identityFiles,
    identitiesOnly: first(computed.IdentitiesOnly)?.toLowerCase() === 'yes',
    proxyJump: proxyJump && proxyJump.toLowerCase() !== 'none' ? proxyJump : null,
    connectTimeoutMs: connectTimeout > 0 ? connectTimeout * 1000 : DEFAULT_CONNECT_TIMEOUT_MS,
  };
}

/** Ask for a passphrase on the controlling terminal, without echo; null when there is none (cron). */
function askPassphrase(prompt: string): Promise<string | null> {
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r+');
  } catch {
    return Promise.resolve(null);
  }
  writeSync(fd, prompt);
  const input = new TtyReadStream(fd);
  input.setRawMode(true);
  return new Promise((resolve) => {
    let text = '';
    const done = (value: string | null) => {
      input.setRawMode(false);
      input.removeAllListeners('data');
      input.destroy();
      try {
        writeSync(fd, '\n');
        closeSync(fd);
      } catch {
        // the stream closed it already
      }
      resolve(value);
    };
    input.on('data', (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(text);
        if (ch === '\u0003' || ch === '\u0004') return done(null);
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    });
  });
}

/** ssh2 is CommonJS and only needed for remote runs: loaded then, not at every start. */
async function loadSsh2(): Promise<typeof import('ssh2')> {
  return (await import('ssh2')).default;
}

/** The authentication methods to try, in OpenSSH's order: agent, then identity files. */
async function authMethods(target: SshTarget, skipped: string[]): Promise<AnyAuthMethod[]> {
  const { utils } = await loadSsh2();
  const methods: AnyAuthMethod[] = [];
  const agent = process.env.SSH_AUTH_SOCK;
  if (agent && !target.identitiesOnly) methods.push({ type: 'agent', username: target.user, agent });
  for (const file of target.identityFiles) {
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch {
      continue; // a configured key that does not exist is skipped, as ssh does
    }
    let parsed = utils.parseKey(data);
    if (parsed instanceof Error && /passphrase/i.test(parsed.message)) {
      const passphrase = await askPassphrase(`Enter passphrase for key '${file}': `);
      if (passphrase === null) {
        skipped.push(`${file} is encrypted and there is no terminal to ask for its passphrase (use ssh-agent)`);
        continue;
      }
      parsed = utils.parseKey(data, passphrase);
      if (parsed instanceof Error) {
        skipped.push(`wrong passphrase for ${file}`);
        continue;
      }
    }
    if (parsed instanceof Error) {
      skipped.push(`${file}: ${parsed.message}`);
      continue;
    }
    methods.push({ type: 'publickey', username: target.user, key: Array.isArray(parsed) ? parsed[0]! : parsed });
  }
  return methods;
}

function tcpSocket(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    // No Nagle: ssh2 writes a packet's length, body and MAC apart, and a window adjust held back
    // until the peer's delayed ACK stalls a bulk transfer from the remote (~20 ms per MB received).
    const socket = tcpConnect({ host, port, noDelay: true });
    socket.setTimeout(timeoutMs);
    socket.once('connect', () => {
      socket.setTimeout(0);
      resolve(socket);
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new SshError(`timed out connecting to ${host} port ${port}`));
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      const where = `${host} port ${port}`;
      if (error.code === 'ECONNREFUSED') reject(new SshError(`cannot connect to ${where}: connection refused`));
      else if (error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN') reject(new SshError(`unknown host name ${host}`));
      else if (error.code === 'EHOSTUNREACH' || error.code === 'ENETUNREACH') reject(new SshError(`cannot reach ${where}: no route`));
      else reject(new SshError(`cannot connect to ${where}: ${error.message}`));
    });
  });
}

/** An authenticated connection, through ProxyJump hosts where the config names them. */
export interface SshSession {
  client: Client;
  target: SshTarget;
  /** The TCP socket to the first hop: its byte counts are what crossed the wire. */
  socket: Socket;
  /** Why the connection dropped after it was set up, if it did. */
  readonly lost: string | null;
  close(): void;
}

export async function openSession(alias: string, user: string | undefined, options: SshOptions, depth = 0): Promise<SshSession> {
  const target = resolveTarget(alias, user, options);
  let socket: Socket;
  let stream: Duplex;
  let jump: SshSession | null = null;
  if (target.proxyJump) {
    if (depth > 4) throw new SshError('too many ProxyJump hops');
    const hop = target.proxyJump.split(',')[0]!.trim();
    const at = hop.lastIndexOf('@');
    const hopHost = at >= 0 ? hop.slice(at + 1) : hop;
    const [jumpAlias, jumpPort] = /^\[?([^\]]+?)\]?(?::(\d+))?$/.exec(hopHost)!.slice(1) as [string, string | undefined];
    // The jump host is reached with its own configuration: not the target's port or key options.
    jump = await openSession(jumpAlias, at >= 0 ? hop.slice(0, at) : undefined, { ...options, port: jumpPort ? Number(jumpPort) : undefined, identityFile: undefined }, depth + 1);
    socket = jump.socket;
    stream = await new Promise<ClientChannel>((resolve, reject) =>
      jump!.client.forwardOut('127.0.0.1', 0, target.host, target.port, (error, channel) =>
        error ? reject(new SshError(`jump host ${jumpAlias} cannot reach ${target.host} port ${target.port}: ${error.message}`)) : resolve(channel),
      ),
    );
  } else {
    socket = await tcpSocket(target.host, target.port, target.connectTimeoutMs);
    stream = socket;
  }

  const skipped: string[] = [];
  const methods = await authMethods(target, skipped);
  let hostKeyProblem: string | null = null;
  const knownHosts = [join(sshDir(), 'known_hosts'), '/etc/ssh/ssh_known_hosts'];
  const name = hostField(target.host, target.port);
  const client = new (await loadSsh2()).Client();
  const config: ConnectConfig = {
    sock: stream,
    username: target.user,
    readyTimeout: target.connectTimeoutMs,
    keepaliveInterval: KEEPALIVE_MS,
    keepaliveCountMax: 4,
    authHandler: methods,
    debug: process.env.LB_SSH_DEBUG ? (line: string) => process.stderr.write(line + '\n') : undefined,
    algorithms: options.compress ? { compress: ['zlib@openssh.com', 'zlib', 'none'] } : undefined,
    hostVerifier: (key: Buffer) => {
      const verdict = checkHostKey(knownHosts, target.host, target.port, key);
      const print = `${keyTypeOf(key)} key ${fingerprint(key)}`;
      switch (verdict.kind) {
        case 'known':
          return true;
        case 'revoked':
          hostKeyProblem = `the host key of ${name} (${print}) is marked revoked in known_hosts; refusing to connect`;
          return false;
        case 'changed':
          hostKeyProblem =
            `WARNING: the host key of ${name} has CHANGED (now ${print}; known_hosts line ${verdict.line} says otherwise). ` +
            `Someone could be intercepting the connection; lb refuses. If the host was reinstalled, remove the old key with: ssh-keygen -R '${name}'`;
          return false;
        case 'unknown':
          if (options.acceptNewHostKey) {
            recordHostKey(knownHosts[0]!, target.host, target.port, key);
            options.onNotice?.(`recorded new host key of ${name} (${print}) in ${knownHosts[0]}`);
            return true;
          }
          hostKeyProblem =
            `the host key of ${name} is not known (${print}); nothing was sent. ` +
            `If that is the right host, run again with --accept-new-host-key to record it in ${knownHosts[0]}`;
          return false;
      }
    },
  };
  let lost: string | null = null;
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    client.once('ready', () => {
      settled = true;
      resolve();
    });
    // ssh2 can report more than one error for one failure (a timeout, then the socket we close): the first explains.
    client.on('error', (error: Error & { level?: string }) => {
      if (settled) {
        lost ??= error.message;
        return;
      }
      settled = true;
      socket.destroy();
      if (hostKeyProblem) reject(new SshError(hostKeyProblem));
      else if (error.level === 'client-authentication') {
        const tried = methods.map((m) => (m.type === 'agent' ? 'ssh-agent' : 'a key')).join(', ') || 'no usable key';
        reject(new SshError(`${target.user}@${name} refused authentication (tried ${tried})${skipped.length ? '; ' + skipped.join('; ') : ''}`));
      } else if (error.level === 'client-timeout') reject(new SshError(`timed out waiting for the SSH handshake with ${name}`));
      else reject(new SshError(`SSH connection to ${name} failed: ${error.message}`));
    });
    client.connect(config);
  });
  return {
    client,
    target,
    socket,
    get lost() {
      return lost === null ? null : `the SSH connection to ${name} was lost (${lost})`;
    },
    close: () => {
      client.end();
      jump?.close();
    },
  };
}

export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_./=:+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(client: Client, command: string, input?: Buffer): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    client.exec(command, (error, channel) => {
      if (error) return reject(new SshError(`cannot run a command on the remote: ${error.message}`));
      let stdout = '';
      let stderr = '';
      channel.on('data', (d: Buffer) => (stdout += d.toString()));
      channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      channel.on('close', (code: number | null) => resolve({ code: code ?? 255, stdout, stderr }));
      if (input) channel.end(input);
      else channel.end();
    });
  });
}

/**
 * Make sure the remote can run this lb's agent: its node is recent enough and
 * the bundle is in ~/.cache/lb under its hash (pushed if not). Returns the command prefix.
 */
async function prepareRemoteAgent(session: SshSession, remoteNode: string): Promise<string> {
  const bundle = readFileSync(agentBundlePath());
  const hash = createHash('sha256').update(bundle).digest('hex').slice(0, 20);
  const path = `.cache/lb/agent-${hash}.cjs`;
  const node = shellQuote(remoteNode);
  const probe = await exec(
    session.client,
    `command -v ${node} >/dev/null 2>&1 || exit 127; ${node} -e 'process.stdout.write(process.versions.node)' && { test -f ${path} && echo ' present' || echo ' absent'; }`,
  );
  const where = `${session.target.user}@${session.target.alias}`;
  if (probe.code === 127) {
    throw new SshError(`${where} has no '${remoteNode}' to run lb's agent: install Node.js >= ${MIN_REMOTE_NODE} there, or give its path with --remote-node`);
  }
  if (probe.code !== 0) throw new SshError(`${where}: '${remoteNode}' does not run: ${probe.stderr.trim().split('\n')[0] ?? ''}`);
  const [version, state] = probe.stdout.trim().split(/\s+/);
  if (Number(version?.split('.')[0]) < MIN_REMOTE_NODE) {
    throw new SshError(`${where} has Node.js ${version}; lb's agent needs ${MIN_REMOTE_NODE} or newer (--remote-node can point at another)`);
  }
  if (state !== 'present') {
    const push = await exec(session.client, `mkdir -p .cache/lb && cat > ${path}.$$ && mv -f ${path}.$$ ${path}`, bundle);
    if (push.code !== 0) throw new SshError(`cannot store lb's agent on ${where}: ${push.stderr.trim().split('\n')[0] ?? ''}`);
  }
  return `${node} ${path}`;
}

/** Run lb's agent on the remote with `args`; the protocol then flows over the channel. */
export async function startRemoteAgent(session: SshSession, options: SshOptions, args: string[]): Promise<AgentConnection> {
  const command = [await prepareRemoteAgent(session, options.remoteNode ?? 'node'), ...args.map(shellQuote)].join(' ');
  const channel = await new Promise<ClientChannel>((resolve, reject) =>
    session.client.exec(command, (error, ch) => (error ? reject(new SshError(`cannot start lb's agent on the remote: ${error.message}`)) : resolve(ch))),
  );
  let errText = '';
  channel.stderr.on('data', (d: Buffer) => {
    if (errText.length < 65536) errText += d.toString();
  });
  // 'exit' comes with the remote's exit-status; 'close' alone only once the channel's input was read to its end,
  // which a reader that stopped after the final message never does.
  let signalled: NodeJS.Signals | null = null;
  const exited = new Promise<number>((resolve) => {
    // ssh2 gives (code) for an exit status, (null, signal name without SIG) for a signal.
    channel.once('exit', (code: number | null, signal?: string) => {
      if (code === null && signal) signalled = `SIG${signal}` as NodeJS.Signals;
      resolve(code ?? 255);
    });
    channel.once('close', (code: number | null) => resolve(code ?? 255));
  });
  return {
    input: channel,
    output: channel,
    exited,
    stderr: () => errText,
    exitSignal: () => signalled,
    kill: () => channel.close(),
    interrupt: () => {
      // A server may pass the signal on (OpenSSH does only for some sessions); the end of its input stops the agent anyway.
      channel.signal('TERM');
      channel.end();
    },
  };
}
