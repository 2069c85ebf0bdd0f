// Moved directories (protocol 8, docs/PROTOCOL.md "Version 8: moved runs"): a
// directory of this walk with the device and inode of a remembered directory at
// another path was most likely moved there. Its remembered subtree is read from
// the remembered stream (found through its directory index, one entry per
// directory) in step with the walk inside the new path; an entry whose line is the
// remembered one with the path re-rooted goes as one more entry of a moved run,
// which the repository side takes from its own previous manifest. Anything else in
// there (changed, new) goes whole, and remembered entries gone are passed over:
// a moved directory with a rewritten file still goes mostly as runs.
//
// Only one moved directory is followed at a time (a move inside a moved directory
// goes whole), and only one block of remembered lines is held: memory does not grow
// with the number of files.
import { comparePaths, isInside } from '../diff/order.js';
import type { Entry, MovedFrom } from '../protocol/messages.js';
import { escapeBytes, unescapeBytes } from '../repo/manifest.js';
import { SentStreamReader } from './sent-stream-file.js';

interface Followed {
  /** The remembered path, and where it is in this walk. */
  from: Buffer;
  to: Buffer;
  reader: SentStreamReader;
  /** The next remembered line of the subtree, its path re-rooted at `to`; null past the subtree's end. */
  head: { line: string; path: Buffer } | null;
  /** Index of `head` in the subtree (the directory's own line is 0). */
  at: number;
}

/** A remembered line's path: its second field. */
export function pathOfLine(line: string): Buffer {
  const start = line.indexOf('\t') + 1;
  return unescapeBytes(line.slice(start, line.indexOf('\t', start)));
}

/** The line with its path replaced by `path`. */
function withPath(line: string, path: Buffer): string {
  const start = line.indexOf('\t') + 1;
  return line.slice(0, start) + escapeBytes(path) + line.slice(line.indexOf('\t', start));
}

export class MovedDirectories {
  private followed: Followed | null = null;

  constructor(
    /** The remembered stream's file. */
    private readonly streamPath: string,
    /** Its directory index: "<dev>:<ino>" to the position of the directory's line. */
    private readonly directories: Map<string, number>,
  ) {}

  /**
   * For an entry of the walk (in canonical order) that the in-place remembered stream did not match: where it
   * is in a moved directory's remembered subtree, when its line there is `line` but for the path; else null.
   * `directory`: a directory's "<dev>:<ino>".
   */
  match(entry: Entry, line: string, directory: string | undefined): MovedFrom | null {
    let f = this.followed;
    if (f && !entry.path.equals(f.to) && !isInside(entry.path, f.to)) f = this.stop();
    // Never the root: re-rooting replaces a directory's path, and the root has none.
    if (!f && directory !== undefined && entry.path.length > 0) f = this.follow(entry.path, directory);
    if (!f) return null;
    while (f.head && comparePaths(f.head.path, entry.path) < 0) this.advance(f);
    if (!f.head || !f.head.path.equals(entry.path)) return null;
    const same = withPath(f.head.line, entry.path) === line;
    const at = f.at;
    this.advance(f);
    return same ? { from: f.from, to: f.to, at } : null;
  }

  private follow(to: Buffer, directory: string): Followed | null {
    const position = this.directories.get(directory);
    if (position === undefined) return null;
    const reader = SentStreamReader.open(this.streamPath);
    if (!reader) return null;
    reader.seek(position);
    const line = reader.next();
    const from = line === null ? null : pathOfLine(line);
    // At its own path it is no move: the in-place stream had it, or it changed.
    if (line === null || from === null || from.length === 0 || from.equals(to) || !line.startsWith('d\t')) {
      reader.close();
      return null;
    }
    return (this.followed = { from, to, reader, head: { line, path: to }, at: 0 });
  }

  private advance(f: Followed): void {
    f.at++;
    const line = f.reader.next();
    const path = line === null ? null : pathOfLine(line);
    f.head = line !== null && path !== null && isInside(path, f.from) ? { line, path: Buffer.concat([f.to, path.subarray(f.from.length)]) } : null;
  }

  stop(): null {
    this.followed?.reader.close();
    this.followed = null;
    return null;
  }
}
