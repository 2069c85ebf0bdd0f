// The inodes of one size: grouped by metadata (unless content-only), then by
// prefix signature (but for a pair), then compared byte by byte and linked. Several sizes are
// worked on at once (dedupe.ts), each with its own open files, so that their
// reads are in flight together; what one size does never touches another's
// files, since an inode has one size.
import type { BigIntStats } from 'node:fs';
import { comparePaths } from '../diff/order.js';
import type { XxHash } from '../scan/fast-hash.js';
import type { Skipped } from '../scan/walk.js';
import { compareFiles } from './compare.js';
import type { DedupeOptions, DedupeReport } from './dedupe.js';
import type { DirectoryTimes } from './directory-times.js';
import { linkInodeInto, nowNs, remember, type Inode } from './inodes.js';
import { OpenFiles } from './open-files.js';
import { PREFIX_BYTES, forEachAtOnce, prefixSignature } from './reads.js';

/** Sizes worked on at once. */
export const SIZES_AT_ONCE = 8;
/** Prefix signatures read at once within one size: a size may hold thousands of files (a camera's raw images). */
const SIGNING_AT_ONCE = 8;
/** Descriptors kept open per size, for later comparisons: all sizes at once stay within 256. */
const FILES_PER_SIZE = 256 / SIZES_AT_ONCE;

/** What every size shares: the run's options, report and directory times. */
export interface Run {
  options: DedupeOptions;
  report: DedupeReport;
  hasher: XxHash;
  times: DirectoryTimes;
  skip: (skipped: Skipped) => void;
}

interface Work extends Run {
  files: OpenFiles<Inode>;
  countRead: (n: number) => void;
}

