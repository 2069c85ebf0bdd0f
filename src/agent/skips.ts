// What the source left out of a snapshot, as the repository side records it: every
// skip counted, the first ones listed (the result travels in one frame).
import type { SkipKind, SkipReport } from '../protocol/messages.js';

/** Enough to name what went wrong; a source of thousands of sockets is summed up by the counts. */
const LISTED = 1000;

/** The summary's and the log's line for skipped FIFOs, sockets and devices: counted, not warned about. */
export function specialFilesLine(count: number): string {
  return `${count} special file${count === 1 ? '' : 's'} skipped (FIFOs, sockets, devices)`;
}

export class Skips {
  readonly listed: SkipReport[] = [];
  readonly counts: Record<SkipKind, number> = { unreadable: 0, special: 0 };

  add(path: Buffer, kind: SkipKind, reason: string): void {
    this.counts[kind]++;
    if (this.listed.length < LISTED) this.listed.push({ path: path.toString(), kind, reason });
  }

  /** For the snapshot's log (unreadable paths are in it as warnings). */
  logLines(): string[] {
    return this.counts.special > 0 ? [specialFilesLine(this.counts.special)] : [];
  }
}
