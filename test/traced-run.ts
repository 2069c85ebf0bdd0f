// A run of the real lb under strace, held at chosen syscalls: faults injected at the
// syscall level, filtered to one path (-P), either a real error (inject=…:error=EIO)
// or a SIGSTOP that holds lb at a known syscall while the test changes the world,
// then lets it go on with SIGCONT. The test waits for strace to report the stop, so
// nothing races on timing.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { LB, tempDir } from './helpers.js';

export interface Finished {
  status: number;
  stdout: string;
  stderr: string;
}

const live = new Set<ChildProcess>();

afterEach(() => {
  // A failed test may leave lb stopped: kill its whole process group (strace, lb, agent).
  for (const child of live) if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
  live.clear();
});

/** Long enough for any run here; past it a test fails with what lb was doing, instead of hanging. */
const STUCK_MS = 30_000;

export class TracedRun {
  readonly trace = join(tempDir('lb-strace-'), 'trace');
  private readonly done: Promise<Finished>;
  private finished = false;
  private stderr = '';
  private holds = 0;
  private heldPid = 0;

  /** `strace` selects the path (-P), the syscalls and the injection; `env` is added to lb's environment. */
  constructor(lbArgs: string[], strace: string[], env: Record<string, string> = {}) {
    const child = spawn('strace', ['-f', '-qq', '-o', this.trace, ...strace, process.execPath, LB, ...lbArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, ...env },
    });
    live.add(child);
    let stdout = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.done = new Promise((resolve) =>
      child.on('close', (code) => {
        this.finished = true;
        resolve({ status: code ?? -1, stdout, stderr: this.stderr });
      }),
    );
  }

  private stuck(waitingFor: string): Error {
    const text = existsSync(this.trace) ? readFileSync(this.trace, 'utf8') : '';
    return new Error(`lb stuck ${waitingFor}; stderr: ${this.stderr}\ntrace tail:\n${text.split('\n').slice(-30).join('\n')}`);
  }

  /** Resolves true once lb is held at its next injected SIGSTOP; false if it ran to its end instead. */
  async nextHold(): Promise<boolean> {
    const started = Date.now();
    for (;;) {
      const ended = this.finished; // before reading: strace has written everything once it ended
      const text = existsSync(this.trace) ? readFileSync(this.trace, 'utf8') : '';
      // The injected signal names the thread doing the read; strace reports when that thread is stopped.
      // strace pads the pid column ("363   --- …") when pids are short.
      const pid = /^(\d+) +--- SIGSTOP \{/m.exec(text)?.[1];
      if (pid) {
        const stopped = new RegExp(`^${pid} +--- stopped by SIGSTOP ---$`);
        const stops = text.split('\n').filter((line) => stopped.test(line)).length;
        if (stops > this.holds) {
          this.holds++;
          this.heldPid = Number(pid);
          return true;
        }
      }
      if (ended) return false;
      if (Date.now() - started > STUCK_MS) throw this.stuck('before a hold');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  async end(): Promise<Finished> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(this.stuck('before its end')), STUCK_MS)));
    try {
      return await Promise.race([this.done, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  resume(): void {
    process.kill(this.heldPid, 'SIGCONT');
  }

  /** Sends `signal` to the held process (delivered once it is resumed). */
  signal(signal: NodeJS.Signals): void {
    process.kill(this.heldPid, signal);
  }

  /** Lines of the strace log for one syscall. */
  calls(name: string): string[] {
    return readFileSync(this.trace, 'utf8')
      .split('\n')
      .filter((line) => new RegExp(`^\\d+ +${name}\\(`).test(line));
  }
}

/** strace arguments: stop lb (SIGSTOP) at `syscalls` on `path`; `when` as strace's (e.g. '1' for the first only). */
export function holdAt(path: string, syscalls: string, when?: string): string[] {
  return ['-P', path, '-e', `trace=${syscalls}`, '-e', `inject=${syscalls}:signal=SIGSTOP${when ? `:when=${when}` : ''}`];
}

/** strace arguments: make `syscall` on `path` fail with `errno`. */
export function failAt(path: string, syscall: string, errno: string, when?: string): string[] {
  return ['-P', path, '-e', `trace=${syscall}`, '-e', `inject=${syscall}:error=${errno}${when ? `:when=${when}` : ''}`];
}

