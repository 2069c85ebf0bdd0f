// The decisions of a backup, free of I/O: the repository side looks things up
// (the store, the previous manifest, the accounts) and these say what follows.
// Unit-tested in test/plan.test.ts.

/**
 * What the store holds for a file's content, found once per file: an object
 * with this content and metadata (link it), one with the content only (copy
 * it on the destination), or nothing (the source must send it). `object` is
 * the store's name for it, valid for the whole run.
 */
export type StoreFinding = { kind: 'exact'; object: string } | { kind: 'content'; object: string } | { kind: 'absent' };

export type FileAction = 'link' | 'copy' | 'transfer';

export function fileAction(finding: StoreFinding): FileAction {
  return finding.kind === 'exact' ? 'link' : finding.kind === 'content' ? 'copy' : 'transfer';
}

/** How a regular file got into a snapshot, as the manifest and summary report it. */
export type Arrival = 'new' | 'copied' | 'linked';

/** `fresh`: this file's own transfer in this run brought the content. */
export function arrival(action: Exclude<FileAction, 'transfer'>, fresh: boolean): Arrival {
  return fresh ? 'new' : action === 'link' ? 'linked' : 'copied';
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

export interface OwnerRule {
  /** Only root can give files other owners; anyone else's snapshot files are theirs. */
  asRoot: boolean;
  /** Keep the source's numbers rather than mapping its names to this machine's. */
  numericIds: boolean;
  ownUid: number;
  ownGid: number;
}

export interface AccountLookup {
  uidFor(uid: number, name?: string): number;
  gidFor(gid: number, name?: string): number;
}

/** The owner a snapshot entry gets from the source's numbers and names. */
export function ownerFor(
  entry: { uid: number; gid: number; user?: string; group?: string },
  rule: OwnerRule,
  accounts: AccountLookup,
): { uid: number; gid: number } {
  if (!rule.asRoot) return { uid: rule.ownUid, gid: rule.ownGid };
  if (rule.numericIds) return { uid: entry.uid, gid: entry.gid };
  return { uid: accounts.uidFor(entry.uid, entry.user), gid: accounts.gidFor(entry.gid, entry.group) };
}

/**
 * The identical-tree rule: while every entry so far equals the previous
 * snapshot's record at its path (and no previous record was passed over),
 * nothing is built, only counted; at the first difference `diverge` is told
 * how many records to replay from the previous manifest, once, and the tree is
 * built from then on. An unchanged run thus writes nothing at all.
 */
export class IdenticalTree {
  private identical: boolean;
  private prefix = 0;

  constructor(
    hasPrevious: boolean,
    always: boolean,
    private readonly diverge: (prefix: number) => void,
  ) {
    this.identical = hasPrevious && !always;
  }

  /** True while nothing has differed: no tree is being built. */
  get unchanged(): boolean {
    return this.identical;
  }

  /** An entry arrives; true when it equals the previous record at its path, so nothing is built for it. */
  same(previousBody: string | undefined, body: () => string): boolean {
    if (!this.identical) return false;
    if (previousBody !== undefined && previousBody === body()) {
      this.prefix++;
      return true;
    }
    this.differ();
    return false;
  }

  /** A difference that is no entry of its own: a previous record passed over or left at the end, an entry dropped. */
  differ(): void {
    if (!this.identical) return;
    this.identical = false;
    this.diverge(this.prefix);
  }

  /** No snapshot this run (the time budget ran out): nothing to build or replay. */
  abandon(): void {
    this.identical = false;
  }
}
