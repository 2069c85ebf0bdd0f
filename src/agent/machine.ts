// Telling whether two lb processes share a machine, and which directory a repository is:
// a source walk on the repository's own machine never enters the repository.
import { readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RepositoryIdentity } from '../protocol/messages.js';

/** This boot of this machine's kernel (Linux); null where there is no such thing. */
export function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** Device and inode numbers are only comparable within one boot of one kernel: without a boot id, none. */
export function repositoryIdentity(root: string): RepositoryIdentity | undefined {
  const boot = bootId();
  if (boot === null) return undefined;
  const stat = statSync(root, { bigint: true });
  return { boot, dev: stat.dev, ino: stat.ino };
}

/** Whether a real absolute path on this machine is the identified directory or lies beneath it. */
export function isWithin(identity: RepositoryIdentity, realPath: string): boolean {
  if (bootId() !== identity.boot) return false;
  for (let path = realPath; ; path = dirname(path)) {
    try {
      const stat = statSync(path, { bigint: true });
      if (stat.dev === identity.dev && stat.ino === identity.ino) return true;
    } catch {
      // not there (yet): its parents may still be
    }
    if (path === '/') return false;
  }
}
