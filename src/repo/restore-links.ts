// Source hard links on restore. A record naming its group's first path (format 2)
// becomes a hard link to the file restored for that group in this run; when the
// first was not restored (not selected by --path, or left out), the member is
// copied and the group's next members link to it instead. Only the paths some
// selected record names are remembered, one per group. A link is made to a
// temporary name beside the member, checked to be the very inode written for the
// group, and renamed into place: link(2) never follows a symlink it is given, and
// rename(2) replaces the entry itself. A link that cannot be made (past PATH_MAX,
// at the link limit) leaves the member a copy, said as a problem.
import { linkSync, lstatSync, unlinkSync } from 'node:fs';
import { atPath } from './deep-path.js';
import type { ManifestRecord } from './manifest.js';

interface Written {
  path: Buffer;
  dev: bigint;
  ino: bigint;
  /** What every member must share with it: a hand-edited manifest may claim otherwise. */
  identity: string;
}

function identity(r: ManifestRecord): string {
  return [r.hash, r.size, r.mtimeNs, r.mode, r.uid, r.gid].join(' ');
}

const key = (path: Buffer) => path.toString('latin1');

export class RestoredLinks {
  private readonly written = new Map<string, Written>();

  private constructor(private readonly wanted: Set<string>) {}

  /** From the records the restore will write: the group firsts they name. */
  static of(records: Iterable<ManifestRecord>): RestoredLinks {
    const wanted = new Set<string>();
    for (const record of records) if (record.link) wanted.add(key(record.link));
    return new RestoredLinks(wanted);
  }

  /**
   * Makes `record` a hard link to its group's file restored before (through `temporary`); false
   * when there is none (it is then to be copied) or the link failed (`failed` says why).
   */
  link(record: ManifestRecord, temporary: Buffer, replace: (temporary: Buffer) => void, failed: (why: string) => void): boolean {
    const first = record.link ? this.written.get(key(record.link)) : undefined;
    if (first === undefined || first.identity !== identity(record)) return false;
    try {
      linkSync(first.path, temporary);
    } catch (error) {
      failed(`restored as a copy, not as a hard link to ${record.link!.toString()}: ${(error as Error).message}`);
      return false;
    }
    try {
      const made = lstatSync(temporary, { bigint: true });
      if (made.dev !== first.dev || made.ino !== first.ino) throw new Error(`${first.path.toString()} was replaced during the restore`);
      replace(temporary);
      return true;
    } catch (error) {
      unlinkSync(temporary);
      failed(`restored as a copy, not as a hard link to ${record.link!.toString()}: ${(error as Error).message}`);
      return false;
    }
  }

  /** After `record` was copied to `destination`: remembered when later members of its group are to link to it. */
  copied(record: ManifestRecord, destination: Buffer): void {
    const group = key(record.link ?? record.path);
    if (!this.wanted.has(group) || this.written.has(group)) return;
    const stat = atPath(destination, (path) => lstatSync(path, { bigint: true }));
    this.written.set(group, { path: destination, dev: stat.dev, ino: stat.ino, identity: identity(record) });
  }
}
