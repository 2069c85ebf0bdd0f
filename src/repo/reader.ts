// A repository opened to read: no lock, nothing written, so it works on a
// read-only filesystem and beside a running backup (which only ever adds a
// snapshot under its final name once it is complete, and moves `latest` by an
// atomic rename). Every command that looks at a repository stands on this.
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RepositoryError, formatOf, hasManifest, latestLink, snapshotNames } from './layout.js';
import { ManifestReader, type ManifestRecord } from './manifest.js';
import { checkSeriesExists, seriesNames, seriesOf } from './series.js';
import { SummaryTally, parseSummary, type SnapshotSummary } from './summary.js';

/** The user named no snapshot, or one that does not exist, or a prefix of several. */
export class SnapshotNotFound extends RepositoryError {}

export class RepositoryReader {
  /** Where this reader's snapshots and `latest` are: the repository itself, or its series' directory. */
  readonly snapshotRoot: string;

  private constructor(
    readonly root: string,
    /** The series read (--series), or null for the snapshots at the repository's top level. */
    readonly series: string | null = null,
  ) {
    this.snapshotRoot = series === null ? root : join(root, series);
  }

  /**
   * Opens the repository at `root` after checking that it is one, of a format this lb reads;
   * with `series`, to read that series (refused in one line when the repository has none such).
   */
  static open(root: string, series: string | null = null): RepositoryReader {
    let text: string;
    try {
      if (!lstatSync(root).isDirectory()) throw new RepositoryError(`${root} is not a directory, so not an lb repository`);
      text = readFileSync(join(root, '.lb', 'format'), 'utf8');
    } catch (error) {
      if (error instanceof RepositoryError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !existsSync(root)) throw new RepositoryError(`${root} does not exist, so it is no lb repository`);
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new RepositoryError(`${root} is not an lb repository (it has no .lb/format)`);
      throw new RepositoryError(`cannot read the repository ${root}: ${(error as Error).message}`);
    }
    // Format 1 (no hard-link groups) reads as format 2 with none.
    if (formatOf(text) === null) throw new RepositoryError(`${root} is an lb repository of a format this lb does not know; a newer lb reads it`);
    const reader = new RepositoryReader(root);
    return series === null ? reader : reader.inSeries(series);
  }

  /** A reader of one series of this repository. */
  inSeries(series: string): RepositoryReader {
    checkSeriesExists(this.root, series);
    return new RepositoryReader(this.root, series);
  }

  /** The repository's series, sorted. */
  seriesNames(): string[] {
    return seriesNames(this.root);
  }

  /**
   * What a command over the whole repository (du, verify, prune) covers: this series alone when
   * the user named one, else the top level and then every series.
   */
  scope(): RepositoryReader[] {
    return this.series === null ? [this, ...this.seriesNames().map((name) => new RepositoryReader(this.root, name))] : [this];
  }

  /** A snapshot as shown to the user: its name at the top level, SERIES/NAME (its path in the repository) in a series. */
  label(name: string): string {
    return this.series === null ? name : `${this.series}/${name}`;
  }

  /** Where this reader reads, for messages: the repository's path, or `series NAME of PATH`. */
  get where(): string {
    return this.series === null ? this.root : `series ${this.series} of ${this.root}`;
  }

  /** The same with its article: `the repository PATH`, or `series NAME of the repository PATH`. */
  get described(): string {
    return this.series === null ? `the repository ${this.root}` : `series ${this.series} of the repository ${this.root}`;
  }

  /** Complete snapshots, oldest first. A snapshot directory without its manifest is not one. */
  snapshots(): string[] {
    return snapshotNames(this.snapshotRoot).filter((name) => hasManifest(this.snapshotRoot, name));
  }

  /** What `latest` names when that snapshot is complete; else the newest complete snapshot (a backup repairs the link). */
  latest(): string | null {
    const linked = latestLink(this.snapshotRoot);
    if (linked !== null && hasManifest(this.snapshotRoot, linked)) return linked;
    return this.snapshots().at(-1) ?? null;
  }

  /**
   * The full name of the snapshot the user means: `latest` (or nothing), a full
   * name, or a prefix that only one name begins with (`2026.11`).
   */
  resolve(wanted = 'latest'): string {
    const names = this.snapshots();
    if (names.length === 0) throw new SnapshotNotFound(this.noSnapshot());
    if (wanted === 'latest') return this.latest()!;
    const matching = names.filter((name) => name.startsWith(wanted));
    if (matching.length === 1) return matching[0]!;
    if (matching.includes(wanted)) return wanted;
    if (matching.length > 1) {
      const shown = matching.length > 6 ? [...matching.slice(0, 3), '…', ...matching.slice(-2)] : matching;
      throw new SnapshotNotFound(`${wanted} could be any of ${matching.length} snapshots (${shown.join(', ')}); give more of the name`);
    }
    throw new SnapshotNotFound(`no snapshot ${wanted} in ${this.where}; ${nearest(names, wanted)}`);
  }

  /** Why there is nothing to read: no snapshot yet, or (at the top level) only series holding them. */
  noSnapshot(): string {
    const series = this.series === null ? this.seriesNames() : [];
    if (series.length === 0) return `${this.described} holds no snapshot yet`;
    return `the repository ${this.root} holds no snapshot at its top level; ${seriesOf(this.root)} (name one with --series)`;
  }

  snapshotDir(name: string): string {
    return join(this.snapshotRoot, name);
  }

  /** The snapshot's manifest, one record at a time, in canonical order; memory stays flat. */
  *records(name: string): Generator<ManifestRecord> {
    const reader = new ManifestReader(join(this.snapshotDir(name), 'manifest'));
    try {
      for (let record = reader.next(); record !== null; record = reader.next()) yield record;
    } finally {
      reader.close();
    }
  }

  /** The snapshot's summary: from its summary file, or tallied from its manifest for snapshots that predate them. */
  summary(name: string): SnapshotSummary {
    try {
      const kept = parseSummary(readFileSync(join(this.snapshotDir(name), 'summary'), 'utf8'));
      if (kept) return kept;
    } catch {
      // none: an older snapshot
    }
    const tally = new SummaryTally();
    for (const record of this.records(name)) tally.add(record);
    return tally.result(null);
  }
}

/** The snapshots on either side of where `wanted` would sort, to help with a typo. */
function nearest(names: string[], wanted: string): string {
  const after = names.findIndex((name) => name > wanted);
  const around = after === -1 ? names.slice(-2) : after === 0 ? names.slice(0, 2) : names.slice(after - 1, after + 1);
  return `the nearest ${around.length === 1 ? 'is' : 'are'} ${around.join(' and ')}`;
}
