// What every reader and writer of a repository agrees on: the format file, the
// shape of snapshot names, and how to tell a complete snapshot. docs/FORMAT.md
// describes the same for people.
import { closeSync, openSync, readFileSync, readSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { MANIFEST_HEADERS } from './manifest.js';

/** What this lb writes: format 2 records source hard-link groups in the manifest. */
export const FORMAT_TEXT = 'lb repository\nformat 2\nhash sha256\n';
/** Format 1 repositories are read as they are, and upgraded by the next backup that publishes a snapshot. */
export const FORMAT_1_TEXT = 'lb repository\nformat 1\nhash sha256\n';

/** The format number of a format file's text, or null when this lb does not know it. */
export function formatOf(text: string): 1 | 2 | null {
  return text === FORMAT_TEXT ? 2 : text === FORMAT_1_TEXT ? 1 : null;
}
export const SNAPSHOT_NAME = /^[0-9]{4}\.[0-9]{2}\.[0-9]{2}-[0-9]{2}\.[0-9]{2}\.[0-9]{2}$/;

export class RepositoryError extends Error {}

/** The path given cannot hold a repository (or a series): the user must name another (exit status 2, as for any bad command line). */
export class RepositoryRefused extends RepositoryError {}

/** Snapshot directories under their final names, oldest first (names sort in creation order). */
export function snapshotNames(root: string): string[] {
  return readdirSync(root)
    .filter((name) => SNAPSHOT_NAME.test(name))
    .sort();
}

/** The snapshot name `latest` points to, or null when it is missing or not a snapshot name. */
export function latestLink(root: string): string | null {
  try {
    const name = readlinkSync(join(root, 'latest'));
    return SNAPSHOT_NAME.test(name) ? name : null;
  } catch {
    return null;
  }
}

/** A snapshot is complete when its manifest is there and begins as a manifest (of either format). */
export function hasManifest(root: string, name: string): boolean {
  try {
    const fd = openSync(join(root, name, 'manifest'), 'r');
    try {
      // Both headers have the same length.
      const head = Buffer.alloc(MANIFEST_HEADERS[0].length);
      return readSync(fd, head, 0, head.length, 0) === head.length && (MANIFEST_HEADERS as readonly string[]).includes(head.toString());
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** The source a snapshot was taken from, as recorded in it; null for snapshots that predate the record. */
export function snapshotSource(snapshotDir: string): string | null {
  try {
    return readFileSync(join(snapshotDir, 'source'), 'utf8').replace(/\n$/, '');
  } catch {
    return null;
  }
}
