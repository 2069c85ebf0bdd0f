// The file in which the source side keeps the entry stream it last sent to one
// repository (and series), read and written one block at a time so that memory
// does not grow with the number of files:
//
//   header   128 bytes: "lb sent stream 2 <stream digest, 64 hex> <index offset>\n", padded
//            with spaces
//   blocks   each a u32 big-endian length and a gzip member of whole lines (gzip's CRC
//            catches a damaged block: the stream then ends there, and what follows is
//            sent as whole entries)
//   index    from the index offset to the end, blocks as above of one line per directory:
//            "<dev>:<ino> TAB <position>", where its line is (position = block offset
//            x 2^20 + line number in the block); a moved directory is found by its inode
//            (moved-dirs.ts)
//
// A new file is written under a temporary name, its header last, and renamed over the
// old one only when the run published its snapshot.
import { closeSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';

const HEADER_SIZE = 128;
const MAGIC = 'lb sent stream 2 ';
/** A position is a block's offset times this plus a line's number in it (a block has fewer lines than this). */
const LINE_SPAN = 2 ** 20;
/** Lines are gathered into blocks of about this many characters before compression. */
const BLOCK = 1 << 20;
/** A block's length beyond this is damage, not data. */
const MAX_BLOCK = 64 << 20;

export class SentStreamReader {
  private lines: string[] = [];
  private offset = HEADER_SIZE;
  private ended = false;
  /** Where reading stops: the lines end where the index begins. */
  private limit: number;

  private constructor(
    private readonly fd: number,
    readonly digest: string,
    /** Where the lines end and the directory index begins. */
    private readonly indexOffset: number,
  ) {
    this.limit = indexOffset;
  }

  /** The stream kept at `path`, or null when there is none or its header is not one. */
  static open(path: string): SentStreamReader | null {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return null;
    }
    const header = Buffer.alloc(HEADER_SIZE);
    const read = readSync(fd, header, 0, HEADER_SIZE, 0);
    const match = /^lb sent stream 2 ([0-9a-f]{64}) ([0-9]{1,15})\n/.exec(header.toString('latin1', 0, read));
    if (!match) {
      closeSync(fd);
      return null;
    }
    return new SentStreamReader(fd, match[1]!, Number(match[2]));
  }

  /** Go on reading at the line at `position` (from the directory index); the stream ends early if it is not one. */
  seek(position: number): void {
    this.offset = Math.floor(position / LINE_SPAN);
    this.ended = false;
    this.lines = [];
    if (this.offset < HEADER_SIZE || !this.readBlock()) return void this.end();
    const line = position % LINE_SPAN;
    if (line >= this.lines.length) return void this.end();
    // Lines are kept last first: the block's first lines are at the end.
    this.lines.length -= line;
  }

  /** The directory index: each remembered directory's "<dev>:<ino>" and the position of its line. */
  directories(): Map<string, number> {
    const found = new Map<string, number>();
    this.offset = this.indexOffset;
    this.limit = Infinity;
    this.ended = false;
    this.lines = [];
    for (let line = this.next(); line !== null; line = this.next()) {
      const tab = line.indexOf('\t');
      const position = Number(line.slice(tab + 1));
      if (tab > 0 && Number.isSafeInteger(position)) found.set(line.slice(0, tab), position);
    }
    return found;
  }

  /** The next line, or null at the end (or at the first damaged block). */
  next(): string | null {
    while (this.lines.length === 0) {
      if (this.ended || !this.readBlock()) return null;
    }
    return this.lines.pop()!;
  }

  private readBlock(): boolean {
    if (this.offset >= this.limit) return this.end();
    try {
      const length = Buffer.alloc(4);
      if (readSync(this.fd, length, 0, 4, this.offset) < 4) return this.end();
      const size = length.readUInt32BE(0);
      if (size > MAX_BLOCK) return this.end();
      const block = Buffer.alloc(size);
      if (readSync(this.fd, block, 0, size, this.offset + 4) < size) return this.end();
      this.offset += 4 + size;
      const text = gunzipSync(block).toString('utf8');
      this.lines = text.split('\n');
      this.lines.pop(); // after the last newline
      this.lines.reverse();
      return true;
    } catch {
      return this.end();
    }
  }

  private end(): false {
    this.ended = true;
    this.lines = [];
    return false;
  }

  close(): void {
    closeSync(this.fd);
  }
}

export class SentStreamWriter {
  private readonly fd: number;
  private chunks: string[] = [];
  private size = 0;
  private offset = HEADER_SIZE;
  /** The directory index, compressed a block at a time as it grows; written after the lines. */
  private readonly index: Buffer[] = [];
  private indexLines: string[] = [];
  private indexSize = 0;

  constructor(private readonly temporary: string) {
    this.fd = openSync(temporary, 'w', 0o600);
  }

  /** `directory`: a directory's "<dev>:<ino>", for the index. */
  add(line: string, directory?: string): void {
    if (directory !== undefined) this.indexDirectory(directory, this.offset * LINE_SPAN + this.chunks.length / 2);
    this.chunks.push(line, '\n');
    this.size += line.length + 1;
    if (this.size >= BLOCK) this.flush();
  }

  private indexDirectory(directory: string, position: number): void {
    const line = `${directory}\t${position}\n`;
    this.indexLines.push(line);
    this.indexSize += line.length;
    if (this.indexSize >= BLOCK) this.compressIndex();
  }

  private compressIndex(): void {
    if (this.indexSize === 0) return;
    this.index.push(gzipSync(this.indexLines.join(''), { level: 1 }));
    this.indexLines = [];
    this.indexSize = 0;
  }

  private flush(): void {
    if (this.size === 0) return;
    this.writeBlock(gzipSync(this.chunks.join(''), { level: 1 }));
    this.chunks = [];
    this.size = 0;
  }

  private writeBlock(block: Buffer): void {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(block.length, 0);
    this.offset += writeSync(this.fd, length, 0, 4, this.offset);
    this.offset += writeSync(this.fd, block, 0, block.length, this.offset);
  }

  /** Complete the file with the stream's digest and put it at `path`, replacing the one kept before. */
  publish(path: string, digest: string): void {
    this.flush();
    const indexOffset = this.offset;
    this.compressIndex();
    for (const block of this.index) this.writeBlock(block);
    writeSync(this.fd, Buffer.from(`${MAGIC}${digest} ${indexOffset}\n`.padEnd(HEADER_SIZE, ' '), 'latin1'), 0, HEADER_SIZE, 0);
    fsyncSync(this.fd);
    closeSync(this.fd);
    renameSync(this.temporary, path);
  }

  discard(): void {
    try {
      closeSync(this.fd);
    } finally {
      rmSync(this.temporary, { force: true });
    }
  }
}
