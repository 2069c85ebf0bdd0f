// `lb dedupe DIR`: hard-link identical files inside one directory tree. Files
// are grouped by size; only where a size has more than one inode, by metadata
// (unless content-only), then by the xxh64 of their first 4 KiB, which sets
// apart most files that merely share a size at the cost of one small read.
// What is left is compared byte by byte with the file it would be linked to,
// computing whole-file xxh64s on the way (one read of each file, as
// util-linux hardlink needs); the descriptor opened for the prefix serves the
// comparisons too (open-files.ts). A duplicate is replaced atomically (replace.ts);
// a file that changed since it was looked at is left alone. Signatures and
// hashes go into the catalog, so a second run over an unchanged tree reads
// nothing: files already linked are one inode, and the rest are told apart by
// cached signatures.
import type { BigIntStats } from 'node:fs';
import { comparePaths } from '../diff/order.js';
import type { HashCache } from '../scan/hash.js';
import { PREFIX_BYTES, loadFastHash, prefixSignature, type XxHash } from '../scan/fast-hash.js';
import { walk, type Skipped } from '../scan/walk.js';
import { compareFiles } from './compare.js';
import { DirectoryTimes } from './directory-times.js';
import { linkInodeInto, nowNs, refreshed, remember, type Inode } from './inodes.js';
import { removeLeftover, temporaryLink } from './leftovers.js';
import { OpenFiles } from './open-files.js';

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
  const reading: Reading = { hasher, files: new OpenFiles(), countRead: (n: number) => (report.bytesRead += n), skip };
  const times = new DirectoryTimes();
  let yielded = Date.now();
  try {
    // Largest first: the most space back early, should the run be stopped.
    for (const size of [...bySize.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0))) {
      // The comparisons read synchronously: now and then, let timers (the progress line) run.
      if (Date.now() - yielded > 100) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        yielded = Date.now();
      }
      const inodes = bySize.get(size)!;
      bySize.delete(size);
      if (inodes.size < 2) continue; // one inode: nothing to link, nothing to read
      for (const candidates of partition([...inodes.values()], (inode) => (options.contentOnly ? '' : metadataKey(inode.stat)))) {
        if (candidates.length < 2) continue;
        for (const inode of candidates) if (inode.prefix === undefined) signInode(inode, reading, report);
        const grown = new Set<Inode>();
        for (const same of partition(candidates, (inode) => (inode.unusable ? undefined : inode.prefix))) {
          if (same.length >= 2) linkIdentical(same, options, report, reading, grown, times);
        }
        reading.files.closeAll();
        report.groups += grown.size;
        if (!options.dryRun && options.cache) remember(candidates, grown, options.cache);
      }
    }
  } finally {
    reading.files.closeAll();
    times.restore();
  }
  report.phase = 'done';
  return report;
}

function metadataKey(stat: BigIntStats): string {
  return `${stat.mode}:${stat.uid}:${stat.gid}:${stat.mtimeNs}`;
}

/** Groups by key, in first-seen order; items whose key is undefined are left out. */
function partition<T>(items: T[], key: (item: T) => string | undefined): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    if (k === undefined) continue;
    const group = groups.get(k);
    if (group) group.push(item);
    else groups.set(k, [item]);
  }
  return [...groups.values()];
}

interface Reading {
  hasher: XxHash;
  files: OpenFiles<Inode>;
  countRead: (n: number) => void;
  skip: (skipped: Skipped) => void;
}

/** The inode's file open for reading, or null (and the inode set aside) if it cannot be opened. */
function openInode(inode: Inode, reading: Reading, report: DedupeReport): number | null {
  try {
    return reading.files.acquire(inode, inode.paths[0]!.path);
  } catch (error) {
    setAsideUnreadable(inode, error as NodeJS.ErrnoException, reading, report);
    return null;
  }
}

