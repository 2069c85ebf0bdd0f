// `lb verify` on one snapshot: its manifest and its tree merged in one pass in
// canonical order, so every record is matched with its tree entry and every tree
// entry with its record while memory stays flat. A directory missing on either
// side is one problem, not one per entry beneath it. Every regular file must be
// a hard link to an object of its content, and the walk notes which paths link
// to the objects --read-data found damaged.
import { join } from 'node:path';
import { comparePaths, isInside } from '../diff/order.js';
import type { ManifestRecord } from './manifest.js';
import { linkGroupFault } from './verify-links.js';
import { CheckedManifest } from './verify-manifest.js';
import { inodeKey, linkedObject, type DamagedObject } from './verify-store.js';
import { TreeWalk, entryDifferences, entryType, type TreeEntry } from './verify-tree.js';
import type { Problem } from './verify.js';

const WORDS: Record<string, string> = { file: 'a file', dir: 'a directory', symlink: 'a symlink' };

function beneath(count: number, where: string): string {
  return count === 0 ? '' : `, with ${count} ${count === 1 ? 'entry' : 'entries'} beneath it ${where}`;
}

export class SnapshotCheck {
  private readonly manifest: CheckedManifest;
  private readonly walk: TreeWalk;
  private record: ManifestRecord | null = null;
  private entry: TreeEntry | null = null;
  private readonly treeDir: string;

  constructor(
    root: string,
    private readonly snapshot: string,
    private readonly objectsDir: string,
    /** Damaged objects by inode, whose links this walk collects. */
    private readonly damaged: Map<string, DamagedObject>,
  ) {
    this.manifest = new CheckedManifest(join(root, snapshot, 'manifest'));
    this.treeDir = join(root, snapshot, 'tree');
    this.walk = new TreeWalk(Buffer.from(this.treeDir));
  }

  /** Manifest records read (the closing line's entries). */
  get records(): number {
    return this.manifest.count;
  }

  *problems(): Generator<Problem> {
    try {
      this.nextRecord();
      this.nextEntry();
      while (this.record !== null || this.entry !== null) {
        yield* this.walkFaults();
        if (this.record === null && this.manifest.fault !== null) break;
        const order = this.record === null ? 1 : this.entry === null ? -1 : comparePaths(this.record.path, this.entry.path);
        if (order < 0) yield this.missing(this.record!);
        else if (order > 0) yield this.unlisted(this.entry!);
        else yield* this.compare(this.record!, this.entry!);
      }
      yield* this.walkFaults();
      if (this.manifest.fault !== null) yield this.unreadableManifest(this.manifest.fault);
    } finally {
      this.manifest.close();
    }
  }

  private problem(kind: Problem['kind'], path: Buffer, detail: string): Problem {
    return { kind, snapshot: this.snapshot, path, detail };
  }

  private *walkFaults(): Generator<Problem> {
    for (const fault of this.walk.faults.splice(0)) yield this.problem('unreadable', fault.path, fault.detail);
  }

  private missing(record: ManifestRecord): Problem {
    const count = record.type === 'dir' ? this.skipRecordsInside(record.path) : (this.nextRecord(), 0);
    return this.problem('missing', record.path, `in the manifest but not in the tree${beneath(count, 'in the manifest')}`);
  }

  private unlisted(entry: TreeEntry): Problem {
    const count = entry.stat.isDirectory() ? this.skipEntriesInside(entry.path) : (this.nextEntry(), 0);
    return this.problem('unlisted', entry.path, `in the tree but not in the manifest${beneath(count, 'in the tree')}`);
  }

  private *compare(record: ManifestRecord, entry: TreeEntry): Generator<Problem> {
    const type = entryType(entry.stat);
    if (type !== record.type) {
      const records = record.type === 'dir' ? this.skipRecordsInside(record.path) : (this.nextRecord(), 0);
      const entries = type === 'dir' ? this.skipEntriesInside(entry.path) : (this.nextEntry(), 0);
      const more = beneath(records, 'in the manifest') + beneath(entries, 'in the tree');
      yield this.problem('metadata', record.path, `${WORDS[type] ?? `a ${type}`} in the tree, ${WORDS[record.type]} in the manifest${more}`);
      return;
    }
    const differs = entryDifferences(record, entry);
    if (differs.length > 0) yield this.problem('metadata', record.path, `differs from the manifest: ${differs.join(', ')}`);
    if (record.type === 'file') {
      const found = linkedObject(this.objectsDir, record, entry.stat);
      if (found === 'no object') yield this.problem('link', record.path, `no object of its content ${record.hash} is in the store`);
      if (found === 'other inode') yield this.problem('link', record.path, `not a hard link to a stored object of its content ${record.hash}`);
      if (record.link) {
        const fault = linkGroupFault(this.treeDir, record.link, entry.stat);
        if (fault !== null) yield this.problem('link', record.path, fault);
      }
    }
    this.nextRecord();
    this.nextEntry();
  }

  /** The manifest stopped at a fault: what is left of the tree is counted, not checked (a problem each would only repeat it). */
  private unreadableManifest(fault: string): Problem {
    let left = 0;
    while (this.entry !== null) {
      left++;
      this.nextEntry();
    }
    const rest = left === 0 ? '' : `; the ${left} tree ${left === 1 ? 'entry' : 'entries'} after its last sound record are not checked`;
    return { kind: 'manifest', snapshot: this.snapshot, detail: fault + rest };
  }

  private nextRecord(): void {
    this.record = this.manifest.next();
  }

  private nextEntry(): void {
    this.entry = this.walk.next();
    const stat = this.entry?.stat;
    if (stat?.isFile() && this.damaged.size > 0) this.damaged.get(inodeKey(stat))?.links.push({ snapshot: this.snapshot, path: this.entry!.path });
  }

  /** Moves past `dir`'s record and every record inside it; returns how many were inside. */
  private skipRecordsInside(dir: Buffer): number {
    let count = 0;
    for (this.nextRecord(); this.record !== null && isInside(this.record.path, dir); this.nextRecord()) count++;
    return count;
  }

  /** Moves past `dir`'s tree entry and everything beneath it; returns how many entries were beneath. */
  private skipEntriesInside(dir: Buffer): number {
    let count = 0;
    for (this.nextEntry(); this.entry !== null && isInside(this.entry.path, dir); this.nextEntry()) count++;
    return count;
  }
}
