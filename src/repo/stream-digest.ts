// The stream digest of a snapshot: SHA-256 over what its manifest says of each
// entry that the source side can know too (type, path, hash, size, mtime, mode,
// link target), one line per record in manifest order. Owners (mapped on this
// side), how an entry arrived and hard-link groups are left out. The source side
// computes the same over the entries it sent and the facts it answered, so that
// next time it can name the snapshot it remembers, and the repository side can
// tell whether its latest snapshot is exactly that (docs/PROTOCOL.md, Version 8).
import { createHash, type Hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EntryRecord } from '../diff/record.js';
import { ManifestReader, escapeBytes } from './manifest.js';

const TYPE_CODE: Record<EntryRecord['type'], string> = { file: 'f', dir: 'd', symlink: 'l' };

/** A record's line of the stream: `type path hash size mtime mode target`, tab-separated, escaped as the manifest does. */
export function streamLine(r: Omit<EntryRecord, 'uid' | 'gid'>): string {
  return [TYPE_CODE[r.type], escapeBytes(r.path), r.hash || '-', r.size, r.mtimeNs, r.mode.toString(8), r.target ? escapeBytes(r.target) : '-'].join('\t');
}

/** The stream line inside a manifest line (format 2, without its newline): fields 2 to 7 and the target. */
export function streamLineOfManifestLine(line: string): string {
  const tabs: number[] = [];
  for (let at = line.indexOf('\t'); at >= 0 && tabs.length < 10; at = line.indexOf('\t', at + 1)) tabs.push(at);
  if (tabs.length < 9) throw new Error('corrupt manifest line');
  const end = tabs.length > 9 ? tabs[9] : line.length;
  return line.slice(tabs[0]! + 1, tabs[6]) + line.slice(tabs[8], end);
}

export class StreamDigest {
  private readonly hash: Hash = createHash('sha256');

  add(line: string): void {
    this.hash.update(line + '\n');
  }

  hex(): string {
    return this.hash.digest('hex');
  }
}

/**
 * The stream digest of a written manifest, read again from disk: a damaged manifest does not match the
 * digest its summary recorded when it was written. Null when it cannot be read or is not format 2.
 */
export function manifestStreamDigest(path: string): string | null {
  let reader: ManifestReader | null = null;
  try {
    reader = new ManifestReader(path);
    if (reader.format !== 2) return null;
    const digest = new StreamDigest();
    for (let line = reader.nextLine(); line !== null; line = reader.nextLine()) digest.add(streamLineOfManifestLine(line));
    return digest.hex();
  } catch {
    return null;
  } finally {
    reader?.close();
  }
}

/** The stream digest a snapshot's summary recorded when it was written; null for one written before summaries had it. */
export function recordedStreamDigest(snapshotDir: string): string | null {
  try {
    const stream = (JSON.parse(readFileSync(join(snapshotDir, 'summary'), 'utf8')) as { stream?: unknown }).stream;
    return typeof stream === 'string' && /^[0-9a-f]{64}$/.test(stream) ? stream : null;
  } catch {
    return null;
  }
}
