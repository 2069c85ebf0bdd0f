// The object store: one inode per (content, metadata). An object's name is
//   objects/<h0h1h2>/<sha256>.<mode octal>.<uid>.<gid>.<mtime ns>
// so "this content with this metadata?" is one lstat and "this content at all?"
// reads one small directory. One level of 4096 directories, not two of 256:
// a two-level fan-out costs a mkdir for nearly every object in a young
// repository (65,536 leaves), and creating directories is what a first backup
// pays most for; 4096 still keeps about 250 names per directory at a million objects. New objects wait in the run's incoming/ folder and
// enter the store only after their bytes are synced to disk, so the store never
// holds an object whose content a power cut could have lost.
import {
  chmodSync,
  chownSync,
  constants,
  copyFileSync,
  fsyncSync,
  lstatSync,
  mkdirSync,
  open,
  openSync,
  closeSync,
  readdirSync,
  renameSync,
  unlinkSync,
  utimesSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import type { StoreState } from '../diff/decide.js';

export interface ObjectMeta {
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
}

/**
 * Staging is spread over this many subdirectories: creating thousands of files
 * in one directory that is constantly renamed out of costs several times more
 * per create on ext4 than the same work spread thin.
 */
const STAGING_SHARDS = 64;

/**
 * Temporary files made ahead, on libuv's thread pool. Creating a file can wait
 * on the journal for far longer than writing it (half a millisecond and more
 * on a busy ext4); made ahead, several creates wait at once and the receiving
 * loop never waits on one.
 */
const READY_TEMP_FILES = 32;

/** Sync new objects to disk and publish them to the store after this many. */
const FLUSH_OBJECTS = 4096;
const FLUSH_BYTES = 256 * 1024 * 1024;

export function objectName(hash: string, meta: ObjectMeta): string {
  return `${hash}.${meta.mode.toString(8)}.${meta.uid}.${meta.gid}.${meta.mtimeNs}`;
}

/** Seconds as the double utimes wants, split so that large nanosecond counts lose no more than the double must. */
export function toSeconds(ns: bigint): number {
  return Number(ns / 1_000_000_000n) + Number(ns % 1_000_000_000n) / 1e9;
}

function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException).code;
}

export class ObjectStore {
  /** Objects made this run and not yet published: hash -> their paths in incoming/. */
  private readonly unpublished = new Map<string, string[]>();
  private readonly shardsMade = new Set<number>();
  private tempCounter = 0;
  private readonly readyTemps: { path: string; fd: number }[] = [];
  private tempsInFlight = 0;
  private closed = false;
  private unpublishedCount = 0;
  private unpublishedBytes = 0;
  private readonly madeDirs = new Set<string>();
  bytesStored = 0;

  constructor(
    private readonly objectsDir: string,
    private readonly incomingDir: string,
    /** Only root may give an object another owner. */
    private readonly setOwner: boolean,
  ) {}

  private storeDir(hash: string): string {
    return join(this.objectsDir, hash.slice(0, 3));
  }

  /** An open, empty file in the staging area, to be adopted or discarded; made ahead when it can be. */
  tempFile(): { path: string; fd: number } {
    const ready = this.readyTemps.shift() ?? { path: '', fd: -1 };
    if (ready.fd < 0) {
      ready.path = this.tempPath();
      ready.fd = openSync(ready.path, 'wx', 0o600);
    }
    this.makeTempsAhead();
    return ready;
  }

  private makeTempsAhead(): void {
    while (!this.closed && this.readyTemps.length + this.tempsInFlight < READY_TEMP_FILES) {
      const path = this.tempPath();
      this.tempsInFlight++;
      open(path, 'wx', 0o600, (error, fd) => {
        this.tempsInFlight--;
        if (error) return; // made on demand instead
        if (this.closed) closeSync(fd);
        else this.readyTemps.push({ path, fd });
      });
    }
  }

  /** Close the files made ahead; the staging directory is removed with the run's leftovers. */
  close(): void {
    this.closed = true;
    for (const t of this.readyTemps.splice(0)) closeSync(t.fd);
  }

  /** A fresh path in the staging area for a file to be adopted or discarded. */
  tempPath(): string {
    const n = this.tempCounter++;
    const shard = n % STAGING_SHARDS;
    const dir = join(this.incomingDir, String(shard));
    if (!this.shardsMade.has(shard)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.shardsMade.add(shard);
    }
    return join(dir, `tmp-${n}`);
  }

