// The repository side's writes, run concurrently on libuv's thread pool: the
// receiving loop starts an object's writes, its metadata and close, and the tree
// links to it, and goes on with the next entry while the kernel (and on a disk,
// the journal) does them. Entries are still decided and recorded in manifest
// order; only the filesystem calls overlap. Whatever depends on a write waits
// for it (`after`), and whatever must see every write so far (a directory's
// final metadata, syncing a batch, publishing) waits for all of them (`barrier`,
// `drain`). A failure is kept and surfaces at the next `room` or `drain`, so the
// run stops with it and publishes nothing.
import { close, link, unlink, write } from 'node:fs';
import { promisify } from 'node:util';

/** In flight at once: enough to keep the thread pool and a disk's queue busy, few enough to bound memory. */
const MAX_OPERATIONS = 128;
/** File data held by writes not yet done. */
const MAX_BYTES = 16 * 1024 * 1024;

const writeAsync = promisify(write);
const closeAsync = promisify(close);
export const linkAsync = promisify(link);
const unlinkAsync = promisify(unlink);

export class WritePool {
  private readonly pending = new Set<Promise<void>>();
  private heldBytes = 0;
  private failure: unknown = null;
  /** Woken whenever an operation ends (not Promise.race over the pending ones: each race left a reaction on every one). */
  private waiters: (() => void)[] = [];

  /**
   * Start `operation` now, or once `after` has settled. The returned promise settles when it is done and
   * never rejects: a failure is kept for room() and drain(). `bytes`: data it holds until then.
   */
  start(operation: () => Promise<void> | void, after?: Promise<void>, bytes = 0): Promise<void> {
    // Every operation runs even after another failed: a close must never be skipped.
    this.heldBytes += bytes;
    const done: Promise<void> = (after ?? Promise.resolve())
      .then(operation)
      .catch((error: unknown) => {
        this.failure ??= error;
      })
      .finally(() => {
        this.heldBytes -= bytes;
        this.pending.delete(done);
        const waiters = this.waiters;
        this.waiters = [];
        for (const wake of waiters) wake();
      });
    this.pending.add(done);
    return done;
  }

  /** Settles once everything started so far has. */
  barrier(): Promise<void> {
    return this.pending.size === 0 ? Promise.resolve() : Promise.all(this.pending).then(() => undefined);
  }

  get idle(): boolean {
    return this.pending.size === 0;
  }

  private nextEnd(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Wait while too much is in flight; throws a kept failure. */
  async room(): Promise<void> {
    while (this.pending.size >= MAX_OPERATIONS || this.heldBytes >= MAX_BYTES) await this.nextEnd();
    this.check();
  }

  /** Wait for everything started so far (and whatever it started); throws a kept failure. */
  async drain(): Promise<void> {
    await this.quiesce();
    this.check();
  }

  /** Wait for everything, whatever failed: before removing what the writes were writing into. */
  async quiesce(): Promise<void> {
    while (this.pending.size > 0) await this.nextEnd();
  }

  check(): void {
    if (this.failure !== null) throw this.failure;
  }
}

/** Write all of `data` at `position` (a short write continues where it stopped). */
export async function writeAllAt(fd: number, data: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await writeAsync(fd, data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/** Close a file once its writes are done and remove it: content that was not adopted. */
export async function discardFile(fd: number, path: string): Promise<void> {
  await closeAsync(fd);
  await unlinkAsync(path);
}
