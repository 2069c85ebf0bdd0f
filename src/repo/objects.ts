// The object store: one inode per (content, metadata), in 256 directories by the
// first two hex digits of the SHA-256:
//   objects/ab/<sha256>                            the content's primary object
//   objects/ab/<sha256>.<mode>.<uid>.<gid>.<mtime>  the same content with other metadata
// "This content at all?" is one lstat of the primary; "this content with this
// metadata?" is that lstat (the primary's own inode says its metadata) or one
// more for the variant. Reading metadata from the inode rather than trusting a
// name also stays right if someone chmods a file inside a snapshot.
// Why not more directories: every fan-out directory is one more inode to create,
// and creating inodes is what a first backup pays most for (256 are made at
// most; 65,536 leaves of aa/bb cost a mkdir for nearly every early object).
// New objects wait in the run's staging area (staging-files.ts) and enter the
// store only after their bytes are synced, so the store never holds an object a
// power cut could have emptied.
import { closeSync, linkSync, lstatSync, mkdirSync, renameSync, unlinkSync, type BigIntStats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { StoreFinding } from '../diff/plan.js';
import { atPath } from './deep-path.js';
import {
  applyMeta,
  finishOpenFile,
  fsyncPath,
  hasMeta,
  lstatOrNull,
  sameMeta,
  syncFilesystem,
  variantName,
  type ObjectMeta,
  type OpenObjectFile,
} from './object-files.js';
import type { ObjectGuard } from './object-guard.js';
import { copySparse } from './sparse-write.js';
import type { StagingFiles } from './staging-files.js';
import { discardFile, linkAsync, type WritePool } from './write-pool.js';

/** Sync new objects to disk and publish them to the store after this many. */
const FLUSH_OBJECTS = 4096;
const FLUSH_BYTES = 256 * 1024 * 1024;
/** …or after this long: a run killed outright loses at most this much transfer time. */
const FLUSH_MS = 5000;

interface Staged {
  /** Where it waits, under a temporary name: publishing gives it its name in the store. */
  path: string;
  name: string;
  meta: ObjectMeta;
}

export class ObjectStore {
  /** Objects made this run and not yet published, by content hash. */
  private readonly unpublished = new Map<string, Staged[]>();
  private unpublishedCount = 0;
  private unpublishedBytes = 0;
  private publishedAt = Date.now();
  private readonly madeDirs = new Set<string>();
  /** Object path -> its twin with links to spare, once the object reached the hard-link limit. */
  private readonly twins = new Map<string, string>();
  /** Staged objects whose writes are in flight, by path: whatever uses one waits for them. */
  private readonly writing = new Map<string, Promise<void>>();
  /** Staged objects whose writes failed: never published (the run stops; they go with its leftovers). */
  private readonly untrusted = new Set<string>();
  /** The last data write started: data is written in arrival order (see writeData). */
  private lastDataWrite: Promise<void> = Promise.resolve();
  bytesStored = 0;

  constructor(
    private readonly objectsDir: string,
    /** This run's staging area. */
    readonly staging: StagingFiles,
    /** Only root may give an object another owner. */
    private readonly setOwner: boolean,
    /** Checks a stored object before it is reused; quarantines a damaged one. */
    private readonly guard: ObjectGuard,
    /** Where new objects are written and linked, concurrently. */
    readonly pool: WritePool,
  ) {}

  /**
   * Write file data on the pool, one write after another in the order the data arrived: off the
   * receiving loop, yet a disk that fills up fails the newest data, not a little of every file in flight.
   */
  writeData(write: () => Promise<void>, bytes: number): Promise<void> {
    this.lastDataWrite = this.pool.start(write, this.lastDataWrite, bytes);
    return this.lastDataWrite;
  }

  private track(path: string, done: Promise<void>): void {
    this.writing.set(path, done);
    void done.then(() => {
      if (this.writing.get(path) === done) this.writing.delete(path);
    });
  }

  private storeDir(hash: string): string {
    return join(this.objectsDir, hash.slice(0, 2));
  }

  private primaryPath(hash: string): string {
    return join(this.storeDir(hash), hash);
  }

  /** The lstat of a stored object fit for reuse as content `hash` of `size` bytes, or null (absent, or damaged and quarantined). */
  private soundStat(path: string, hash: string, size: number): BigIntStats | null {
    const stat = lstatOrNull(path);
    return stat !== null && this.guard.sound(path, stat, hash, size) ? stat : null;
  }

  /** The name of a sound object with this content and metadata, or null. */
  private exact(hash: string, meta: ObjectMeta, size: number): string | null {
    const staged = this.unpublished.get(hash)?.find((s) => sameMeta(s.meta, meta));
    if (staged) return staged.name;
    const stat = this.soundStat(this.primaryPath(hash), hash, size);
    if (stat !== null && hasMeta(stat, meta)) return hash;
    return this.exactVariant(hash, meta, size);
  }

  /** The name of a sound variant object with this content and metadata, or null. */
  private exactVariant(hash: string, meta: ObjectMeta, size: number): string | null {
    const variant = variantName(hash, meta);
    const path = join(this.storeDir(hash), variant);
    const variantStat = this.soundStat(path, hash, size);
    if (variantStat === null) return null;
    if (hasMeta(variantStat, meta)) return variant;
    // Its name says other metadata than its inode has: a chmod or touch inside a snapshot tree.
    this.guard.quarantine(path, 'has other metadata than its name says');
    return null;
  }

  /** The name of any sound object with this content, whatever its metadata, or null. */
  private anyWithContent(hash: string, size: number): string | null {
    const staged = this.unpublished.get(hash);
    if (staged?.length) return staged[0]!.name;
    return this.soundStat(this.primaryPath(hash), hash, size) ? hash : null;
  }

  /** What the store holds for this content: asked once per file, the answer names an object for the whole run. */
  find(hash: string, meta: ObjectMeta, size: number): StoreFinding {
    const staged = this.unpublished.get(hash);
    if (staged?.length) {
      const same = staged.find((s) => sameMeta(s.meta, meta));
      return same ? { kind: 'exact', object: same.name } : { kind: 'content', object: staged[0]!.name };
    }
    // One lstat of the primary answers both questions, unless it is absent or has other metadata.
    const primary = this.soundStat(this.primaryPath(hash), hash, size);
    if (primary !== null && hasMeta(primary, meta)) return { kind: 'exact', object: hash };
    const variant = this.exactVariant(hash, meta, size);
    if (variant !== null) return { kind: 'exact', object: variant };
    return primary === null ? { kind: 'absent' } : { kind: 'content', object: hash };
  }

  /** The path of a sound object with this content and metadata, or null. */
  locate(hash: string, meta: ObjectMeta, size: number): string | null {
    const name = this.exact(hash, meta, size);
    return name === null ? null : this.pathOf(name);
  }

  /** Where a named object lies now: in staging until its batch is published, in the store after. */
  pathOf(object: string): string {
    const hash = object.slice(0, 64);
    const staged = this.unpublished.get(hash)?.find((s) => s.name === object);
    return staged ? staged.path : join(this.storeDir(hash), object);
  }

  /** The name a new object gets: the primary if the content is new, else a variant. */
  private nameFor(hash: string, meta: ObjectMeta, size: number): string {
    return this.anyWithContent(hash, size) ? variantName(hash, meta) : hash;
  }

  /**
   * Adopt a verified temporary file as the object (hash, meta); returns the object's name (pathOf says
   * where it lies). `knownAbsent`: the caller found no object of this content this run and no other
   * could have been made since (one transfer per content at a time), so the store is not asked again.
   */
  adopt(tempPath: string, hash: string, meta: ObjectMeta, size: number, knownAbsent = false, open?: OpenObjectFile): string {
    let name: string;
    if (knownAbsent && !this.unpublished.has(hash)) name = hash;
    else {
      const existing = this.exact(hash, meta, size);
      if (existing !== null) {
        if (open) this.pool.start(() => discardFile(open.fd, tempPath), open.written);
        else unlinkSync(tempPath);
        return existing;
      }
      name = this.nameFor(hash, meta, size);
    }
    if (open) this.track(tempPath, this.pool.start(() => this.finishFile(tempPath, open, meta), open.written));
    else applyMeta(tempPath, meta, this.setOwner);
    // It keeps its temporary name until publish renames it into the store: one rename, not two.
    return this.noteUnpublished(hash, tempPath, name, meta, size);
  }

  /**
   * Make the object (hash, meta) from the stored object `source` of the same content: a reflink where the
   * filesystem can, holes kept. Returns the new object's name.
   */
  copyFrom(source: string, hash: string, meta: ObjectMeta, size: number): string {
    const from = this.pathOf(source);
    const path = this.staging.path();
    const copy = () => {
      try {
        copySparse(from, path);
        applyMeta(path, meta, this.setOwner);
      } catch (error) {
        this.untrusted.add(path);
        throw error;
      }
    };
    // A source still being written is copied once it is complete.
    const sourceWriting = this.writing.get(from);
    if (sourceWriting) this.track(path, this.pool.start(copy, sourceWriting));
    else copy();
    return this.noteUnpublished(hash, path, this.nameFor(hash, meta, size), meta, size);
  }

  /**
   * Hard-link a tree entry to an object. At the filesystem's link limit (EMLINK:
   * 65,000 on ext4, soon reached by a common small file across many snapshots)
   * the entry links to a twin instead: a copy of the object named `<object>+N`.
   */
  linkInto(objectPath: string, treePath: Buffer): void {
    const link = async () => {
      try {
        await linkAsync(this.twins.get(objectPath) ?? objectPath, treePath);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'EMLINK' && code !== 'ENAMETOOLONG') throw error;
        atPath(treePath, (path) => this.linkIntoNow(objectPath, path));
      }
    };
    this.pool.start(link, this.writing.get(objectPath));
  }

  /** linkInto, synchronously: with a twin at the link limit; `treePath` may be relative to a deep working directory. */
  private linkIntoNow(objectPath: string, treePath: Buffer): void {
    try {
      linkSync(this.twins.get(objectPath) ?? objectPath, treePath);
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EMLINK') throw error;
    }
    // Twins live in the store even when the object is still staged (under a temporary name): a twin is
    // synced as it is made.
    const name = this.stagedNameOf(objectPath) ?? basename(objectPath);
    const base = join(this.storeDir(name.slice(0, 64)), name);
    for (let n = 1; ; n++) {
      const twin = `${base}+${n}`;
      if (!lstatOrNull(twin)) this.makeTwin(objectPath, twin);
      try {
        linkSync(twin, treePath);
        this.twins.set(objectPath, twin);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EMLINK') throw error;
      }
    }
  }

  /** The name of the staged object waiting at `path`, if one is (only at the link limit: a search of the batch). */
  private stagedNameOf(path: string): string | undefined {
    for (const staged of this.unpublished.values()) for (const s of staged) if (s.path === path) return s.name;
    return undefined;
  }

  /** A durable copy of `objectPath`, with its metadata, at `twin`; appears complete or not at all. */
  private makeTwin(objectPath: string, twin: string): void {
    const stat = lstatSync(objectPath, { bigint: true });
    const temp = this.staging.path();
    mkdirSync(dirname(twin), { recursive: true, mode: 0o755 });
    copySparse(objectPath, temp);
    applyMeta(temp, { mode: Number(stat.mode & 0o7777n), uid: Number(stat.uid), gid: Number(stat.gid), mtimeNs: stat.mtimeNs }, this.setOwner);
    fsyncPath(temp);
    renameSync(temp, twin);
  }

  /** Returns the object's name; the batch is published when it is due. */
  private noteUnpublished(hash: string, path: string, name: string, meta: ObjectMeta, size: number): string {
    const staged = this.unpublished.get(hash);
    if (staged) staged.push({ path, name, meta });
    else this.unpublished.set(hash, [{ path, name, meta }]);
    this.unpublishedCount++;
    this.unpublishedBytes += size;
    this.bytesStored += size;
    return name;
  }

  /** A batch is due for publishing: the session publishes it at its next pause. */
  get publishDue(): boolean {
    return this.unpublishedCount >= FLUSH_OBJECTS || this.unpublishedBytes >= FLUSH_BYTES || (this.unpublishedCount > 0 && Date.now() - this.publishedAt >= FLUSH_MS);
  }

  /** A new object's file gets its metadata and is closed; a failure (or a failed data write) leaves it untrusted. */
  private finishFile(path: string, open: OpenObjectFile, meta: ObjectMeta): void {
    if (open.failed()) {
      this.untrusted.add(path);
      return closeSync(open.fd);
    }
    try {
      finishOpenFile(open, meta, this.setOwner);
    } catch (error) {
      this.untrusted.add(path);
      throw error;
    }
  }

  /** Once every write is done: sync what was written, then move this run's new objects into the store. */
  async publish(): Promise<void> {
    await this.pool.drain();
    this.publishNow();
  }

  /** publish(), when the writes are known to be done (the pool is idle). */
  publishNow(): void {
    if (this.unpublishedCount === 0) return;
    if (!this.pool.idle) throw new Error('objects published with writes in flight');
    syncFilesystem(this.staging.dir, () => {
      for (const staged of this.unpublished.values()) for (const s of staged) fsyncPath(s.path);
    });
    for (const [hash, staged] of this.unpublished) {
      const dir = this.storeDir(hash);
      if (!this.madeDirs.has(dir)) {
        mkdirSync(dir, { recursive: true, mode: 0o755 }); // no error when it exists
        this.madeDirs.add(dir);
      }
      for (const s of staged) if (!this.untrusted.has(s.path)) renameSync(s.path, join(dir, s.name));
    }
    this.unpublished.clear();
    this.guard.markWritten();
    this.publishedAt = Date.now();
    this.unpublishedCount = 0;
    this.unpublishedBytes = 0;
  }

}

