// Repository layout, creation and validation.
//   REPO/.lb/format, .lb/lock, .lb/objects/, .lb/tmp/, .lb/partial/ (interrupted transfers)
//   REPO/YYYY.MM.DD-HH.MM.SS/{tree/,manifest,log}
//   REPO/latest -> newest snapshot
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { filesystemType, missingFeatures } from './probe.js';

export const FORMAT_TEXT = 'lb repository\nformat 1\nhash sha256\n';
export const SNAPSHOT_NAME = /^[0-9]{4}\.[0-9]{2}\.[0-9]{2}-[0-9]{2}\.[0-9]{2}\.[0-9]{2}$/;

export class RepositoryError extends Error {}

/** The path given cannot hold a repository: the user must name another (exit status 2, as for any bad command line). */
export class RepositoryRefused extends RepositoryError {}

export class Repository {
  readonly lbDir: string;
  readonly objectsDir: string;
  readonly tmpDir: string;
  /** Large transfers in progress, by content hash: what an interrupted run received, kept to resume from. */
  readonly partialDir: string;

  private constructor(readonly root: string) {
    this.lbDir = join(root, '.lb');
    this.objectsDir = join(this.lbDir, 'objects');
    this.tmpDir = join(this.lbDir, 'tmp');
    this.partialDir = join(this.lbDir, 'partial');
  }

  /** Open the repository at `root`, creating it if the directory is missing or empty. */
  static openOrCreate(root: string): Repository {
    const repo = new Repository(root);
    let stat;
    try {
      stat = lstatSync(root);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (stat && !stat.isDirectory()) throw new RepositoryRefused(`${root} exists and is not a directory`);
    if (stat && existsSync(join(repo.lbDir, 'format'))) {
      const text = readFileSync(join(repo.lbDir, 'format'), 'utf8');
      if (text !== FORMAT_TEXT) throw new RepositoryError(`${root} is an lb repository of an unknown format`);
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
   * but not yet renamed into place, a stale lock moved aside. Only while holding the lock.
   */
  clearLeftovers(): void {
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(this.tmpDir)) rmSync(join(this.tmpDir, name), { recursive: true, force: true });
    for (const name of readdirSync(this.root)) if (name.startsWith('.latest-')) rmSync(join(this.root, name), { force: true });
    for (const name of readdirSync(this.lbDir)) if (name.startsWith('lock.stale-')) rmSync(join(this.lbDir, name), { force: true });
  }

  partialPath(hash: string): string {
    return join(this.partialDir, hash);
  }

  /** After a complete run: what is still partial belongs to content no longer wanted. */
  clearPartials(): void {
    rmSync(this.partialDir, { recursive: true, force: true });
  }

  latest(): string | null {
    try {
      const name = readlinkSync(join(this.root, 'latest'));
      return SNAPSHOT_NAME.test(name) ? name : null;
    } catch {
      return null;
    }
  }

  snapshotDir(name: string): string {
    return join(this.root, name);
  }

  /** A free snapshot name at or after `wanted` (two runs in one second get consecutive names). */
  freeSnapshotName(wanted: string): string {
    let name = wanted;
    while (existsSync(join(this.root, name))) name = nextSecond(name);
    return name;
  }
}

/** Where a new repository's .lb is built, then renamed into place: a run killed meanwhile leaves only this behind. */
const CREATING = '.lb.creating';

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

function nextSecond(name: string): string {
  const [y, mo, d, h, mi, s] = name.split(/[.-]/).map(Number) as [number, number, number, number, number, number];
  return snapshotNameFor(new Date(new Date(y, mo - 1, d, h, mi, s).getTime() + 1000));
}
