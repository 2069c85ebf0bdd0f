// `lb prune`: snapshots the policy does not keep are removed, then the objects
// no tree links any more. Crash-safe at every step: a snapshot leaves its final
// name by one rename into .lb/trash/ (from then on no reader sees it), its tree
// is deleted there, and an object goes only when its link count says nothing
// but the store holds it, under the repository lock, so no backup can link it
// meanwhile. A prune killed anywhere leaves every kept snapshot whole; the next
// backup or prune empties the trash.
import { lstatSync, mkdirSync, readdirSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { applyPolicy, type KeepPolicy, type KeepReason } from '../diff/retention.js';
import { RepositoryLock } from './lock.js';
import { markWritten } from './object-guard.js';
import { RepositoryReader } from './reader.js';
import { Repository, RepositoryError } from './repository.js';
import { exclusiveOfSet, type RemovalEstimate } from './usage.js';
import { snapshotFilesOf, storeObjects } from './usage-scan.js';
import { trashFiles } from './trash-scan.js';

/** A snapshot's fate; `latest` names the snapshot `latest` points to when no rule keeps it (a hand-moved link). */
export interface PruneVerdict {
  name: string;
  keep: boolean;
  reasons: (KeepReason | 'latest')[];
}

export interface PruneOutcome {
  /** Every snapshot, newest first, with what keeps it; `latest` is always kept. */
  verdicts: PruneVerdict[];
  removed: string[];
  /** A dry run's: what removing them would free, counted as `lb du` counts it. */
  predicted?: RemovalEstimate;
  /** What was freed: objects collected (those the removed snapshots alone held, and any no snapshot linked). */
  objectsRemoved: number;
  bytesFreed: number;
  dryRun: boolean;
}

/** Removes every object only the store links (link count 1): nothing of any snapshot. Only while holding the lock. */
function collectGarbage(repo: Repository): { objects: number; bytes: number } {
  let objects = 0;
  let bytes = 0;
  for (const fanout of readdirSync(repo.objectsDir)) {
    const dir = join(repo.objectsDir, fanout);
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const stat = lstatSync(path);
      if (!stat.isFile() || stat.nlink !== 1) continue;
      unlinkSync(path);
      objects++;
      bytes += stat.size;
    }
  }
  return { objects, bytes };
}

/** Why a repository refuses the lock file, which is lb's first write: nothing is removed yet. */
const CANNOT_LOCK: Record<string, string> = {
  EROFS: 'is read-only (a read-only filesystem), so nothing can be pruned there',
  EACCES: 'is not writable by this user (permission denied), so nothing can be pruned there; prune as the user who writes its backups',
  EPERM: 'is not writable by this user (operation not permitted), so nothing can be pruned there; prune as the user who writes its backups',
  ENOSPC: 'is on a full filesystem, too full for even the lock file; free a few kB there (root may write into ext4\'s reserve) and prune again',
  EDQUOT: 'is over its disk quota, too far for even the lock file; free a few kB there and prune again',
};

function lockForPrune(repo: Repository, repositoryPath: string): RepositoryLock {
  try {
    return RepositoryLock.acquire(repo.lbDir, 'prune');
  } catch (error) {
    const why = CANNOT_LOCK[(error as NodeJS.ErrnoException).code ?? ''];
    if (why === undefined) throw error;
    throw new RepositoryError(`${repositoryPath} ${why}; nothing was removed`);
  }
}

export function prune(repositoryPath: string, policy: KeepPolicy, options: { dryRun: boolean; now: Date }): PruneOutcome {
  // Refuses a path that is no repository before anything is made or locked.
  const reader = RepositoryReader.open(repositoryPath);
  const latest = reader.latest();
  const verdicts: PruneVerdict[] = applyPolicy(reader.snapshots(), policy, options.now).map((v) =>
    v.name === latest && !v.keep ? { ...v, keep: true, reasons: ['latest'] } : v,
  );
  const removed = verdicts.filter((v) => !v.keep).map((v) => v.name);
  const outcome: PruneOutcome = { verdicts, removed, objectsRemoved: 0, bytesFreed: 0, dryRun: options.dryRun };
  if (options.dryRun) {
    // Only a dry run predicts: an lstat of every file of the trees removed, which cost a prune a third of its time.
    outcome.predicted = exclusiveOfSet(
      [...removed.map((name) => snapshotFilesOf(reader, name)), trashFiles(reader.root)],
      storeObjects(reader.root),
    );
    return outcome;
  }

  const repo = Repository.open(repositoryPath, 'write');
  const lock = lockForPrune(repo, repositoryPath);
  try {
    repo.clearLeftovers(); // an earlier prune's trash too
    mkdirSync(repo.trashDir, { recursive: true, mode: 0o700 });
    // All renames first: one step each, after which no reader sees the snapshot; then the slow part.
    for (const name of removed) renameSync(repo.snapshotDir(name), join(repo.trashDir, name));
    repo.clearLeftovers();
    const collected = collectGarbage(repo);
    rmSync(repo.partialDir, { recursive: true, force: true });
    outcome.objectsRemoved = collected.objects;
    outcome.bytesFreed = collected.bytes;
    // The objects' link counts (and so their ctimes) changed by lb's own hand: no later backup must re-hash them for it.
    markWritten(repo.lbDir);
  } finally {
    lock.release();
  }
  return outcome;
}
