// What a restore's feed gives its writer, locally or after crossing a wire.
import type { EntryRecord } from '../diff/record.js';

/** One entry to restore: a manifest record, with its owners' names when it crossed machines. */
export interface RestoreRecord extends EntryRecord {
  /** A file of a hard-link group some later selected record names: to be remembered for linking. */
  grouped?: boolean;
  user?: string;
  group?: string;
}

/** The owner and group to give a restored entry (only root may). */
export interface OwnerMapping {
  uid(record: RestoreRecord): number;
  gid(record: RestoreRecord): number;
}

export interface RestoreTally {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  problems: number;
  /** Files left out because their content in the repository does not match its hash. */
  damaged: number;
}

/** Why the feed could not give a file's content; `damaged`: the repository is at fault. */
export interface FeedProblem {
  text: string;
  damaged: boolean;
}

/** A file's content is damaged in the repository (rotten, or missing from the snapshot's tree). */
export class DamagedContent extends Error {}
