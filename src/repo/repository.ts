// Repository layout, creation and validation.
//   REPO/.lb/format, .lb/lock, .lb/objects/, .lb/tmp/, .lb/partial/ (interrupted transfers)
//   REPO/YYYY.MM.DD-HH.MM.SS/{tree/,manifest,log}
//   REPO/latest -> newest snapshot
import { accessSync, constants, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

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

function nextSecond(name: string): string {
  const [y, mo, d, h, mi, s] = name.split(/[.-]/).map(Number) as [number, number, number, number, number, number];
  return snapshotNameFor(new Date(new Date(y, mo - 1, d, h, mi, s).getTime() + 1000));
}
