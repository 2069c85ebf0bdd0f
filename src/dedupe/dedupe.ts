// `lb dedupe DIR`: hard-link identical files inside one directory tree. Files
// are grouped by size; only where a size has more than one inode, by metadata
// (unless content-only), then by the xxh64 of their first 4 KiB, which sets
// apart most files that merely share a size at the cost of one small read.
// What is left is compared byte by byte with the file it would be linked to,
// computing whole-file xxh64s on the way (one read of each file, as
// util-linux hardlink needs); the descriptor opened for the prefix serves the
// comparisons too (open-files.ts). Several sizes are read at once (group.ts,
// reads.ts). A duplicate is replaced atomically (replace.ts);
// a file that changed since it was looked at is left alone. Signatures and
// hashes go into the catalog, so a second run over an unchanged tree reads
// nothing: files already linked are one inode, and the rest are told apart by
// cached signatures.
import type { BigIntStats } from 'node:fs';
import type { HashCache } from '../scan/hash.js';
import { loadFastHash } from '../scan/fast-hash.js';
import { walk, type Skipped } from '../scan/walk.js';
import { DirectoryTimes } from './directory-times.js';
import { SIZES_AT_ONCE, dedupeSize, type Run } from './group.js';
import { refreshed, type Inode } from './inodes.js';
import { removeLeftover, temporaryLink } from './leftovers.js';
import { forEachAtOnce } from './reads.js';

export interface DedupeOptions {
  /** Link files of equal content whatever their mode, owner, group and mtime. */
  contentOnly: boolean;
  dryRun: boolean;
  /** The catalog's xxh64 cache. */
  cache?: HashCache;
  /** A duplicate replaced (or, in a dry run, that would be). */
  onLink?: (kept: Buffer, duplicate: Buffer) => void;
  onSkip?: (skipped: Skipped) => void;
}

export interface DedupeReport {
  filesScanned: number;
  bytesScanned: number;
  /** Files read to hash or compare them, and their bytes. */
  bytesRead: number;
  filesHashed: number;
  /** Sets of identical files where at least one was (or would be) linked. */
  groups: number;
  filesLinked: number;
  /** Bytes of the files whose every link was replaced: space the filesystem gets back. */
  bytesReclaimed: number;
  /** Left alone because they changed while being looked at. */
  changed: number;
  /** Same size and hash, different bytes. */
  collisions: number;
  /** Temporary links of interrupted runs, removed. */
  leftoversRemoved: number;
  phase: 'scanning' | 'comparing' | 'done';
  skipped: Skipped[];
}

/** The catalog keeps, per file, its prefix signature and, once known, its whole-content hash: 16 or 32 hex digits. */
function fromCache(cached: string | undefined): { prefix?: string; hash?: string } {
  if (cached?.length === 16) return { prefix: cached };
  if (cached?.length === 32) return { prefix: cached.slice(0, 16), hash: cached.slice(16) };
  return {};
}

/** Files smaller than this are left alone, as util-linux hardlink does: an empty file frees no space. */
const MIN_SIZE = 1n;

/** Starts deduplicating; the report is live (for a progress display) and final once `done` resolves. */
export function startDedupe(root: string, options: DedupeOptions): { report: DedupeReport; done: Promise<DedupeReport> } {
  const report: DedupeReport = {
    filesScanned: 0,
    bytesScanned: 0,
    bytesRead: 0,
    filesHashed: 0,
    groups: 0,
    filesLinked: 0,
    bytesReclaimed: 0,
    changed: 0,
    collisions: 0,
    leftoversRemoved: 0,
    phase: 'scanning',
    skipped: [],
  };
  return { report, done: run(root, options, report) };
}

async function run(root: string, options: DedupeOptions, report: DedupeReport): Promise<DedupeReport> {
  const hasher = await loadFastHash();
  const rootBytes = Buffer.from(root.replace(/\/+$/, '') || '/');
  const skip = (skipped: Skipped) => {
    report.skipped.push(skipped);
    options.onSkip?.(skipped);
  };
  const bySize = new Map<bigint, Map<bigint, Inode>>();
  const leftovers: { path: Buffer; stat: BigIntStats }[] = [];
  for await (const entry of walk(root, {
    cache: options.cache,
    oneFileSystem: true,
    onSkip: skip,
  })) {
    if (entry.type !== 'file') continue;
    const path = Buffer.concat([rootBytes, Buffer.from('/'), entry.path]);
    const temporary = temporaryLink(entry.path);
    if (temporary) {
      if (temporary === 'leftover') leftovers.push({ path, stat: entry.stat });
      continue;
    }
    report.filesScanned++;
    report.bytesScanned += Number(entry.stat.size);
    if (entry.stat.size < MIN_SIZE) continue;
    let inodes = bySize.get(entry.stat.size);
    if (!inodes) bySize.set(entry.stat.size, (inodes = new Map()));
    let inode = inodes.get(entry.stat.ino);
    if (!inode) inodes.set(entry.stat.ino, (inode = { stat: entry.stat, paths: [], scannedLinks: 0 }));
    inode.paths.push({ path, directoryInode: entry.directoryInode });
    inode.scannedLinks++;
    if (inode.prefix === undefined) Object.assign(inode, fromCache(entry.cachedHash));
  }

  for (const leftover of options.dryRun ? [] : leftovers) {
    if (!removeLeftover(leftover.path, leftover.stat, skip)) continue;
    report.leftoversRemoved++;
    // The inode lost a name: take up its new link count and ctime (should it have gone, its reads will say so).
    const inode = bySize.get(leftover.stat.size)?.get(leftover.stat.ino);
    try {
      if (inode) inode.stat = refreshed(inode.paths[0]!.path, inode.stat) ?? inode.stat;
    } catch {}
  }

  report.phase = 'comparing';
  const times = new DirectoryTimes();
  const work: Run = { options, report, hasher, times, skip };
  try {
    // One inode of a size: nothing to link, nothing to read.
    for (const [size, inodes] of bySize) {
      if (inodes.size < 2) bySize.delete(size);
      else for (const inode of inodes.values()) for (const place of inode.paths) times.mayChange(place.path);
    }
    // Largest first: the most space back early, should the run be stopped.
    const sizes = [...bySize.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0));
    await forEachAtOnce(sizes, SIZES_AT_ONCE, async (size) => {
      const inodes = [...bySize.get(size)!.values()];
      bySize.delete(size);
      await dedupeSize(inodes, work);
      // Linking moved paths between these inodes, never elsewhere.
      for (const inode of inodes) for (const place of inode.paths) times.settled(place.path);
    });
  } finally {
    await times.restore();
  }
  report.phase = 'done';
  return report;
}
