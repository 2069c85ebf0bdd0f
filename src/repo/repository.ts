// Repository layout, creation and validation.
//   REPO/.lb/format, .lb/lock, .lb/objects/, .lb/tmp/, .lb/partial/ (interrupted transfers)
//   REPO/YYYY.MM.DD-HH.MM.SS/{tree/,manifest,log}
//   REPO/latest -> newest snapshot
//   REPO/<series>/ the same snapshots and latest for one series (--series), same .lb
import { spawnSync } from 'node:child_process';
import { keepReserve } from './lock.js';
import { markWritten } from './object-guard.js';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { removeTree } from './deep-path.js';
import { FORMAT_TEXT, RepositoryError, RepositoryRefused, formatOf, hasManifest, latestLink, snapshotNames } from './layout.js';
import { filesystemType, missingFeatures } from './probe.js';
import { RepositoryReader } from './reader.js';
import { checkSeriesName, checkSeriesWritable, makeSeriesDirectory, seriesNames } from './series.js';

export { FORMAT_TEXT, RepositoryError, RepositoryRefused, SNAPSHOT_NAME } from './layout.js';

export class Repository {
  readonly lbDir: string;
  readonly objectsDir: string;
  readonly tmpDir: string;
  /** Large transfers in progress, by content hash: what an interrupted run received, kept to resume from. */
  readonly partialDir: string;
  /** As `.lb/format` says; a format 1 repository becomes format 2 with its first new snapshot. */
  private format: 1 | 2 = 2;
  /** Where this run's snapshots and `latest` are: the repository itself, or its series' directory. */
  readonly snapshotRoot: string;

  private constructor(
    readonly root: string,
    /** The series written (--series), or null for the top level. */
    readonly series: string | null = null,
  ) {
    this.snapshotRoot = series === null ? root : join(root, series);
    this.lbDir = join(root, '.lb');
    this.objectsDir = join(this.lbDir, 'objects');
    this.tmpDir = join(this.lbDir, 'tmp');
    this.partialDir = join(this.lbDir, 'partial');
  }

  /**
   * A repository opened to read (no lock, nothing written), or to write a backup
   * into (created if the directory is missing or empty).
   */
  static open(root: string, mode: 'read', series?: string | null): RepositoryReader;
  static open(root: string, mode: 'write', series?: string | null): Repository;
  static open(root: string, mode: 'read' | 'write', series: string | null = null): RepositoryReader | Repository {
    return mode === 'read' ? RepositoryReader.open(root, series) : Repository.openOrCreate(root, series);
  }

  /**
   * Open the repository at `root`, creating it if the directory is missing or empty; with
   * `series`, to write that series (its directory is made by its first snapshot).
   */
  static openOrCreate(root: string, series: string | null = null): Repository {
    if (series !== null) checkSeriesName(series); // before anything is made
    const repo = new Repository(root, series);
    let stat;
    try {
      stat = lstatSync(root);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (stat && !stat.isDirectory()) throw new RepositoryRefused(`${root} exists and is not a directory`);
    if (stat && existsSync(join(repo.lbDir, 'format'))) {
      const format = formatOf(readFileSync(join(repo.lbDir, 'format'), 'utf8'));
      if (format === null) throw new RepositoryError(`${root} is an lb repository of an unknown format`);
      repo.format = format;
      if (series !== null) checkSeriesWritable(root, series);
      return repo;
    }
    if (stat && !holdsNothing(root)) {
      throw new RepositoryRefused(`${root} is not empty and not an lb repository; refusing to write there`);
    }
    const building = join(root, CREATING);
    if (stat) rmSync(building, { recursive: true, force: true });
    const rootMade = !stat && makeRepositoryDirectory(root);
    let buildingMade = false;
    try {
      mkdirSync(building, { mode: 0o755 });
      buildingMade = true;
      refuseUnsuitableFilesystem(root, join(building, 'probe'));
      mkdirSync(join(building, 'objects'), { mode: 0o755 });
      mkdirSync(join(building, 'tmp'), { mode: 0o700 });
      // Made now, while there is space: a prune of a full disk needs no new directory to free it,
      // and the reserve makes room for its lock file.
      mkdirSync(join(building, 'trash'), { mode: 0o700 });
      keepReserve(building);
      writeFileSync(join(building, 'format'), FORMAT_TEXT, { mode: 0o644 });
      // Renamed into place last: a directory with .lb/format is a complete repository.
      renameSync(building, repo.lbDir);
    } catch (error) {
      // A repository that could not be made leaves nothing: a directory lb made goes, one it found stays empty.
      try {
        if (buildingMade) rmSync(building, { recursive: true, force: true });
        if (rootMade) rmdirSync(root);
      } catch {
        // The failure that stopped the creation is the one to report.
      }
      throw error;
    }
    return repo;
  }

  /**
   * Remove what killed runs left: their work in .lb/tmp, a `latest` link made
   * but not yet renamed into place, a stale lock moved aside, the snapshots a
   * prune moved to the trash. Only while holding the lock.
   */
  clearLeftovers(): void {
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(this.tmpDir)) removeTree(join(this.tmpDir, name));
    this.emptyTrash();
    // For a repository made before prune: the trash is there before a full disk needs a prune.
    withSpaceOrNot(() => mkdirSync(this.trashDir, { recursive: true, mode: 0o700 }));
    for (const dir of [this.root, ...seriesNames(this.root).map((name) => join(this.root, name))]) {
      for (const name of readdirSync(dir)) if (name.startsWith('.latest-')) rmSync(join(dir, name), { force: true });
    }
    for (const name of readdirSync(this.lbDir)) if (name.startsWith('lock.stale-')) rmSync(join(this.lbDir, name), { force: true });
  }

