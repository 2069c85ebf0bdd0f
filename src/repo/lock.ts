// The repository lock: a file created exclusively, naming its holder. A lock
// whose holder is gone from this host (no such process, or a process that
// started after the lock was taken: the pid was reused) is stale and taken over.
import { closeSync, existsSync, linkSync, openSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { RepositoryError } from './repository.js';

interface Holder {
  host: string;
  pid: number;
  since: string;
  /** The holder's start time in clock ticks since boot (Linux /proc), telling a reused pid apart. */
  started?: string;
  /** What it is doing, when not a backup: `prune`. */
  doing?: string;
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
  return parseHolder(readOrNull(path));
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

function parseHolder(text: string | null): Holder | null {
  try {
    const h = JSON.parse(text ?? '') as Holder;
    return typeof h.host === 'string' && Number.isInteger(h.pid) ? h : null;
  } catch {
    return null;
  }
}

function inUse(other: Holder, path: string): RepositoryError {
  return new RepositoryError(
    `repository is in use by another lb ${other.doing ?? 'run'} (pid ${other.pid} on ${other.host}, since ${other.since}); ` +
      `if that run is gone for good, remove ${path}`,
  );
}

/** The lock file needs one block; this many bytes are kept in `.lb/reserve` to make room for it on a full disk. */
const RESERVE_BYTES = 4096;

function noSpace(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Frees the reserve block; false when there was none. */
function giveUpReserve(lbDir: string): boolean {
  try {
    unlinkSync(join(lbDir, 'reserve'));
    return true;
  } catch {
    return false;
  }
}

/** Made again once a run ends, when the disk has room for it (never at the cost of the run). */
export function keepReserve(lbDir: string): void {
  const path = join(lbDir, 'reserve');
  if (existsSync(path)) return;
  try {
    writeFileSync(path, Buffer.alloc(RESERVE_BYTES), { mode: 0o600 });
  } catch (error) {
    if (!noSpace(error)) return; // a read-only repository, say: the lock would not have been taken either
    rmSync(path, { force: true }); // a part-written reserve frees nothing useful
  }
}

export class RepositoryLock {
  private constructor(private readonly path: string, private readonly holder: Holder) {}

  static acquire(lbDir: string, doing?: 'prune'): RepositoryLock {
    const path = join(lbDir, 'lock');
    const holder: Holder = { host: hostname(), pid: process.pid, since: new Date().toISOString(), started: processStart(process.pid), ...(doing ? { doing } : {}) };
    for (let attempt = 0; attempt < 2; attempt++) {
      if (RepositoryLock.create(path, holder)) return new RepositoryLock(path, holder);
      const judged = readOrNull(path);
      const other = parseHolder(judged);
      if (other && (other.host !== holder.host || alive(other))) throw inUse(other, path);
      // Stale (dead holder, or an unreadable lock from a run killed while writing it):
      // move it aside atomically so only one contender takes it over.
      RepositoryLock.breakStale(path, judged);
    }
    throw new RepositoryError('could not take the repository lock');
  }

  /**
   * Move aside the lock judged stale. Another run may have taken it over between
   * that judgement and this rename: then what was moved is that run's fresh lock,
   * which is put back, and this run steps aside.
   */
  private static breakStale(path: string, judged: string | null): void {
    const aside = `${path}.stale-${process.pid}`;
    try {
      renameSync(path, aside);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return; // another contender moved it: try again
      throw error;
    }
    const moved = readOrNull(aside);
    if (moved !== judged) {
      try {
        linkSync(aside, path); // never over a lock made meanwhile
      } finally {
        unlinkSync(aside);
      }
      const taker = parseHolder(moved);
      throw taker ? inUse(taker, path) : new RepositoryError('could not take the repository lock: another lb run is taking it');
    }
    unlinkSync(aside);
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
      // A full disk: the block kept in reserve makes room for the lock, so a prune can still free space.
      if (noSpace(error) && giveUpReserve(dirname(path))) return RepositoryLock.create(path, holder);
      throw error;
    }
    closeSync(fd);
    return true;
  }

  release(): void {
    const current = readHolder(this.path);
    if (current && current.pid === this.holder.pid && current.host === this.holder.host) unlinkSync(this.path);
    keepReserve(dirname(this.path));
  }
}
