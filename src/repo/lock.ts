// The repository lock: a file created exclusively, naming its holder. A lock
// whose holder is a dead process on this host is stale and taken over.
import { openSync, writeSync, closeSync, readFileSync, renameSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RepositoryError } from './repository.js';

interface Holder {
  host: string;
  pid: number;
  since: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
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
    const holder: Holder = { host: hostname(), pid: process.pid, since: new Date().toISOString() };
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o644);
        writeSync(fd, JSON.stringify(holder) + '\n');
        closeSync(fd);
        return new RepositoryLock(path, holder);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const other = readHolder(path);
      if (other && (other.host !== holder.host || alive(other.pid))) {
        throw new RepositoryError(
          `repository is locked by pid ${other.pid} on ${other.host} since ${other.since}; another lb run is using it`,
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

  release(): void {
    const current = readHolder(this.path);
    if (current && current.pid === this.holder.pid && current.host === this.holder.host) unlinkSync(this.path);
  }
}
