// One entry of a snapshot as every decision sees it: what a manifest records
// (repo/manifest.ts adds how the file arrived), what `lb diff` and `lb backup
// --verify` compare, what a restore writes.

export type EntryType = 'file' | 'dir' | 'symlink';

export interface EntryRecord {
  type: EntryType;
  /** Raw bytes, relative to the tree; the root is the empty path. */
  path: Buffer;
  /** sha256 hex of a file's content; '' otherwise. */
  hash: string;
  /** A file's size in bytes; 0 for the others. */
  size: number;
  mtimeNs: bigint;
  /** Permission bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** A symlink's target; null otherwise. */
  target: Buffer | null;
  /** A file of a source hard-link group other than its first: the group's first path, earlier in the manifest. */
  link?: Buffer;
}
