// What the source side remembers of the entry stream it last sent to a repository
// (and series), so that the next run can send runs of unchanged entries as counts
// (protocol 8, docs/PROTOCOL.md "Version 8"). One file per repository and series,
// beside the catalog (sent-stream-file.ts), holding one line per entry the
// published snapshot holds, in canonical order: its stream line (the fields the
// repository's stream digest covers, repo/stream-digest.ts) and, for this side
// only, the source's owner and whether the file was a source hard link.
//
// Reading: the walk's entries merge with the remembered lines in canonical order;
// an entry whose line is the remembered one, with a hash the catalog vouches for,
// may go as part of a run, once the repository side has said that its latest
// snapshot is exactly the remembered stream. Writing: each entry sent is kept until
// it settles, with the facts this side answered for it (a file read again may have
// changed), then written out and added to the new stream's digest; the file
// replaces the old one only when the run published its snapshot.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { comparePaths } from '../diff/order.js';
import { isPreviousRun, type Entry, type EntryItem, type FileFacts, type MovedFrom, type RunResult, type SourceMessage } from '../protocol/messages.js';
import { escapeBytes } from '../repo/manifest.js';
import { StreamDigest, streamLine } from '../repo/stream-digest.js';
import { MovedDirectories, pathOfLine } from './moved-dirs.js';
import { SentStreamReader, SentStreamWriter } from './sent-stream-file.js';

/** The remembered stream of `repository` (as lb names it: a local path, or user@host:path) and `series`. */
export function sentStreamPath(catalogPath: string, repository: string, series: string | undefined): string {
  const key = createHash('sha256').update(JSON.stringify([repository, series ?? null])).digest('hex').slice(0, 32);
  return join(`${catalogPath}-sent`, key);
}

/** An entry sent, until it settles. */
interface Unsettled {
  entry: Entry;
  /** Its line as sent; null once facts changed it. */
  line: string | null;
  dropped: boolean;
  /** A directory's "<dev>:<ino>", for the next run to find it if it moves. */
  directory: string | undefined;
}

/** What goes on the wire for an entry: itself, one more of a run in place, or one more of a moved run. */
export type SentItem = Entry | { over: number } | { moved: MovedFrom };

/** The part of a line the repository cannot know: the source's owner, and 'l' for a source hard link. */
function ownerPart(e: Entry): string {
  const name = (n: string | undefined) => (n === undefined ? '-' : escapeBytes(Buffer.from(n)));
  return [e.uid, e.gid, name(e.user), name(e.group), e.link === undefined ? '-' : 'l'].join('\t');
}

function lineOf(e: Entry): string {
  const { type, path, size, mtimeNs, mode } = e;
  return streamLine({ type, path, size, mtimeNs, mode, hash: e.hash ?? '', target: e.target ?? null }) + '\t' + ownerPart(e);
}

/** A remembered line's stream part: its first seven fields. */
function streamPart(line: string): string {
  let at = -1;
  for (let i = 0; i < 7; i++) at = line.indexOf('\t', at + 1);
  return line.slice(0, at);
}

export class SentMemory {
  private remembered: SentStreamReader | null;
  private head: { line: string; path: Buffer } | null = null;
  /** Index of `head` among the remembered lines. */
  private headIndex = 0;
  /** Remembered lines the repository side has passed (as its own merge with the manifest has). */
  private consumed = 0;
  private referencing = false;
  private moves: MovedDirectories | null = null;
  /** Made at the first entry settled: a run that fails before leaves nothing behind. */
  private writer: SentStreamWriter | null = null;
  private readonly digest = new StreamDigest();
  private readonly unsettled: (Unsettled | undefined)[] = [];
  private unsettledBase = 0;
  private finished = false;

  private constructor(private readonly path: string) {
    this.remembered = SentStreamReader.open(path);
  }

  /** The memory kept at `path`; undefined when it cannot be kept (the catalog's directory is not writable, say). */
  static open(path: string): SentMemory | undefined {
    try {
      mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
      return new SentMemory(path);
    } catch {
      return undefined;
    }
  }

  /** The digest to name in the hello: the stream this side remembers sending. */
  get offered(): string | undefined {
    return this.remembered?.digest;
  }

  /** The repository side's hello said whether its latest snapshot is that stream. */
  useReferences(accepted: boolean): void {
    this.referencing = accepted && this.remembered !== null;
    if (!this.referencing) return this.forget();
    this.moves = new MovedDirectories(this.path, this.directoryIndex());
    this.advance();
  }

