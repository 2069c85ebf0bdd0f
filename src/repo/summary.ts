// A snapshot's summary: what `lb list` shows, kept in REPO/<snapshot>/summary so
// that listing a hundred snapshots reads a hundred small files, not a hundred
// manifests. Snapshots made before summaries existed get theirs computed from the
// manifest by the same tally.
import type { ManifestRecord } from './manifest.js';

export type SnapshotStatus = 'ok' | 'partial';

export interface SnapshotSummary {
  files: number;
  /** Apparent size: the sum of every regular file's size. */
  bytes: number;
  new: number;
  copied: number;
  linked: number;
  /** Bytes of the files that arrived new (their content was transferred). */
  newBytes: number;
  directories: number;
  symlinks: number;
  /** Files recorded as source hard links to an earlier file (format 2); absent in summaries written before. */
  hardLinks?: number;
  /** 'partial' when some source paths could not be read; null when the snapshot predates summaries. */
  status: SnapshotStatus | null;
  /** Written, never read back here: the manifest's stream digest (repo/stream-digest.ts, recordedStreamDigest). */
  stream?: string;
}

export class SummaryTally {
  private readonly summary: SnapshotSummary = {
    files: 0,
    bytes: 0,
    new: 0,
    copied: 0,
    linked: 0,
    newBytes: 0,
    directories: 0,
    symlinks: 0,
    hardLinks: 0,
    status: null,
  };

  add(record: ManifestRecord): void {
    const s = this.summary;
    if (record.type === 'dir') s.directories++;
    else if (record.type === 'symlink') s.symlinks++;
    else {
      s.files++;
      s.bytes += record.size;
      if (record.link) s.hardLinks!++;
      if (record.how === 'new') {
        s.new++;
        s.newBytes += record.size;
      } else if (record.how === 'copied') s.copied++;
      else s.linked++;
    }
  }

  result(status: SnapshotStatus | null): SnapshotSummary {
    return { ...this.summary, status };
  }
}

const FIELDS: (keyof SnapshotSummary)[] = ['files', 'bytes', 'new', 'copied', 'linked', 'newBytes', 'directories', 'symlinks'];

/** The summary file's text: one JSON object on one line. */
export function formatSummary(summary: SnapshotSummary): string {
  return JSON.stringify(summary) + '\n';
}

/** A summary file's content, or null when it is not one (damaged, or written by a newer lb with other fields). */
export function parseSummary(text: string): SnapshotSummary | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  for (const field of FIELDS) if (!Number.isSafeInteger(r[field]) || (r[field] as number) < 0) return null;
  if (r.status !== 'ok' && r.status !== 'partial') return null;
  if (r.hardLinks !== undefined && (!Number.isSafeInteger(r.hardLinks) || (r.hardLinks as number) < 0)) return null;
  // For a backup's reference check alone (stream-digest.ts reads it), not for what readers show.
  delete r.stream;
  return r as unknown as SnapshotSummary;
}
