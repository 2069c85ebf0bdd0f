// What the source left out of a snapshot, as the repository side records it: every
// skip counted, the first ones listed (the result travels in one frame).
import type { SkipKind, SkipReport } from '../protocol/messages.js';

/** Enough to name what went wrong; a source of thousands of sockets is summed up by the counts. */
const LISTED = 1000;
/** …and within this many characters, so the result always fits its frame (paths can be 32 KiB each). */
const LISTED_CHARS = 1024 * 1024;

/** The first items that fit the result message; the counts (and the snapshot's log) have them all. */
export function firstListed<T>(items: T[], size: (item: T) => number): T[] {
  let chars = 0;
  let n = 0;
  while (n < items.length && n < LISTED && (chars += size(items[n]!)) <= LISTED_CHARS) n++;
  return items.slice(0, n);
}

/** A message on one line whatever the names it quotes hold: control bytes as \xNN (a newline in a name split a warning). */
export function oneLine(text: string): string {
  return text.replace(/[\x00-\x1f\x7f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** The summary's and the log's line for skipped FIFOs, sockets and devices: counted, not warned about. */
export function specialFilesLine(count: number): string {
  return `${count} special file${count === 1 ? '' : 's'} skipped (FIFOs, sockets, devices)`;
}

export class Skips {
  readonly listed: SkipReport[] = [];
  readonly counts: Record<SkipKind, number> = { unreadable: 0, special: 0 };

  add(path: Buffer, kind: SkipKind, reason: string): void {
    this.counts[kind]++;
    if (this.listed.length < LISTED) this.listed.push({ path: path.toString(), kind, reason: oneLine(reason) });
  }

  /** The listed skips that fit the result message. */
  reported(): SkipReport[] {
    return firstListed(this.listed, (s) => s.path.length + s.reason.length);
  }

  /** For the snapshot's log (unreadable paths are in it as warnings). */
  logLines(): string[] {
    return this.counts.special > 0 ? [specialFilesLine(this.counts.special)] : [];
  }
}