  /** The remembered directories' inodes, read by a reader of their own (the lines are read in step with the walk). */
  private directoryIndex(): Map<string, number> {
    const reader = SentStreamReader.open(this.path);
    try {
      return reader?.digest === this.remembered!.digest ? reader.directories() : new Map();
    } finally {
      reader?.close();
    }
  }

  private forget(): void {
    this.remembered?.close();
    this.remembered = null;
    this.head = null;
  }

  private advance(): void {
    const line = this.remembered?.next() ?? null;
    if (line === null) return this.forget();
    this.head = { line, path: pathOfLine(line) };
  }

  /** The next entry of the walk, in canonical order, as it goes on the wire; `directory`: a directory's "<dev>:<ino>". */
  item(entry: Entry, directory?: string): SentItem {
    const line = lineOf(entry);
    this.unsettled.push({ entry, line, dropped: false, directory });
    if (!this.referencing) return entry;
    while (this.head && comparePaths(this.head.path, entry.path) < 0) {
      this.headIndex++;
      this.advance();
    }
    let same = false;
    const at = this.headIndex;
    // A file only with a hash the catalog vouches for now; never a source hard link (runs carry no groups).
    const runnable = entry.link === undefined && (entry.type !== 'file' || entry.hash !== undefined);
    if (this.head && this.head.path.equals(entry.path)) {
      same = this.head.line === line && runnable;
      this.headIndex++;
      this.advance();
    }
    const over = at - this.consumed;
    // The repository side passes over the same records of its previous manifest for any entry (previousAt).
    this.consumed = this.headIndex;
    if (same) return { over };
    const moved = runnable ? this.moves?.match(entry, line, directory) : null;
    return moved ? { moved } : entry;
  }

  /** Facts this side answered change what the snapshot records; an entry it could not read is not in it. */
  observe(message: SourceMessage): void {
    // A data-end without facts: those of its hashed, already applied.
    if ((message.t === 'hashed' || message.t === 'data-end') && message.facts) this.applyFacts(message.index, message.facts);
    else if (message.t === 'unreadable') {
      const kept = this.unsettled[message.index - this.unsettledBase];
      if (kept) kept.dropped = true;
    }
  }

  private applyFacts(index: number, facts: FileFacts): void {
    const kept = this.unsettled[index - this.unsettledBase];
    if (!kept) return;
    kept.entry = { ...kept.entry, hash: facts.hash, size: facts.size, mtimeNs: facts.mtimeNs };
    kept.line = null;
  }

  /** Entries below `upTo` are final: written out in order. */
  settled(upTo: number): void {
    const count = upTo - this.unsettledBase;
    if (count <= 0 || this.finished) return;
    try {
      for (const kept of this.unsettled.splice(0, count)) {
        if (!kept || kept.dropped) continue;
        const line = kept.line ?? lineOf(kept.entry);
        this.digest.add(streamPart(line));
        this.writer ??= new SentStreamWriter(`${this.path}.${process.pid}.tmp`);
        this.writer.add(line, kept.directory);
      }
      this.unsettledBase = upTo;
    } catch {
      // Only a cache, never the run's failure: this run's stream is not kept.
      this.finish(null);
    }
  }

  /**
   * The run is over: the new stream replaces the remembered one only when a snapshot was published and every
   * entry sent was settled; otherwise the remembered one stays (an aborted run changes nothing).
   */
  finish(result: RunResult | null): void {
    if (this.finished) return;
    this.finished = true;
    this.forget();
    // Moved directories are looked up after the remembered stream's end too: kept until now.
    this.moves?.stop();
    this.moves = null;
    try {
      if (result?.created && this.unsettled.length === 0 && this.writer) this.writer.publish(this.path, this.digest.hex());
      else this.writer?.discard();
    } catch {
      // Only a cache: the next run sends whole entries.
      try {
        this.writer?.discard();
      } catch {
        // already gone
      }
    }
  }
}

/** Appends an entry or one more entry of a run to a batch, continuing the run before it when it follows on. */
export function appendItem(batch: EntryItem[], item: SentItem): void {
  const last = batch[batch.length - 1];
  const run = last !== undefined && isPreviousRun(last) ? last : undefined;
  if ('moved' in item) {
    const m = item.moved;
    const before = run?.moved;
    if (before && before.from.equals(m.from) && before.to.equals(m.to) && before.at + run!.count === m.at) run!.count++;
    else batch.push({ count: 1, over: 0, moved: m });
  } else if ('over' in item) {
    if (item.over === 0 && run && !run.moved) run.count++;
    else batch.push({ count: 1, over: item.over });
  } else batch.push(item);
}
