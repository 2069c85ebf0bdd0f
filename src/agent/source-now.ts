// `lb backup --verify`: the source as it is now, walked as the backup walked it
// (the repository left out when it lies inside, special files skipped), each
// entry's owner mapped as the repository side mapped it: by that side's rule
// and its names, which are this machine's when the repository is here and the
// remote's when it is not (the agent sends them, or, pulling, lb sends its own
// to the agent walking the source).
import type { BigIntStats } from 'node:fs';
import { parentPath } from '../diff/order.js';
import { ownerFor, type AccountLookup, type OwnerRule } from '../diff/plan.js';
import type { RepositoryIdentity } from '../protocol/messages.js';
import type { WireOwners } from '../protocol/verify-backup.js';
import { sha256OfFile } from '../repo/hash-file.js';
import type { SourceEntry, SourceSide } from '../repo/verify-source.js';
import { AccountTables, Accounts } from '../scan/accounts.js';
import { LinkGroups } from '../scan/link-groups.js';
import type { Selection } from '../scan/selection.js';
import { walk, type ScanEntry } from '../scan/walk.js';
import { bootId } from './machine.js';

export interface SourceNowSetup {
  sourceRoot: string;
  /** The repository's own directory, never walked into (as the backup's walk does not). */
  isRepository?: (stat: BigIntStats) => boolean;
  /** How the repository side gave snapshot files their owners, and the names it maps. */
  ownerRule: OwnerRule;
  ownerNames: AccountLookup;
  /** What the backup took from the source (excludes, tags, file list): the rest is not compared. */
  selection?: Selection;
}

export function sourceNow(setup: SourceNowSetup): SourceSide {
  const leftOut = new Map<string, string>();
  // The source's own names for its owners, as its side of a backup sends them.
  const accounts = new Accounts();
  const linkGroups = new LinkGroups<Buffer>();
  const toEntry = (scanned: ScanEntry): SourceEntry => {
    const uid = Number(scanned.stat.uid);
    const gid = Number(scanned.stat.gid);
    const owner = ownerFor({ uid, gid, user: accounts.userName(uid), group: accounts.groupName(gid) }, setup.ownerRule, setup.ownerNames);
    return {
      path: scanned.path,
      type: scanned.type,
      size: scanned.type === 'file' ? Number(scanned.stat.size) : 0,
      mtimeNs: scanned.stat.mtimeNs,
      mode: Number(scanned.stat.mode & 0o7777n),
      ...owner,
      target: scanned.target ?? null,
      ...linkOf(scanned),
    };
  };
  // As the source side groups them: a file with more links than one names its group's first path.
  const linkOf = (scanned: ScanEntry): { link?: Buffer } => {
    const first = scanned.type === 'file' ? linkGroups.place(scanned.stat, scanned.path) : undefined;
    return first === undefined || first === 'first' ? {} : { link: first };
  };
  async function* entries(): AsyncGenerator<SourceEntry> {
    const walking = walk(setup.sourceRoot, {
      prune: setup.isRepository,
      selection: setup.selection,
      onSkip: (skipped) => skipped.kind === 'unreadable' && leftOut.set(skipped.path.toString('latin1'), skipped.reason),
    });
    for await (const scanned of walking) yield toEntry(scanned);
  }
  const root = Buffer.from(setup.sourceRoot + '/');
  return {
    entries: entries(),
    hash: (path, onBytes) => sha256OfFile(Buffer.concat([root, path]), onBytes),
    // A path the walk could not examine, or one inside a directory it could not list.
    leftOut: (path) => {
      for (let at: Buffer | null = path; at !== null; at = parentPath(at)) {
        const why = leftOut.get(at.toString('latin1'));
        if (why !== undefined) return why;
      }
      return undefined;
    },
  };
}

/**
 * The source as the repository side on another machine, or in another process,
 * would have stored it: its owner rule and account names as that side sent them,
 * its directory left out when it lies on this machine.
 */
export function sourceAsMappedThere(
  sourceRoot: string,
  numericIds: boolean,
  owners: WireOwners,
  repository: RepositoryIdentity | undefined,
  selection: Selection | undefined,
): SourceSide {
  const here = repository !== undefined && repository.boot === bootId();
  return sourceNow({
    sourceRoot,
    isRepository: here ? (stat) => stat.dev === repository.dev && stat.ino === repository.ino : undefined,
    ownerRule: { asRoot: owners.asRoot, numericIds, ownUid: owners.uid, ownGid: owners.gid },
    ownerNames: new AccountTables(owners.users, owners.groups),
    selection,
  });
}