/** Links what is identical among `inodes`, all of one size. */
export async function dedupeSize(inodes: Inode[], run: Run): Promise<void> {
  const { options, report } = run;
  for (const candidates of partition(inodes, (inode) => (options.contentOnly ? '' : metadataKey(inode.stat)))) {
    if (candidates.length < 2) continue;
    const work: Work = { ...run, files: new OpenFiles(FILES_PER_SIZE), countRead: (n) => (report.bytesRead += n) };
    try {
      const grown = new Set<Inode>();
      if (candidates.length === 2 && candidates.some((inode) => inode.prefix === undefined)) {
        // Two files: comparing them reads no more than signing first would, and one round of reads fewer.
        await linkIdentical(candidates, grown, work);
      } else {
        await forEachAtOnce(
          candidates.filter((inode) => inode.prefix === undefined),
          SIGNING_AT_ONCE,
          (inode) => signInode(inode, work),
        );
        for (const same of partition(candidates, (inode) => (inode.unusable ? undefined : inode.prefix))) {
          if (same.length >= 2) await linkIdentical(same, grown, work);
        }
      }
      report.groups += grown.size;
      if (!options.dryRun && options.cache) remember(candidates, grown, options.cache);
    } finally {
      work.files.closeAll();
    }
  }
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

/** The inode's file open for reading, or null (and the inode set aside) if it cannot be opened. */
function openInode(inode: Inode, work: Work): number | null {
  try {
    return work.files.acquire(inode, inode.paths[0]!.path);
  } catch (error) {
    setAsideUnreadable(inode, error as NodeJS.ErrnoException, work);
    return null;
  }
}

/** A file gone since the scan changed; one that cannot be read is reported. */
function setAsideUnreadable(inode: Inode, error: NodeJS.ErrnoException, work: Work): void {
  inode.unusable = true;
  if (error.code === 'ENOENT') work.report.changed++;
  else work.skip({ path: inode.paths[0]!.path, kind: 'unreadable', reason: `cannot read: ${error.message}` });
}

/** Read the file's prefix signature; a file no longer than the prefix is thereby hashed whole. */
async function signInode(inode: Inode, work: Work): Promise<void> {
  inode.readAtNs ??= nowNs();
  const fd = openInode(inode, work);
  if (fd === null) return;
  let prefix: string | null;
  try {
    prefix = await prefixSignature(work.hasher, fd, inode.stat, work.countRead);
  } catch (error) {
    setAsideUnreadable(inode, error as NodeJS.ErrnoException, work);
    return;
  } finally {
    work.files.release(inode, fd);
  }
  work.report.filesHashed++;
  if (prefix === null) {
    work.report.changed++;
    inode.unusable = true;
    return;
  }
  inode.prefix = prefix;
  if (inode.stat.size <= BigInt(PREFIX_BYTES)) inode.hash = prefix;
}

/** A prefix signature learned while comparing counts as one read to sign the file. */
function learnPrefix(inode: Inode, prefix: string | undefined, report: DedupeReport): void {
  if (inode.prefix !== undefined || prefix === undefined) return;
  inode.prefix = prefix;
  report.filesHashed++;
}

/**
 * One set of inodes with the same size, metadata (unless content-only) and
 * prefix signature (or a pair, whose signatures the comparison reads). The file kept is the one with the most links already
 * (ties: the first path in byte order), so existing link groups grow rather
 * than move. Each other inode is compared with the kept one; one that differs
 * becomes a kept file of its own for those after it. Whole-content hashes,
 * known or learned while comparing, skip comparisons that cannot match. At the
 * link limit the inode being linked becomes the kept file for those after it.
 */
async function linkIdentical(inodes: Inode[], grown: Set<Inode>, work: Work): Promise<void> {
  const { report, files } = work;
  inodes.sort((a, b) => (a.stat.nlink !== b.stat.nlink ? Number(b.stat.nlink - a.stat.nlink) : comparePaths(a.paths[0]!.path, b.paths[0]!.path)));
  const kept: Inode[] = [];
  for (const inode of inodes) {
    let placed = false;
    for (let k = 0; k < kept.length && !placed; k++) {
      const target = kept[k]!;
      if (target.hash !== undefined && inode.hash !== undefined && target.hash !== inode.hash) continue;
      if (target.prefix !== undefined && inode.prefix !== undefined && target.prefix !== inode.prefix) continue;
      const hashesKnownEqual = target.hash !== undefined && target.hash === inode.hash;
      target.readAtNs ??= nowNs();
      inode.readAtNs ??= nowNs();
      const targetFd = openInode(target, work);
      if (targetFd === null) {
        kept.splice(k--, 1);
        continue;
      }
      const inodeFd = openInode(inode, work);
      if (inodeFd === null) {
        files.release(target, targetFd);
        placed = true;
        continue;
      }
      let compared: Awaited<ReturnType<typeof compareFiles>>;
      try {
        compared = await compareFiles(
          work.hasher,
          { fd: targetFd, stat: target.stat, hash: target.hash, prefix: target.prefix },
          { fd: inodeFd, stat: inode.stat, hash: inode.hash, prefix: inode.prefix },
          work.countRead,
        );
      } finally {
        files.release(target, targetFd);
        files.release(inode, inodeFd);
      }
      const { verdict, hashes, prefixes } = compared;
      if (verdict === 'second changed') {
        report.changed++;
        inode.unusable = true;
        placed = true;
        continue;
      }
      if (verdict === 'first changed') {
        report.changed++;
        target.unusable = true;
        files.forget(target);
        kept.splice(k--, 1);
        continue;
      }
      [target.hash, inode.hash] = hashes;
      learnPrefix(target, prefixes[0], report);
      learnPrefix(inode, prefixes[1], report);
      if (verdict === 'different') {
        if (hashesKnownEqual || (target.hash !== undefined && target.hash === inode.hash)) report.collisions++;
        continue;
      }
      placed = true;
      const outcome = linkInodeInto(target, inode, work.options, report, work.times);
      if (outcome !== 'none') grown.add(target);
      if (outcome === 'link limit') {
        files.forget(target);
        kept.splice(k, 1, inode); // the full one can take no more
      }
    }
    if (!placed) kept.push(inode);
    else if (!kept.includes(inode)) files.forget(inode);
  }
}