/** A file gone since the scan changed; one that cannot be read is reported. */
function setAsideUnreadable(inode: Inode, error: NodeJS.ErrnoException, reading: Reading, report: DedupeReport): void {
  inode.unusable = true;
  if (error.code === 'ENOENT') report.changed++;
  else reading.skip({ path: inode.paths[0]!.path, kind: 'unreadable', reason: `cannot read: ${error.message}` });
}

/** Read the file's prefix signature; a file no longer than the prefix is thereby hashed whole. */
function signInode(inode: Inode, reading: Reading, report: DedupeReport): void {
  inode.readAtNs ??= nowNs();
  const fd = openInode(inode, reading, report);
  if (fd === null) return;
  let prefix: string | null;
  try {
    prefix = prefixSignature(reading.hasher, fd, inode.stat, reading.countRead);
  } catch (error) {
    setAsideUnreadable(inode, error as NodeJS.ErrnoException, reading, report);
    return;
  } finally {
    reading.files.release(inode, fd);
  }
  report.filesHashed++;
  if (prefix === null) {
    report.changed++;
    inode.unusable = true;
    return;
  }
  inode.prefix = prefix;
  if (inode.stat.size <= BigInt(PREFIX_BYTES)) inode.hash = prefix;
}

/**
 * One set of inodes with the same size, metadata (unless content-only) and
 * prefix signature. The file kept is the one with the most links already
 * (ties: the first path in byte order), so existing link groups grow rather
 * than move. Each other inode is compared with the kept one; one that differs
 * becomes a kept file of its own for those after it. Whole-content hashes,
 * known or learned while comparing, skip comparisons that cannot match. At the
 * link limit the inode being linked becomes the kept file for those after it.
 */
function linkIdentical(inodes: Inode[], options: DedupeOptions, report: DedupeReport, reading: Reading, grown: Set<Inode>, times: DirectoryTimes): void {
  inodes.sort((a, b) => (a.stat.nlink !== b.stat.nlink ? Number(b.stat.nlink - a.stat.nlink) : comparePaths(a.paths[0]!.path, b.paths[0]!.path)));
  const kept: Inode[] = [];
  for (const inode of inodes) {
    let placed = false;
    for (let k = 0; k < kept.length && !placed; k++) {
      const target = kept[k]!;
      if (target.hash !== undefined && inode.hash !== undefined && target.hash !== inode.hash) continue;
      const hashesKnownEqual = target.hash !== undefined && target.hash === inode.hash;
      target.readAtNs ??= nowNs();
      inode.readAtNs ??= nowNs();
      const targetFd = openInode(target, reading, report);
      if (targetFd === null) {
        kept.splice(k--, 1);
        continue;
      }
      const inodeFd = openInode(inode, reading, report);
      if (inodeFd === null) {
        reading.files.release(target, targetFd);
        placed = true;
        continue;
      }
      let compared: ReturnType<typeof compareFiles>;
      try {
        compared = compareFiles(
          reading.hasher,
          { fd: targetFd, stat: target.stat, hash: target.hash },
          { fd: inodeFd, stat: inode.stat, hash: inode.hash },
          reading.countRead,
        );
      } finally {
        reading.files.release(target, targetFd);
        reading.files.release(inode, inodeFd);
      }
      const { verdict, hashes } = compared;
      if (verdict === 'second changed') {
        report.changed++;
        inode.unusable = true;
        placed = true;
        continue;
      }
      if (verdict === 'first changed') {
        report.changed++;
        target.unusable = true;
        reading.files.forget(target);
        kept.splice(k--, 1);
        continue;
      }
      [target.hash, inode.hash] = hashes;
      if (verdict === 'different') {
        if (hashesKnownEqual || target.hash === inode.hash) report.collisions++;
        continue;
      }
      placed = true;
      const outcome = linkInodeInto(target, inode, options, report, times);
      if (outcome !== 'none') grown.add(target);
      if (outcome === 'link limit') {
        reading.files.forget(target);
        kept.splice(k, 1, inode); // the full one can take no more
      }
    }
    if (!placed) kept.push(inode);
    else if (!kept.includes(inode)) reading.files.forget(inode);
  }
}
