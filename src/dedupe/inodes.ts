// One inode and every path to it under the tree; once it is found identical to
// a kept one, each of its paths is replaced by a link to that (replace.ts), and
// what was learned of both goes into the catalog.
import { lstatSync, type BigIntStats } from 'node:fs';
import { cacheable, timestampWindow, type HashCache } from '../scan/hash.js';
import type { DedupeOptions, DedupeReport } from './dedupe.js';
import type { DirectoryTimes } from './directory-times.js';
import { replaceWithLink } from './replace.js';

export interface Place {
  path: Buffer;
  directoryInode: bigint;
}

/** One inode and every path under DIR that leads to it. */
export interface Inode {
  stat: BigIntStats;
  paths: Place[];
  /** xxh64 of the first PREFIX_BYTES. */
  prefix?: string;
  /** xxh64 of the whole content. */
  hash?: string;
  /** When this run first read it (ns), if it did: decides whether what was learned may be cached. */
  readAtNs?: bigint;
  /** Changed or unreadable: never linked, never linked to. */
  unusable?: boolean;
  /** Links under DIR when scanned: if all are replaced and it had no others, its space comes back. */
  scannedLinks: number;
}

export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

/** Record what was learned: signatures and hashes of files read, and kept files under their new ctime. */
export function remember(inodes: Inode[], grown: Set<Inode>, cache: HashCache): void {
  for (const inode of inodes) {
    if (inode.paths.length === 0 || inode.unusable || inode.prefix === undefined) continue;
    const value = inode.prefix + (inode.hash ?? '');
    if (grown.has(inode)) rememberLinked(inode, value, cache);
    else if (inode.readAtNs !== undefined && cacheable(inode.stat, inode.readAtNs)) {
      for (const place of inode.paths) cache.remember(place.directoryInode, inode.stat, value);
    }
  }
}

/** Replace every path of `inode` by a link to `target`; 'link limit' if the target filled up on the way. */
export function linkInodeInto(target: Inode, inode: Inode, options: DedupeOptions, report: DedupeReport, times: DirectoryTimes): 'all' | 'some' | 'none' | 'link limit' {
  let moved = 0;
  while (inode.paths.length > 0) {
    const place = inode.paths[0]!;
    if (!options.dryRun) {
      times.beforeChangeBeside(place.path);
      const outcome = replaceWithLink({ path: target.paths[0]!.path, stat: target.stat }, { path: place.path, stat: inode.stat });
      if (outcome === 'link limit') return 'link limit';
      if (outcome !== 'linked') {
        report.changed++;
        break;
      }
      // Our own link and unlink moved both inodes' ctimes: take them up, nothing else may differ.
      target.stat = refreshed(target.paths[0]!.path, target.stat) ?? target.stat;
    }
    options.onLink?.(target.paths[0]!.path, place.path);
    inode.paths.shift();
    target.paths.push(place);
    report.filesLinked++;
    moved++;
    if (inode.paths.length > 0 && !options.dryRun) {
      const after = refreshed(inode.paths[0]!.path, inode.stat);
      if (!after) {
        report.changed++;
        break;
      }
      inode.stat = after;
    }
  }
  if (inode.paths.length === 0 && BigInt(inode.scannedLinks) === inode.stat.nlink) report.bytesReclaimed += Number(inode.stat.size);
  return moved === 0 ? 'none' : inode.paths.length === 0 ? 'all' : 'some';
}

/** The file's stat now, if only its ctime and link count moved since `before`; null if anything else did. */
export function refreshed(path: Buffer, before: BigIntStats): BigIntStats | null {
  const now = lstatSync(path, { bigint: true });
  return now.ino === before.ino && now.dev === before.dev && now.size === before.size && now.mtimeNs === before.mtimeNs ? now : null;
}

/**
 * A kept file's ctime moved with every link made to it: record what is known
 * of it under the new stat for every directory it is now in, so the next run
 * reads nothing. Safe although the ctime is fresh: its content was just
 * compared and its mtime is old.
 */
function rememberLinked(target: Inode, value: string, cache: HashCache): void {
  // Its stat as taken after our last link to it: should the file change after
  // that, its ctime moves and the entry is simply never found.
  const stat = target.stat;
  if (stat.mtimeNs >= nowNs() - timestampWindow(stat)) return;
  for (const place of target.paths) cache.remember(place.directoryInode, stat, value);
}