  /**
   * Before a format 2 manifest is published into a format 1 repository: `.lb/format` says format 2
   * from then on (written in .lb/tmp, synced, renamed over), so an older lb refuses the repository
   * rather than misreading it. Only while holding the lock.
   */
  upgradeFormat(): void {
    if (this.format === 2) return;
    const fresh = join(this.tmpDir, 'format');
    writeFileSync(fresh, FORMAT_TEXT, { mode: 0o644, flush: true });
    renameSync(fresh, join(this.lbDir, 'format'));
    this.format = 2;
  }

  /** Snapshots being deleted by a prune: out of every reader's sight, their trees removed here. */
  get trashDir(): string {
    return join(this.lbDir, 'trash');
  }

  private emptyTrash(): void {
    let names: string[];
    try {
      names = readdirSync(this.trashDir);
    } catch {
      return; // no prune has run here
    }
    const paths = names.map((name) => join(this.trashDir, name));
    // coreutils' rm is the floor for deleting trees (it works relative to directory descriptors); what it
    // cannot remove (a read-only directory, as another user than root) removeTree makes writable and removes.
    if (paths.length > 0) {
      const rm = spawnSync('rm', ['-rf', '--', ...paths], { stdio: 'ignore' });
      // Killed, it stops the run as a kill of lb would: the trash is emptied by the next.
      if (rm.signal) throw new Error(`rm was stopped by ${rm.signal} while emptying the trash; the next run empties it`);
    }
    for (const path of paths) removeTree(path);
    // Unlinking tree files changed their objects' ctimes, by lb's own hand: no backup must re-hash them for it.
    if (names.length > 0) withSpaceOrNot(() => markWritten(this.lbDir));
  }

  partialPath(hash: string): string {
    return join(this.partialDir, hash);
  }

  /** After a complete run: what is still partial belongs to content no longer wanted. */
  clearPartials(): void {
    rmSync(this.partialDir, { recursive: true, force: true });
  }

  latest(): string | null {
    return latestLink(this.snapshotRoot);
  }

  snapshotDir(name: string): string {
    return join(this.snapshotRoot, name);
  }

  /** This run's snapshots; none in a series not made yet. */
  snapshotNames(): string[] {
    return this.series !== null && lstatOrNull(this.snapshotRoot) === null ? [] : snapshotNames(this.snapshotRoot);
  }

  /** Before the first snapshot of a series is published: its directory, made here (never through a symlink). */
  makeSnapshotRoot(): void {
    if (this.series !== null) makeSeriesDirectory(this.root, this.series);
  }

  /** A snapshot is usable as the base of the next one when it is complete. */
  private hasManifest(name: string): boolean {
    return hasManifest(this.snapshotRoot, name);
  }

  /**
   * The snapshot the next one is compared against: `latest`, or when that link
   * dangles or its snapshot lost its manifest, the newest complete snapshot, with
   * a warning; `latest` is then repaired to point at it. Only while holding the lock.
   */
  baseSnapshot(warn: (line: string) => void): string | null {
    const linked = this.latest();
    const hasLink = lstatOrNull(join(this.snapshotRoot, 'latest')) !== null;
    if (linked !== null && this.hasManifest(linked)) return linked;
    const complete = this.snapshotNames().filter((name) => this.hasManifest(name));
    const base = complete[complete.length - 1] ?? null;
    for (const name of this.snapshotNames()) {
      if (!complete.includes(name) && (base === null || name > base)) {
        warn(`snapshot ${name} has no manifest; it is kept but not used as the base of new snapshots`);
      }
    }
    if (hasLink) {
      const was = linked === null ? 'is not a snapshot link' : existsSync(this.snapshotDir(linked)) ? `points to ${linked}, which has no manifest` : `points to ${linked}, which is gone`;
      warn(`latest ${was}; ${base ? `repaired to point to ${base}, the newest complete snapshot` : 'removed, as no complete snapshot is left'}`);
      if (base) this.pointLatestAt(base);
      else rmSync(join(this.snapshotRoot, 'latest'), { force: true });
    }
    return base;
  }

