// File content arriving from the source, one file at a time: written to a
// staging file, hashed as it comes, and adopted into the store once its hash
// and size match what the source says. Large transfers are written to
// .lb/partial/ instead, where an interrupted run leaves them: the next run
// offers their checked prefix and the source sends only the rest. Runs of zeros
// (sent as such, or found in the data) are left as holes.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, ftruncateSync, openSync, readSync, unlinkSync } from 'node:fs';
import type { ObjectMeta } from './object-files.js';
import type { ObjectStore } from './objects.js';
import type { Repository } from './repository.js';
import { SparseWriter, hashZeros } from './sparse-write.js';
import { discardFile, writeAllAt } from './write-pool.js';

/** Transfers this large are written where an interrupted run leaves them, to resume from. */
export const RESUMABLE = 8 * 1024 * 1024;
/** Resume offers are whole MiB: the tail of an interrupted write is the least trustworthy part. */
const RESUME_ALIGN = 1024 * 1024;

/** A prefix of `hash` kept from an interrupted run: its length and running hash. */
export interface KeptPrefix {
  from: number;
  hasher: Hash;
}

/** Content that did not match what the source said it sent. */
export class TransferMismatch extends Error {}

export class IncomingFile {
  private readonly writer: SparseWriter;
  /**
   * A staging file's last data write on the store's pool (a partial transfer is written at once): data is
   * written in arrival order, so once it is done every write of this file is.
   */
  private lastWrite: Promise<void> = Promise.resolve();
  private writeFailed = false;

  private constructor(
    private readonly fd: number,
    private readonly path: string,
    private readonly hasher: Hash,
    private size: number,
    /** Written to .lb/partial/, where it outlives an interrupted run. */
    private readonly partial: boolean,
    private readonly store: ObjectStore,
  ) {
    this.writer = partial
      ? new SparseWriter(fd)
      : new SparseWriter(fd, (data, position) => (this.lastWrite = store.writeData(() => this.writeAt(data, position), data.length)));
  }

  private async writeAt(data: Buffer, position: number): Promise<void> {
    try {
      await writeAllAt(this.fd, data, position);
    } catch (error) {
      this.writeFailed = true;
      throw error;
    }
  }

  /**
   * The prefix of `hash` an interrupted run left, if the file is large enough to have one: whole MiB,
   * hashed, so the source can check it against its own file. Null when there is none worth offering.
   */
  static keptPrefix(repo: Repository, hash: string, size: number): KeptPrefix | null {
    if (size < RESUMABLE) return null;
    let fd: number;
    try {
      fd = openSync(repo.partialPath(hash), constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch {
      return null; // none kept
    }
    try {
      const buffer = Buffer.allocUnsafe(RESUME_ALIGN);
      const hasher = createHash('sha256');
      let from = 0;
      while (from + RESUME_ALIGN < size && readSync(fd, buffer, 0, RESUME_ALIGN, from) === RESUME_ALIGN) {
        hasher.update(buffer);
        from += RESUME_ALIGN;
      }
      return from === 0 ? null : { from, hasher };
    } finally {
      closeSync(fd);
    }
  }

  /** Begin receiving content expected to be `hash` of `size` bytes; `kept` when the source resumes after a kept prefix. */
  static begin(repo: Repository, store: ObjectStore, hash: string, size: number, kept: KeptPrefix | null): IncomingFile {
    if (size < RESUMABLE) {
      const { path, fd } = store.staging.tempFile();
      return new IncomingFile(fd, path, createHash('sha256'), 0, false, store);
    }
    const path = repo.partialPath(hash);
    // Never through a symlink, even inside our own repository.
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
    const from = kept?.from ?? 0;
    ftruncateSync(fd, from);
    return new IncomingFile(fd, path, kept?.hasher ?? createHash('sha256'), from, true, store);
  }

  /** Bytes of content so far, a kept prefix included. */
  get received(): number {
    return this.size;
  }

  write(chunk: Buffer): void {
    this.writer.write(chunk, this.size);
    this.hasher.update(chunk);
    this.size += chunk.length;
  }

  /** The next `length` bytes are zeros: hashed, not written. */
  zeros(length: number): void {
    hashZeros(this.hasher, length);
    this.size += length;
  }

  /**
   * The content is complete: adopted as the object (hash, meta) when it is what the source says; returns
   * the object's name. `knownAbsent` as for ObjectStore.adopt.
   */
  end(hash: string, size: number, meta: ObjectMeta, knownAbsent = false): string {
    const sound = this.hasher.digest('hex') === hash && this.size === size;
    if (!this.partial) {
      // The store finishes and closes the file once its writes are done; nothing closes it before.
      if (!sound) {
        this.store.pool.start(() => discardFile(this.fd, this.path), this.lastWrite);
        throw new TransferMismatch('does not match its hash');
      }
      return this.store.adopt(this.path, hash, meta, size, knownAbsent, {
        fd: this.fd,
        written: this.lastWrite,
        failed: () => this.writeFailed,
        sizeToSet: this.writer.sizeToSet(size),
      });
    }
    try {
      // Sized only once checked: a peer's size could be anything.
      if (sound) this.writer.finish(size);
    } finally {
      closeSync(this.fd);
    }
    if (!sound) {
      unlinkSync(this.path);
      throw new TransferMismatch('does not match its hash');
    }
    return this.store.adopt(this.store.staging.stage(this.path), hash, meta, size, knownAbsent);
  }

  /** Stop receiving; a partial transfer is kept for the next run when `keepPartial`. */
  close(keepPartial: boolean): void {
    if (!this.partial) {
      this.store.pool.start(() => discardFile(this.fd, this.path), this.lastWrite);
      return;
    }
    closeSync(this.fd);
    if (!keepPartial) unlinkSync(this.path);
  }
}
