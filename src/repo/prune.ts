// `lb prune`: snapshots the policy does not keep are removed, then the objects
// no tree links any more. Crash-safe at every step: a snapshot leaves its final
// name by one rename into .lb/trash/ (from then on no reader sees it), its tree
// is deleted there, and an object goes only when its link count says nothing
// but the store holds it, under the repository lock, so no backup can link it
// meanwhile. A prune killed anywhere leaves every kept snapshot whole; the next
// backup or prune empties the trash.
// The policy applies within each series on its own, and to the top level as
// one more, unless one series is named; garbage collection is the whole store's.
import { lstatSync, mkdirSync, readdirSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { applyPolicy, type KeepPolicy, type KeepReason } from '../diff/retention.js';
import { RepositoryLock } from './lock.js';
import { markWritten } from './object-guard.js';
import { RepositoryReader } from './reader.js';
import { Repository, RepositoryError, withSpaceOrNot } from './repository.js';
import { exclusiveOfSet, type RemovalEstimate } from './usage.js';
import { snapshotFilesOf, storeObjects } from './usage-scan.js';
import { trashFiles } from './trash-scan.js';

/** A snapshot's fate; `latest` names the snapshot `latest` points to when no rule keeps it (a hand-moved link). */
export interface PruneVerdict {
  name: string;
  /** The snapshot's series; absent at the repository's top level. */
  series?: string;
  keep: boolean;
  reasons: (KeepReason | 'latest')[];
}

export interface PruneOutcome {
  /** Every snapshot, newest first (the top level's, then each series'), with what keeps it; each `latest` is always kept. */
  verdicts: PruneVerdict[];
  /** The snapshots removed, by their paths in the repository: NAME, or SERIES/NAME. */
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

/** The policy applied within one series (or the top level): its newest snapshot and its `latest` are kept. */
function verdictsOf(part: RepositoryReader, policy: KeepPolicy, now: Date): PruneVerdict[] {
  const latest = part.latest();
  const series = part.series === null ? {} : { series: part.series };
  return applyPolicy(part.snapshots(), policy, now).map((v) => ({ ...v, ...series, ...(v.name === latest && !v.keep ? { keep: true, reasons: ['latest' as const] } : {}) }));
}

interface Decision {
  outcome: PruneOutcome;
  going: { part: RepositoryReader; name: string }[];
}

/** Which snapshots go, and what that frees by du's accounting; each part's `latest` snapshot is never one of them. */
function decide(reader: RepositoryReader, policy: KeepPolicy, options: PruneOptions): Decision {
  const going: Decision['going'] = [];
  const verdicts: PruneVerdict[] = [];
  for (const part of reader.scope()) {
    for (const verdict of verdictsOf(part, policy, options.now)) {
      verdicts.push(verdict);
      if (!verdict.keep) going.push({ part, name: verdict.name });
    }
  }
  const removed = going.map(({ part, name }) => part.label(name));
  const outcome: PruneOutcome = { verdicts, removed, objectsRemoved: 0, bytesFreed: 0, dryRun: options.dryRun };
  if (options.dryRun) {
    // Only a dry run predicts: an lstat of every file of the trees removed, which cost a prune a third of its time.
    outcome.predicted = exclusiveOfSet(
      [...going.map(({ part, name }) => snapshotFilesOf(part, name)), trashFiles(reader.root)],
      storeObjects(reader.root),
    );
  }
  return { outcome, going };
}

export interface PruneOptions {
  dryRun: boolean;
  now: Date;
  /** Prune that series alone; without it, each series and the top level, each on its own. */
  series?: string | null;
}

export function prune(repositoryPath: string, policy: KeepPolicy, options: PruneOptions): PruneOutcome {
  // Refuses a path that is no repository, or a series it does not have, before anything is made or locked.
  const reader = RepositoryReader.open(repositoryPath, options.series ?? null);
  if (options.dryRun) return decide(reader, policy, options).outcome;
  const repo = Repository.open(repositoryPath, 'write');
  const lock = lockForPrune(repo, repositoryPath);
  try {
    // Decided under the lock: no backup or other prune changes the snapshots meanwhile.
    const { outcome, going } = decide(reader, policy, options);
    repo.clearLeftovers(); // an earlier prune's trash too
    mkdirSync(repo.trashDir, { recursive: true, mode: 0o700 }); // there already, unless the repository predates prune
    // All renames first: one step each, after which no reader sees the snapshot; then the slow part.
    // A series' snapshot goes to trash/SERIES@NAME (series may hold snapshots of the same name; no
    // series or snapshot name holds '@'), one level, so no directory is made on a full disk.
    for (const { part, name } of going) renameSync(part.snapshotDir(name), join(repo.trashDir, part.label(name).replace('/', '@')));
    repo.clearLeftovers();
    const collected = collectGarbage(repo);
    rmSync(repo.partialDir, { recursive: true, force: true });
    outcome.objectsRemoved = collected.objects;
    outcome.bytesFreed = collected.bytes;
    // The objects' link counts (and so their ctimes) changed by lb's own hand: no later backup must re-hash them for it.
    withSpaceOrNot(() => markWritten(repo.lbDir));
    return outcome;
  } finally {
    lock.release();
  }
}
