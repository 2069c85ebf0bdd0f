// Ctrl-C, SIGTERM and SIGHUP during a backup. The terminal is restored at once;
// then, before the repository side has started, lb stops waiting (nothing was
// written); while it runs, the agent is asked to stop and lb waits for its
// verdict, which decides what lb says: normally that nothing was made, but a
// signal that arrives during the final publish may come too late to stop it.
import { constants } from 'node:os';
import type { AgentConnection } from '../transport/local.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
type StopSignal = (typeof SIGNALS)[number];

/** A pending connection or a large file being hashed may outlast the error being reported: lb leaves anyway after this long. */
const LEAVE_AFTER_MS = 1000;

export class Interrupted extends Error {
  /** 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP, as shells report a process that a signal ended. */
  readonly exitStatus: number;

  constructor(
    readonly signal: StopSignal,
    message = 'interrupted; no snapshot was made',
  ) {
    super(message);
    this.exitStatus = 128 + constants.signals[signal];
  }
}

export class Interruption {
  /** The first signal that came, if one did. */
  signal: StopSignal | null = null;
  private readonly restorers = new Set<() => void>();
  private stopRun: ((signal: StopSignal) => void) | null = null;
  private readonly rejectWaiting = new Set<(error: Interrupted) => void>();
  private readonly handlers = new Map<StopSignal, () => void>();
  private leaving: NodeJS.Timeout | null = null;

  static install(): Interruption {
    const interruption = new Interruption();
    for (const signal of SIGNALS) {
      const handler = () => interruption.received(signal);
      interruption.handlers.set(signal, handler);
      process.on(signal, handler);
    }
    return interruption;
  }

  uninstall(): void {
    for (const [signal, handler] of this.handlers) process.off(signal, handler);
    this.handlers.clear();
  }

  /** Undo what the display did to the terminal (a hidden cursor, line wrap off) as soon as a signal comes. */
  onSignalRestore(restore: () => void): () => void {
    this.restorers.add(restore);
    return () => this.restorers.delete(restore);
  }

  /**
   * Once the repository side runs, a signal calls `stop` (which asks it to stop), and the run is left to
   * end by itself: its outcome says whether a snapshot was made.
   */
  whileRunning(stop: (signal: StopSignal) => void): void {
    this.stopRun = stop;
    if (this.signal) stop(this.signal);
  }

  /** Wait for `work` (connecting, starting the agent: nothing written yet), or give up at the first signal. */
  async orStop<T>(work: Promise<T>): Promise<T> {
    if (this.signal) throw this.interrupted();
    let reject!: (error: Interrupted) => void;
    const stopped = new Promise<never>((_, r) => (reject = r));
    this.rejectWaiting.add(reject);
    try {
      return await Promise.race([work, stopped]);
    } finally {
      this.rejectWaiting.delete(reject);
    }
  }

  /** The error to throw once the run has stopped; lb leaves shortly after reporting it, whatever is still pending. */
  interrupted(): Interrupted {
    this.leaving ??= setTimeout(() => process.exit(), LEAVE_AFTER_MS).unref();
    return new Interrupted(this.signal ?? 'SIGINT');
  }

  private received(signal: StopSignal): void {
    this.restoreTerminal();
    if (this.signal) {
      // A second signal: the user will not wait. An agent still aborting sees lb gone and finishes on its own;
      // a lock whose holder died is stale, and the next run takes it over.
      process.stderr.write(`lb: interrupted again; leaving without waiting for the repository side to stop\n`);
      process.exit(new Interrupted(signal).exitStatus);
    }
    this.signal = signal;
    this.stopRun?.(signal);
    for (const reject of this.rejectWaiting) reject(this.interrupted());
  }

  private restoreTerminal(): void {
    for (const restore of this.restorers) restore();
  }
}

/** How long an interrupted agent gets to abort (clearing its leftovers, releasing the lock) before it is killed. */
const AGENT_STOP_MS = 10_000;

export function exitedWithin(agent: AgentConnection, ms: number): Promise<boolean> {
  return Promise.race([agent.exited.then(() => true, () => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref())]);
}

/** Wait for an interrupted agent to exit; one that does not is killed (the lock of a dead agent is stale, and the next run takes it over). */
export async function agentStopped(agent: AgentConnection): Promise<void> {
  if (await exitedWithin(agent, AGENT_STOP_MS)) return;
  agent.kill('SIGKILL');
  await exitedWithin(agent, 2000);
}
