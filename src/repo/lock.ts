// The repository lock: a file created exclusively, naming its holder. A lock
// whose holder is gone from this host (no such process, or a process that
// started after the lock was taken: the pid was reused) is stale and taken over.
import { openSync, writeSync, closeSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RepositoryError } from './repository.js';

interface Holder {
  host: string;
  pid: number;
  since: string;
  /** The holder's start time in clock ticks since boot (Linux /proc), telling a reused pid apart. */
  started?: string;
}

/** Field 22 of /proc/PID/stat, or undefined where there is no /proc. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function alive(holder: Holder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const started = processStart(holder.pid);
  return holder.started === undefined || started === undefined || started === holder.started;
}

function readHolder(path: string): Holder | null {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Holder;
    return typeof h.host === 'string' && Number.isInteger(h.pid) ? h : null;
  } catch {
    return null;
  }
}

export class RepositoryLock {
  private constructor(private readonly path: string, private readonly holder: Holder) {}

  static acquire(lbDir: string): RepositoryLock {
    const path = join(lbDir, 'lock');
    const holder: Holder = { host: hostname(), pid: process.pid, since: new Date().toISOString(), started: processStart(process.pid) };
    for (let attempt = 0; attempt < 2; attempt++) {
      if (RepositoryLock.create(path, holder)) return new RepositoryLock(path, holder);
      const other = readHolder(path);
      if (other && (other.host !== holder.host || alive(other))) {
        throw new RepositoryError(
          `repository is in use by another lb run (pid ${other.pid} on ${other.host}, since ${other.since}); ` +
            `if that run is gone for good, remove ${path}`,
        );
      }
      // Stale (dead holder, or an unreadable lock from a run killed while writing it):
      // move it aside atomically so only one contender takes it over.
      try {
        renameSync(path, `${path}.stale-${process.pid}`);
        unlinkSync(`${path}.stale-${process.pid}`);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    throw new RepositoryError('could not take the repository lock');
  }

  /** Create the lock file with the holder in it; false if one exists. A half-written lock is removed. */
  private static create(path: string, holder: Holder): boolean {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw error;
    }
    try {
      writeSync(fd, JSON.stringify(holder) + '\n');
    } catch (error) {
      closeSync(fd);
      unlinkSync(path);
      throw error;
    }
    closeSync(fd);
    return true;
  }

  release(): void {
    const current = readHolder(this.path);
    if (current && current.pid === this.holder.pid && current.host === this.holder.host) unlinkSync(this.path);
  }
}
