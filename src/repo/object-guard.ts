// Before a stored object is linked or copied into a new snapshot it is checked,
// so that a snapshot tree edited by hand (every tree file is a hard link to an
// object) cannot spread its damage into later snapshots.
//
// The cheap check uses the lstat the lookup already made: the size must be the
// content's size, and the inode must not have changed since lb last wrote to the
// repository. lb touches `.lb/last-write` whenever it has finished a batch of
// writes (every publish, and at the end of a run), so an object whose ctime lies
// after that mark but before this run started was changed by something else:
// it is re-hashed, and quarantined if its content no longer matches its name.
// Bit rot that leaves every stat field alone is for a full verification.
import { lstatSync, mkdirSync, renameSync, writeFileSync, type BigIntStats } from 'node:fs';
import { basename, join } from 'node:path';
import { sha256OfFile } from './hash-file.js';

export interface Damage {
  /** Where the damaged object now lies, kept as evidence. */
  quarantined: string;
  reason: string;
}

export class ObjectGuard {
  private readonly markPath: string;
  private readonly quarantineDir: string;
  /** ctime of the mark when this run began; null for a repository without one (checks size only). */
  private readonly lastWriteNs: bigint | null;
  /** Objects re-hashed and found sound this run (few: only the suspicious ones). */
  private readonly rehashed = new Set<string>();

  constructor(
    lbDir: string,
    /** A ctime at or after this was made by this run, which holds the lock. */
    private readonly sessionStartNs: bigint,
    /** Told of each damaged object, which is quarantined; null to only judge (a reader writes nothing). */
    private readonly onDamage: ((damage: Damage) => void) | null,
  ) {
    this.markPath = join(lbDir, 'last-write');
    this.quarantineDir = join(lbDir, 'quarantine');
    this.lastWriteNs = ctimeOrNull(this.markPath);
  }

  /**
   * True when the object at `path` (whose lstat is `stat`) may be reused for
   * content `hash` of `size` bytes. A damaged object is moved to the quarantine
   * and reported; the caller then treats the content as absent.
   */
  sound(path: string, stat: BigIntStats, hash: string, size: number): boolean {
    let reason: string | null = null;
    if (!stat.isFile()) reason = 'is no longer a regular file';
    else if (stat.size !== BigInt(size)) reason = `has ${stat.size} bytes where its content has ${size}`;
    else if (this.changedOutsideLb(stat) && !this.rehashed.has(path)) {
      if (sha256OfFile(path) === hash) this.rehashed.add(path);
      else reason = 'no longer hashes to its name';
    }
    if (reason === null) return true;
    if (this.onDamage) this.quarantine(path, reason);
    return false;
  }

  private changedOutsideLb(stat: BigIntStats): boolean {
    if (this.lastWriteNs === null) return false;
    return stat.ctimeNs > this.lastWriteNs && stat.ctimeNs < this.sessionStartNs;
  }

  quarantine(path: string, reason: string): void {
    mkdirSync(this.quarantineDir, { recursive: true, mode: 0o700 });
    const kept = join(this.quarantineDir, `${basename(path)}.${Date.now()}`);
    renameSync(path, kept);
    this.onDamage?.({ quarantined: kept, reason: `object ${basename(path)} ${reason} (changed after it was stored)` });
  }

  /** Record that every change to the repository so far was lb's own. */
  markWritten(): void {
    markWritten(join(this.markPath, '..'));
  }
}

/** Record that every change to the repository in `lbDir` so far was lb's own (only while holding its lock). */
export function markWritten(lbDir: string): void {
  // Written, not utimes'd: its ctime then comes from the filesystem's clock, as the objects' do.
  writeFileSync(join(lbDir, 'last-write'), `${new Date().toISOString()}\n`, { mode: 0o644 });
}

function ctimeOrNull(path: string): bigint | null {
  try {
    return lstatSync(path, { bigint: true }).ctimeNs;
  } catch {
    return null;
  }
}

/** The filesystem's idea of now: the ctime of a directory just made by this run. */
export function filesystemNow(freshDir: string): bigint {
  return lstatSync(freshDir, { bigint: true }).ctimeNs;
}
