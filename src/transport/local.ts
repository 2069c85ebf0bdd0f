// The local transport: the agent runs as a child process and the protocol flows
// over its stdin and stdout, exactly as it does over SSH.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';

export interface AgentConnection {
  /** What the agent writes. */
  input: Readable;
  /** What the agent reads. */
  output: Writable;
  /** Resolves with the agent's exit status once it has exited. */
  exited: Promise<number>;
  /** Everything the agent printed on stderr (for error messages). */
  stderr(): string;
  /** The signal that ended the agent, once it has exited from one (null where unknown). */
  exitSignal(): NodeJS.Signals | null;
  /** Stop the agent at once (the local one by `signal`, SIGTERM unless told; a remote one by closing the channel). */
  kill(signal?: NodeJS.Signals): void;
  /**
   * Ask the agent to stop (lb was interrupted): it aborts (nothing published, lock released) and exits, and
   * its last message, if any, still arrives, since it decides whether a snapshot was made after all.
   */
  interrupt(): void;
}

/** The bundled agent sits next to the bundled CLI in dist/. */
export function agentBundlePath(): string {
  return fileURLToPath(new URL('./agent.cjs', import.meta.url));
}

export function startLocalAgent(): AgentConnection {
  // In a process group of its own: a Ctrl-C on the terminal reaches lb alone, which stops the agent and waits for it.
  const child = spawn(process.execPath, [agentBundlePath()], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let errText = '';
  let signalled: NodeJS.Signals | null = null;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    if (errText.length < 65536) errText += s;
  });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      signalled = signal;
      resolve(code ?? (signal ? 128 : 1));
    });
  });
  return {
    input: child.stdout,
    output: child.stdin,
    exited,
    stderr: () => errText,
    exitSignal: () => signalled,
    kill: (signal = 'SIGTERM') => child.kill(signal),
    interrupt: () => child.kill('SIGTERM'),
  };
}
