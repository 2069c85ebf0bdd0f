// The file in which the source side keeps the entry stream it last sent to one
// repository (and series), read and written one block at a time so that memory
// does not grow with the number of files:
//
//   header   128 bytes: "lb sent stream 1 <stream digest, 64 hex>\n", padded with spaces
//   blocks   each a u32 big-endian length and a gzip member of whole lines (gzip's CRC
//            catches a damaged block: the stream then ends there, and what follows is
//            sent as whole entries)
//
// A new file is written under a temporary name, its header last, and renamed over the
// old one only when the run published its snapshot.
import { closeSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';

const HEADER_SIZE = 128;
const MAGIC = 'lb sent stream 1 ';
/** Lines are gathered into blocks of about this many characters before compression. */
const BLOCK = 1 << 20;
/** A block's length beyond this is damage, not data. */
const MAX_BLOCK = 64 << 20;

export class SentStreamReader {
  private lines: string[] = [];
  private offset = HEADER_SIZE;
  private ended = false;

  private constructor(
    private readonly fd: number,
    readonly digest: string,
  ) {}

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
    const match = /^lb sent stream 1 ([0-9a-f]{64})\n/.exec(header.toString('latin1', 0, read));
    if (!match) {
      closeSync(fd);
      return null;
    }
    return new SentStreamReader(fd, match[1]!);
  }

  /** The next line, or null at the end (or at the first damaged block). */
  next(): string | null {
    while (this.lines.length === 0) {
      if (this.ended || !this.readBlock()) return null;
    }
    return this.lines.pop()!;
  }

  private readBlock(): boolean {
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

  constructor(private readonly temporary: string) {
    this.fd = openSync(temporary, 'w', 0o600);
  }

  add(line: string): void {
    this.chunks.push(line, '\n');
    this.size += line.length + 1;
    if (this.size >= BLOCK) this.flush();
  }

  private flush(): void {
    if (this.size === 0) return;
    const block = gzipSync(this.chunks.join(''), { level: 1 });
    const length = Buffer.alloc(4);
    length.writeUInt32BE(block.length, 0);
    this.offset += writeSync(this.fd, length, 0, 4, this.offset);
    this.offset += writeSync(this.fd, block, 0, block.length, this.offset);
    this.chunks = [];
    this.size = 0;
  }

  /** Complete the file with the stream's digest and put it at `path`, replacing the one kept before. */
  publish(path: string, digest: string): void {
    this.flush();
    writeSync(this.fd, Buffer.from(`${MAGIC}${digest}\n`.padEnd(HEADER_SIZE, ' '), 'latin1'), 0, HEADER_SIZE, 0);
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
