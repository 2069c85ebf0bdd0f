// A restore on one machine: the repository's feed (restore-feed.ts) straight into
// the target's writer (restore-writer.ts), in one process, with no copy between.
// Contents are copied, never hard-linked: a restore must not share inodes with the
// repository, or editing a restored file would edit every snapshot holding it (the
// source's own hard links are remade among the restored files: restore-links.ts).
import type { RepositoryReader } from './reader.js';
import { restoreFeed } from './restore-feed.js';
import type { RestoreTally } from './restore-record.js';
import { RestoreWriter } from './restore-writer.js';

export interface RestoreOptions {
  /** Subtrees to restore, as the manifest spells them; empty for the whole snapshot. */
  paths: Buffer[];
  /** Set owners and groups as recorded (only root may): the snapshot's numbers are this machine's. */
  setOwner: boolean;
}

export function restoreLocally(
  reader: RepositoryReader,
  snapshot: string,
  target: string,
  options: RestoreOptions,
  /** One line about a path that was left out or not fully restored. */
  problem: (path: Buffer, text: string) => void,
): RestoreTally {
  const owners = options.setOwner ? { uid: (r: { uid: number }) => r.uid, gid: (r: { gid: number }) => r.gid } : null;
  const writer = new RestoreWriter(target, owners, problem);
  for (const item of restoreFeed(reader, snapshot, { paths: options.paths, freshChunks: false })) {
    if (item.kind === 'entry') writer.entry(item.record);
    else if (item.kind === 'content') writer.file(item.record, item.content);
    else writer.sameContent(item.record, item.earlier);
  }
  return writer.finish();
}