  /** Move `latest` to `name` atomically: a new link, renamed over the old one. */
  pointLatestAt(name: string): void {
    const link = join(this.snapshotRoot, `.latest-${process.pid}`);
    rmSync(link, { force: true });
    symlinkSync(name, link);
    renameSync(link, join(this.snapshotRoot, 'latest'));
  }

  /**
   * The name for a new snapshot: the wanted one (the run's local start time), but
   * never at or before an existing snapshot, so names always sort in creation
   * order even when the clock went back (a DST fall-back, a corrected clock).
   */
  nextSnapshotName(wanted: string): string {
    const names = this.snapshotNames();
    const newest = names[names.length - 1];
    let name = newest !== undefined && newest >= wanted ? nextSecond(newest) : wanted;
    while (existsSync(join(this.snapshotRoot, name))) name = nextSecond(name);
    return name;
  }
}

function lstatOrNull(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

/** Where a new repository's .lb is built, then renamed into place: a run killed meanwhile leaves only this behind. */
const CREATING = '.lb.creating';

/**
 * Runs a write that only saves later work (a mark, a directory made ahead), whose failure on a full
 * disk must not stop what frees space: without it, a later run re-checks or makes it itself.
 */
export function withSpaceOrNot(write: () => void): void {
  try {
    write();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOSPC' && code !== 'EDQUOT') throw error;
  }
}

/** Empty, or holding only what a creation killed midway left: a directory a repository may be created in. */
export function holdsNothing(dir: string): boolean {
  return readdirSync(dir).every((name) => name === CREATING);
}

/**
 * Refuses a repository path whose parent is missing, as rsync does: only the
 * repository's own directory is ever created, so a mistyped path cannot start a
 * new repository somewhere unexpected.
 */
export function refuseMissingParent(root: string): void {
  const parent = dirname(root);
  let stat;
  try {
    stat = statSync(parent);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
    throw new RepositoryRefused(`cannot create repository ${root}: its parent ${parent} does not exist; create it first`);
  }
  if (!stat.isDirectory()) throw new RepositoryRefused(`cannot create repository ${root}: its parent ${parent} is not a directory`);
}

/** Makes the repository's directory (never a parent); true once made. */
function makeRepositoryDirectory(root: string): true {
  refuseMissingParent(root);
  try {
    mkdirSync(root, { mode: 0o755 });
  } catch (error) {
    // procfs and its like say ENOENT for a directory they will not make under a parent that exists.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    const parent = dirname(root);
    throw new RepositoryRefused(`cannot create repository ${root}: ${parent} (${filesystemType(parent) ?? 'unknown filesystem'}) does not allow new directories`);
  }
  return true;
}

/** Probes the new repository's filesystem in `scratch` (removed after) and refuses one that cannot hold a repository. */
function refuseUnsuitableFilesystem(root: string, scratch: string): void {
  mkdirSync(scratch, { mode: 0o700 });
  const missing = missingFeatures(scratch, process.getuid?.() === 0);
  rmSync(scratch, { recursive: true, force: true });
  if (missing.length === 0) return;
  throw new RepositoryRefused(
    `cannot keep a repository in ${root} (${filesystemType(root) ?? 'unknown filesystem'}): ${missing.join(', ')}; ` +
      'choose a place on a filesystem such as ext4, xfs or btrfs',
  );
}

export function snapshotNameFor(date: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${date.getFullYear()}.${p(date.getMonth() + 1)}.${p(date.getDate())}-${p(date.getHours())}.${p(date.getMinutes())}.${p(date.getSeconds())}`;
}

/** The name one second later, by calendar arithmetic on the name itself (no time zone involved). */
export function nextSecond(name: string): string {
  const [y, mo, d, h, mi, s] = name.split(/[.-]/).map(Number) as [number, number, number, number, number, number];
  const next = new Date(Date.UTC(y, mo - 1, d, h, mi, s) + 1000);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${next.getUTCFullYear()}.${p(next.getUTCMonth() + 1)}.${p(next.getUTCDate())}-${p(next.getUTCHours())}.${p(next.getUTCMinutes())}.${p(next.getUTCSeconds())}`;
}
