// `lb verify` on the object store: every name in `.lb/objects/` must be an
// object name (docs/FORMAT.md), every object a regular file, a variant's inode
// must carry the metadata its name says; with --read-data the chosen objects are
// re-hashed, each read once, and the rotten ones remembered by inode so the
// walk of the trees can name every path that links to them.
import { lstatSync, readdirSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';
import type { ManifestRecord } from './manifest.js';
import { sha256OfFile } from './hash-file.js';
import { MTIME_TOLERANCE_NS, lstatOrNull, variantName, type ObjectMeta } from './object-files.js';
import type { Checked, Link, Problem } from './verify.js';

export interface ObjectName {
  hash: string;
  /** The metadata a variant's name says; null for a primary. */
  variant: ObjectMeta | null;
  /** N of a `+N` twin; null for the object itself. */
  twin: number | null;
}

const OBJECT_NAME = /^([0-9a-f]{64})(?:\.([0-7]+)\.([0-9]+)\.([0-9]+)\.(-?[0-9]+))?(?:\+([1-9][0-9]*))?$/;
const FANOUT_NAME = /^[0-9a-f]{2}$/;

/** What an object's file name says, or null when it is not an object name. */
export function parseObjectName(name: string): ObjectName | null {
  const m = OBJECT_NAME.exec(name);
  if (!m) return null;
  const variant = m[2] === undefined ? null : { mode: parseInt(m[2], 8), uid: Number(m[3]), gid: Number(m[4]), mtimeNs: BigInt(m[5]!) };
  if (variant && variant.mode > 0o7777) return null;
  return { hash: m[1]!, variant, twin: m[6] === undefined ? null : Number(m[6]) };
}

/** An inode as a map key: device and inode number. */
export function inodeKey(stat: BigIntStats): string {
  return `${stat.dev}:${stat.ino}`;
}

/** An object found rotten or unreadable by --read-data, and the tree files linked to it. */
export interface DamagedObject {
  kind: 'rotten' | 'unreadable';
  object: string;
  detail: string;
  links: Link[];
}

export class StoreCheck {
  /** Objects whose content does not hash to their name or cannot be read, by inode; the tree walk adds their links. */
  readonly damaged = new Map<string, DamagedObject>();

  constructor(
    private readonly objectsDir: string,
    /** Whether to re-read the object of this content; null without --read-data. */
    private readonly takes: ((hash: string) => boolean) | null,
    private readonly checked: Checked,
  ) {}

  /** Every fan-out directory and every name in it, in sorted order. */
  *problems(): Generator<Problem> {
    let fanouts: string[];
    try {
      fanouts = readdirSync(this.objectsDir).sort();
    } catch (error) {
      yield { kind: 'unreadable', object: '.lb/objects', detail: `cannot list the object store: ${(error as Error).message}` };
      return;
    }
    for (const fanout of fanouts) {
      const dir = join(this.objectsDir, fanout);
      const shown = `.lb/objects/${fanout}`;
      if (!FANOUT_NAME.test(fanout)) {
        yield { kind: 'stray', object: shown, detail: 'stray in the object store: not a fan-out directory (two lowercase hex digits)' };
        continue;
      }
      let names: string[];
      try {
        names = readdirSync(dir).sort();
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOTDIR') yield { kind: 'stray', object: shown, detail: 'stray in the object store: a fan-out name that is not a directory' };
        else if (code !== 'ENOENT') yield { kind: 'unreadable', object: shown, detail: `cannot list: ${(error as Error).message}` };
        continue;
      }
      for (const name of names) yield* this.checkObject(join(dir, name), `${shown}/${name}`, fanout, name);
    }
  }

  private *checkObject(path: string, shown: string, fanout: string, name: string): Generator<Problem> {
    const parsed = parseObjectName(name);
    if (!parsed) {
      yield { kind: 'stray', object: shown, detail: 'stray in the object store: not an object name (64 lowercase hex digits, then metadata or +N)' };
      return;
    }
    if (!parsed.hash.startsWith(fanout)) {
      yield { kind: 'stray', object: shown, detail: `stray in the object store: its hash belongs in .lb/objects/${parsed.hash.slice(0, 2)}` };
      return;
    }
    let stat: BigIntStats;
    try {
      stat = lstatSync(path, { bigint: true });
    } catch (error) {
      // Gone since the listing: set aside by a running backup, which found it damaged and stores it anew.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') yield { kind: 'unreadable', object: shown, detail: (error as Error).message };
      return;
    }
    if (!stat.isFile()) {
      yield { kind: 'object', object: shown, detail: 'not a regular file' };
      return;
    }
    this.checked.objects++;
    const differs = parsed.variant ? metadataDifferences(stat, parsed.variant) : [];
    if (differs.length > 0) yield { kind: 'object', object: shown, detail: `its inode has other metadata than its name says: ${differs.join(', ')}` };
    if (this.takes?.(parsed.hash)) this.reread(path, shown, parsed.hash, stat);
  }

  private reread(path: string, shown: string, hash: string, stat: BigIntStats): void {
    let found: string;
    try {
      found = sha256OfFile(path, (n) => (this.checked.bytesRead += n));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.damaged.set(inodeKey(stat), { kind: 'unreadable', object: shown, detail: `cannot be read: ${(error as Error).message}`, links: [] });
      return;
    }
    this.checked.objectsRead++;
    if (found !== hash) this.damaged.set(inodeKey(stat), { kind: 'rotten', object: shown, detail: `its content hashes to ${found}, not to its name`, links: [] });
  }

}

/** How an inode's metadata differs from the wanted metadata (mtimes within lb's 2 µs). */
export function metadataDifferences(stat: BigIntStats, wanted: ObjectMeta, withMode = true): string[] {
  const differs: string[] = [];
  const mode = Number(stat.mode & 0o7777n);
  if (withMode && mode !== wanted.mode) differs.push(`mode ${mode.toString(8)}, not ${wanted.mode.toString(8)}`);
  if (Number(stat.uid) !== wanted.uid) differs.push(`uid ${stat.uid}, not ${wanted.uid}`);
  if (Number(stat.gid) !== wanted.gid) differs.push(`gid ${stat.gid}, not ${wanted.gid}`);
  const drift = stat.mtimeNs - wanted.mtimeNs;
  if (drift >= MTIME_TOLERANCE_NS || drift <= -MTIME_TOLERANCE_NS) differs.push(`mtime ${stat.mtimeNs} ns, not ${wanted.mtimeNs}`);
  return differs;
}

/**
 * Whether a tree file is a hard link to an object of its record: the primary,
 * the variant its metadata names, or a `+N` twin of either (looked up by name:
 * a few lstats, no listing of the fan-out directory).
 */
export function linkedObject(objectsDir: string, record: ManifestRecord, stat: BigIntStats): 'linked' | 'other inode' | 'no object' {
  const dir = join(objectsDir, record.hash.slice(0, 2));
  let anyStored = false;
  for (const name of [record.hash, variantName(record.hash, record)]) {
    // Twins are made +1, +2, … in turn, and outlive the object they copy when it is set aside.
    for (let twin = 0; ; twin++) {
      const object = lstatOrNull(join(dir, twin === 0 ? name : `${name}+${twin}`));
      if (object === null && twin > 0) break;
      if (object === null) continue;
      anyStored = true;
      if (object.ino === stat.ino && object.dev === stat.dev) return 'linked';
    }
  }
  return anyStored ? 'other inode' : 'no object';
}
