// The per-entry decisions of a backup, free of I/O: the caller looks things up
// and these functions say what follows from what was found.

/** What the repository already holds for one content hash. */
export type StoreState = 'exact' | 'content' | 'absent';

export type FileAction =
  /** An object with this content and metadata exists: hard-link it. */
  | 'link'
  /** The content exists with other metadata: copy it on the destination. */
  | 'copy'
  /** The content is unknown to the repository: the source must send it. */
  | 'transfer';

export function fileAction(state: StoreState): FileAction {
  return state === 'exact' ? 'link' : state === 'content' ? 'copy' : 'transfer';
}

export interface QuickCheckable {
  type: string;
  size: number;
  mtimeNs: bigint;
}

/**
 * The hash a file entry can be given without reading it. The source's own
 * hash (from its cache) wins. Otherwise, only when the source has no cache of
 * its own, the previous snapshot's record at the same path is trusted if size
 * and mtime match, as rsync's quick check does.
 */
export function knownHash(
  entry: QuickCheckable & { hash?: string },
  previous: (QuickCheckable & { hash?: string }) | undefined,
  quickCheck: boolean,
): string | undefined {
  if (entry.hash !== undefined) return entry.hash;
  if (!quickCheck || previous === undefined || previous.type !== 'file') return undefined;
  if (previous.size !== entry.size || previous.mtimeNs !== entry.mtimeNs) return undefined;
  return previous.hash;
}

/** How a regular file got into a snapshot, as the manifest and summary report it. */
export type Arrival = 'new' | 'copied' | 'linked';

export function arrival(action: FileAction): Arrival {
  return action === 'link' ? 'linked' : action === 'copy' ? 'copied' : 'new';
}