  /** The path of the object with this content and metadata, or null. */
  locate(hash: string, meta: ObjectMeta): string | null {
    const name = objectName(hash, meta);
    const staged = this.unpublished.get(hash)?.find((p) => basename(p) === name);
    if (staged) return staged;
    const path = join(this.storeDir(hash), name);
    try {
      lstatSync(path);
      return path;
    } catch (error) {
      if (errno(error) === 'ENOENT') return null;
      throw error;
    }
  }

  /** Any object with this content, whatever its metadata, or null. */
  anyWithContent(hash: string): string | null {
    const fresh = this.unpublished.get(hash);
    if (fresh?.length) return fresh[0]!;
    let names: string[];
    try {
      names = readdirSync(this.storeDir(hash));
    } catch (error) {
      if (errno(error) === 'ENOENT') return null;
      throw error;
    }
    const prefix = hash + '.';
    const found = names.find((n) => n.startsWith(prefix));
    return found === undefined ? null : join(this.storeDir(hash), found);
  }

  state(hash: string, meta: ObjectMeta): StoreState {
    if (this.locate(hash, meta)) return 'exact';
    return this.anyWithContent(hash) ? 'content' : 'absent';
  }

  /** Adopt a verified temporary file as the object (hash, meta); returns its path. */
  adopt(tempPath: string, hash: string, meta: ObjectMeta, size: number): string {
    const existing = this.locate(hash, meta);
    if (existing) {
      unlinkSync(tempPath);
      return existing;
    }
    this.applyMeta(tempPath, meta);
    const path = join(dirname(tempPath), objectName(hash, meta));
    renameSync(tempPath, path);
    this.noteUnpublished(hash, path, size);
    return path;
  }

  discardTemp(tempPath: string): void {
    unlinkSync(tempPath);
  }

  /** Make the object (hash, meta) from a stored object of the same content: a reflink where the filesystem can. */
  copyFrom(sourcePath: string, hash: string, meta: ObjectMeta, size: number): string {
    const path = join(dirname(this.tempPath()), objectName(hash, meta));
    copyFileSync(sourcePath, path, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
    this.applyMeta(path, meta);
    this.noteUnpublished(hash, path, size);
    return path;
  }

  private noteUnpublished(hash: string, path: string, size: number): void {
    const paths = this.unpublished.get(hash);
    if (paths) paths.push(path);
    else this.unpublished.set(hash, [path]);
    this.unpublishedCount++;
    this.unpublishedBytes += size;
    this.bytesStored += size;
    if (this.unpublishedCount >= FLUSH_OBJECTS || this.unpublishedBytes >= FLUSH_BYTES) this.publish();
  }

  private applyMeta(path: string, meta: ObjectMeta): void {
    if (this.setOwner && (meta.uid !== process.getuid!() || meta.gid !== process.getgid!())) chownSync(path, meta.uid, meta.gid);
    // After chown: changing the owner clears set-id bits.
    chmodSync(path, meta.mode);
    const seconds = toSeconds(meta.mtimeNs);
    utimesSync(path, seconds, seconds);
  }

  /** Sync what was written, then move this run's new objects into the store. */
  publish(): void {
    if (this.unpublishedCount === 0) return;
    syncFilesystem(this.incomingDir, () => {
      for (const paths of this.unpublished.values()) for (const p of paths) fsyncPath(p);
    });
    for (const [hash, paths] of this.unpublished) {
      const dir = this.storeDir(hash);
      if (!this.madeDirs.has(dir)) {
        mkdirSync(dir, { recursive: true, mode: 0o755 }); // no error when it exists
        this.madeDirs.add(dir);
      }
      for (const p of paths) renameSync(p, join(dir, basename(p)));
    }
    this.unpublished.clear();
    this.unpublishedCount = 0;
    this.unpublishedBytes = 0;
  }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * One syncfs(2) for the whole filesystem (through coreutils `sync -f`, as Node has
 * no binding) costs far less than an fsync per object; `fallback` runs where that
 * command is missing.
 */
export function syncFilesystem(dir: string, fallback: () => void): void {
  const result = spawnSync('sync', ['-f', dir], { stdio: 'ignore' });
  if (result.error || result.status !== 0) fallback();
}
