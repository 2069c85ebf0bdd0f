// A restore on one machine: the repository's feed (restore-feed.ts) straight into
// the target's writer (restore-writer.ts), in one process, with no copy between.
// Contents are copied, never hard-linked: a restore must not share inodes with the
// repository, or editing a restored file would edit every snapshot holding it (the
// source's own hard links are remade among the restored files: restore-links.ts).
import type { RepositoryReader } from './reader.js';
import { restoreFeed } from './restore-feed.js';
import type { RestoreTally } from './restore-record.js';
import { RestoreWriter } from './restore-writer.js';

/** How often the restore lets signal handlers run (it writes synchronously, one entry at a time). */
const YIELD_EVERY_MS = 10;

export interface RestoreOptions {
  /** Subtrees to restore, as the manifest spells them; empty for the whole snapshot. */
  paths: Buffer[];
  /** Set owners and groups as recorded (only root may): the snapshot's numbers are this machine's. */
  setOwner: boolean;
  /** Asked between entries: true stops the restore there (Ctrl-C), every file written so far whole, none half. */
  stopped?: () => boolean;
}

export async function restoreLocally(
  reader: RepositoryReader,
  snapshot: string,
  target: string,
  options: RestoreOptions,
  /** One line about a path that was left out or not fully restored. */
  problem: (path: Buffer, text: string) => void,
): Promise<{ tally: RestoreTally; stopped: boolean }> {
  const owners = options.setOwner ? { uid: (r: { uid: number }) => r.uid, gid: (r: { gid: number }) => r.gid } : null;
  const writer = new RestoreWriter(target, owners, problem);
  let yielded = Date.now();
  for (const item of restoreFeed(reader, snapshot, { paths: options.paths, freshChunks: false })) {
    if (Date.now() - yielded >= YIELD_EVERY_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      yielded = Date.now();
    }
    // Directories written so far still get their metadata; nothing is left under a temporary name.
    if (options.stopped?.()) return { tally: writer.finish(true), stopped: true };
    if (item.kind === 'entry') writer.entry(item.record);
    else if (item.kind === 'content') writer.file(item.record, item.content);
    else writer.sameContent(item.record, item.earlier);
  }
  return { tally: writer.finish(), stopped: false };
}
