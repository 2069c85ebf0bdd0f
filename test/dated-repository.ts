// Repositories for the prune tests. Retention reads snapshot names, so snapshots need chosen dates:
// each is a real backup whose directory is then renamed to the chosen (past) name, with `latest`
// moved by an atomic rename as lb moves it. The source as it was at each snapshot is kept (`rsync -aH`)
// for the rsync oracle. And the checks every prune must pass.
import { spawnSync } from 'node:child_process';
import { lstatSync, readdirSync, readlinkSync, renameSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { backup, lb, rsync, rsyncDifferences, snapshots } from './helpers.js';

export class DatedRepository {
  readonly src: string;
  readonly repo: string;
  readonly catalog: string;
  /** Snapshot name -> the source as it was then. */
  readonly copies: string;

  constructor(readonly work: string) {
    this.src = join(work, 'src');
    this.repo = join(work, 'repo');
    this.catalog = join(work, 'catalog.sqlite');
    this.copies = join(work, 'copies');
    spawnSync('mkdir', ['-p', this.src, this.copies]);
  }

  /** A backup of the source as it is now, named `name`. */
  backupAs(name: string, extra: string[] = []): void {
    backup(this.src, this.repo, this.catalog, ['--always', ...extra]);
    this.adopt(name);
  }

  /** The snapshot a backup just made (the one `latest` points to) renamed to `name`, a copy of the source kept. */
  adopt(name: string): void {
    const made = readlinkSync(join(this.repo, 'latest'));
    renameSync(join(this.repo, made), join(this.repo, name));
    pointLatest(this.repo, name);
    // rsync, not cp: it works relative to the copy's root, so source paths near PATH_MAX fit there too.
    rsync(['-aH', this.src + '/', join(this.copies, name) + '/']);
  }

  /** The same repository and source copies in `work` (cp -a of the whole repository keeps its hard links). */
  copyTo(work: string): DatedRepository {
    const copy = new DatedRepository(work);
    copyTree(this.repo, copy.repo);
    spawnSync('rm', ['-rf', copy.copies]);
    copyTree(this.copies, copy.copies);
    return copy;
  }
}

export function copyTree(from: string, to: string): void {
  const r = spawnSync('cp', ['-a', from, to], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cp -a failed: ${r.stderr}`);
}

/** `latest` moved as lb moves it: a new link renamed over the old one. */
export function pointLatest(repo: string, name: string): void {
  const link = join(repo, '.latest-test');
  symlinkSync(name, link);
  renameSync(link, join(repo, 'latest'));
}

/** Every object of the store: its name (fan-out/name) and lstat. */
export function storeObjects(repo: string): Map<string, { ino: number; nlink: number; size: number }> {
  const objects = new Map<string, { ino: number; nlink: number; size: number }>();
  const store = join(repo, '.lb', 'objects');
  for (const fanout of readdirSync(store)) {
    for (const name of readdirSync(join(store, fanout))) {
      const { ino, nlink, size } = lstatSync(join(store, fanout, name));
      objects.set(`${fanout}/${name}`, { ino, nlink, size });
    }
  }
  return objects;
}

/** The inodes of every regular file under `tree` (find: it walks relative to directories, so any depth). */
export function fileInodes(tree: string): Set<number> {
  const r = spawnSync('find', [tree, '-type', 'f', '-printf', '%i\\n'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`find failed: ${r.stderr}`);
  return new Set(r.stdout.split('\n').filter((line) => line !== '').map(Number));
}

/** `du -sb`: apparent bytes, each inode once. */
export function apparentBytes(dir: string): number {
  return Number(spawnSync('du', ['-sb', dir], { encoding: 'utf8' }).stdout.split('\t')[0]);
}

export function storedBytes(repo: string): number {
  const r = lb(['du', repo, '--json']);
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { totals: { storedBytes: number } }).totals.storedBytes;
}

/**
 * What every finished prune leaves: exactly the snapshots `kept`, each equal to its source copy (rsync oracle);
 * `latest` at the newest; a store of exactly the objects they link, each linked (link count > 1); no trash left;
 * `lb verify --read-data` content. `context` says which run this is, for a failure's message.
 */
export function expectPrunedTo(repository: DatedRepository, kept: string[], context = ''): void {
  const { repo, copies } = repository;
  expect(snapshots(repo), context).toEqual([...kept].sort());
  expect(readlinkSync(join(repo, 'latest')), context).toBe([...kept].sort().at(-1));
  for (const name of kept) expect(rsyncDifferences(join(copies, name), join(repo, name, 'tree')), `${context} ${name}`).toEqual([]);
  const linked = new Set(kept.flatMap((name) => [...fileInodes(join(repo, name, 'tree'))]));
  const store = [...storeObjects(repo).entries()];
  expect(store.filter(([, o]) => o.nlink < 2).map(([name]) => name), `${context}: objects only the store links`).toEqual([]);
  expect(new Set(store.map(([, o]) => o.ino)), context).toEqual(linked);
  expect(readdirSync(join(repo, '.lb', 'trash')), context).toEqual([]);
  const verify = lb(['verify', repo, '--read-data']);
  expect(verify.stderr + verify.stdout, context).toMatch(/no problems/);
  expect(verify.status, context).toBe(0);
}
