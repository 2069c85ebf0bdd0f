// What a repository holds, asked by `lb --showfiles`: the latest snapshot's
// records (in step with the incoming entries, to vouch for unchanged files)
// and the object store. It takes no lock and writes nothing: it works on a
// read-only repository and beside a running backup, which only adds objects.
import { snapshotSource } from './layout.js';
import { join } from 'node:path';
import { comparePaths } from '../diff/order.js';
import type { BackupOptions } from '../protocol/messages.js';
import { ManifestReader, type PreviousRecord } from './manifest.js';
import { ObjectGuard } from './object-guard.js';
import { lstatOrNull } from './object-files.js';
import { RepositoryReader } from './reader.js';

export class HeldContent {
  /** The latest snapshot was taken from this very source, so its records may vouch for unchanged files. */
  readonly quickCheck: boolean;
  private readonly objectsDir: string;
  private readonly guard: ObjectGuard;
  private previous: ManifestReader | null = null;
  private head: PreviousRecord | null = null;

  constructor(repositoryPath: string, options: BackupOptions) {
    const repo = RepositoryReader.open(repositoryPath);
    const lbDir = join(repo.root, '.lb');
    this.objectsDir = join(lbDir, 'objects');
    // Only judges: a damaged object counts as not held (its file is listed), and stays where it is.
    this.guard = new ObjectGuard(lbDir, BigInt(Date.now()) * 1_000_000n, null);
    // A series not made yet has no latest snapshot: the store alone answers.
    const series = options.series;
    const scoped = series === undefined ? repo : repo.seriesNames().includes(series) ? repo.inSeries(series) : null;
    const latest = scoped?.latest() ?? null;
    let source: string | null = null;
    if (scoped && latest) {
      this.previous = new ManifestReader(join(scoped.snapshotDir(latest), 'manifest'));
      this.head = this.previous.nextPrevious();
      source = snapshotSource(scoped.snapshotDir(latest)); // none recorded (an old snapshot): it vouches for nothing
    }
    this.quickCheck = options.quickCheck && source === options.sourceLabel;
  }

  /** The latest snapshot's record at `path`; paths are asked in canonical order. */
  previousAt(path: Buffer): PreviousRecord | undefined {
    while (this.head && comparePaths(this.head.path, path) < 0) this.head = this.previous!.nextPrevious();
    if (!this.head || comparePaths(this.head.path, path) !== 0) return undefined;
    const found = this.head;
    this.head = this.previous!.nextPrevious();
    return found;
  }

  /** True when the store has sound content `hash` of `size` bytes, with whatever metadata. */
  holds(hash: string, size: number): boolean {
    const path = join(this.objectsDir, hash.slice(0, 2), hash);
    const stat = lstatOrNull(path);
    return stat !== null && this.guard.sound(path, stat, hash, size);
  }

  close(): void {
    this.previous?.close();
  }
}
