// Source hard links: regular files sharing one (dev, ino) within this source form a
// group, sent as the index of the group's first entry. Only files with more than
// one link are remembered, each until all its links were met, so an ordinary tree
// costs nothing and memory holds only groups still open.
import type { BigIntStats } from 'node:fs';

interface OpenGroup<T> {
  first: T;
  /** Links of the inode not met yet (some may lie outside the source, or be excluded). */
  unseen: number;
}

/** `T` names an entry: its index on the wire, its path for `lb backup --verify`. */
export class LinkGroups<T = number> {
  private readonly open = new Map<string, OpenGroup<T>>();

  /** For the file entry at `index`: 'first' for a group's first, its first's index for the others, undefined for a file with one link. */
  place(stat: BigIntStats, index: T): 'first' | T | undefined {
    if (stat.nlink <= 1n) return undefined;
    const key = `${stat.dev}:${stat.ino}`;
    const group = this.open.get(key);
    if (group === undefined) {
      this.open.set(key, { first: index, unseen: Number(stat.nlink) - 1 });
      return 'first';
    }
    if (--group.unseen <= 0) this.open.delete(key);
    return group.first;
  }
}
