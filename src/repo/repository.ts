// Repository layout, creation and validation.
//   REPO/.lb/format, .lb/lock, .lb/objects/, .lb/tmp/, .lb/partial/ (interrupted transfers)
//   REPO/YYYY.MM.DD-HH.MM.SS/{tree/,manifest,log}
//   REPO/latest -> newest snapshot
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { removeTree } from './deep-path.js';
import { MANIFEST_HEADER } from './manifest.js';

export const FORMAT_TEXT = 'lb repository\nformat 1\nhash sha256\n';
export const SNAPSHOT_NAME = /^[0-9]{4}\.[0-9]{2}\.[0-9]{2}-[0-9]{2}\.[0-9]{2}\.[0-9]{2}$/;

export class RepositoryError extends Error {}

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
    if (stat && !stat.isDirectory()) throw new RepositoryError(`${root} exists and is not a directory`);
    if (stat && existsSync(join(repo.lbDir, 'format'))) {
      const text = readFileSync(join(repo.lbDir, 'format'), 'utf8');
      if (text !== FORMAT_TEXT) throw new RepositoryError(`${root} is an lb repository of an unknown format`);
      return repo;
    }
    if (stat && readdirSync(root).length > 0) {
      throw new RepositoryError(`${root} is not empty and not an lb repository; refusing to write there`);
    }
    try {
      mkdirSync(root, { recursive: true, mode: 0o755 });
    } catch (error) {
      // A recursive mkdir on a read-only or forbidden filesystem says ENOENT; find the real reason.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') accessibleAncestor(root);
      throw error;
    }
    mkdirSync(repo.objectsDir, { recursive: true, mode: 0o755 });
    mkdirSync(repo.tmpDir, { mode: 0o700 });
    // Written last: a directory with a format file is a complete repository.
    writeFileSync(join(repo.lbDir, 'format'), FORMAT_TEXT, { mode: 0o644 });
    return repo;
  }

  /**
   * Remove what killed runs left: their work in .lb/tmp, a `latest` link made
   * but not yet renamed into place, a stale lock moved aside. Only while holding the lock.
   */
  clearLeftovers(): void {
    mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(this.tmpDir)) removeTree(join(this.tmpDir, name));
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

  /** Snapshot directories under their final names, oldest first (names sort in creation order). */
  snapshotNames(): string[] {
    return readdirSync(this.root)
      .filter((name) => SNAPSHOT_NAME.test(name))
      .sort();
  }

  /** A snapshot is usable as the base of the next one when its manifest is there and begins as a manifest. */
  private hasManifest(name: string): boolean {
    try {
      const fd = openSync(join(this.snapshotDir(name), 'manifest'), 'r');
      try {
        const head = Buffer.alloc(MANIFEST_HEADER.length);
        return readSync(fd, head, 0, head.length, 0) === head.length && head.toString() === MANIFEST_HEADER;
      } finally {
        closeSync(fd);
      }
    } catch {
      return false;
    }
  }

  /**
   * The snapshot the next one is compared against: `latest`, or when that link
   * dangles or its snapshot lost its manifest, the newest complete snapshot, with
   * a warning; `latest` is then repaired to point at it. Only while holding the lock.
   */
  baseSnapshot(warn: (line: string) => void): string | null {
    const linked = this.latest();
    const hasLink = lstatOrNull(join(this.root, 'latest')) !== null;
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
      else rmSync(join(this.root, 'latest'), { force: true });
    }
    return base;
  }

  /** Move `latest` to `name` atomically: a new link, renamed over the old one. */
  pointLatestAt(name: string): void {
    const link = join(this.root, `.latest-${process.pid}`);
    rmSync(link, { force: true });
    symlinkSync(name, link);
    renameSync(link, join(this.root, 'latest'));
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
    while (existsSync(join(this.root, name))) name = nextSecond(name);
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

/** Throws the error (EROFS, EACCES) that keeps the nearest existing ancestor of `path` from being written. */
function accessibleAncestor(path: string): void {
  let existing = dirname(path);
  while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
  accessSync(existing, constants.W_OK);
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
