// The run's staging area, .lb/tmp/incoming-PID/: new objects are made here, under
// temporary names, and wait until their batch is synced and moved into the store.
import { closeSync, mkdirSync, open, openSync, renameSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Staging is spread over this many subdirectories: creating thousands of files
 * in one directory that is constantly renamed out of costs more per create on
 * ext4 than the same work spread thin.
 */
const STAGING_SHARDS = 64;

/** Temporary files made ahead on libuv's thread pool, so the receiving loop rarely waits on a create. */
const READY_TEMP_FILES = 32;

export class StagingFiles {
  private readonly shardsMade = new Set<number>();
  private counter = 0;
  private readonly readyTemps: { path: string; fd: number }[] = [];
  private tempsInFlight = 0;
  private closed = false;

  constructor(readonly dir: string) {}

  /** An open, empty file in the staging area, to be adopted or discarded; made ahead when it can be. */
  tempFile(): { path: string; fd: number } {
    let ready = this.readyTemps.shift();
    if (!ready) {
      const path = this.path();
      ready = { path, fd: openSync(path, 'wx', 0o600) };
    }
    this.makeTempsAhead();
    return ready;
  }

  private makeTempsAhead(): void {
    while (!this.closed && this.readyTemps.length + this.tempsInFlight < READY_TEMP_FILES) {
      const path = this.path();
      this.tempsInFlight++;
      open(path, 'wx', 0o600, (error, fd) => {
        this.tempsInFlight--;
        if (error) return; // made on demand instead
        if (this.closed) closeSync(fd);
        else this.readyTemps.push({ path, fd });
      });
    }
  }

  /** A fresh path in the staging area. */
  path(): string {
    const n = this.counter++;
    const shard = n % STAGING_SHARDS;
    const dir = join(this.dir, String(shard));
    if (!this.shardsMade.has(shard)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.shardsMade.add(shard);
    }
    return join(dir, `tmp-${n}`);
  }

  /** Move a file from elsewhere in the repository (a completed partial transfer) into staging. */
  stage(path: string): string {
    const staged = this.path();
    renameSync(path, staged);
    return staged;
  }

  /** Close the files made ahead; the staging directory is removed with the run's leftovers. */
  close(): void {
    this.closed = true;
    for (const t of this.readyTemps.splice(0)) closeSync(t.fd);
  }
}
