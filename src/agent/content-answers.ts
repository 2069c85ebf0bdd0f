// The source side's answers about file content. A hash on request (the bytes of
// a small file are kept a while, for the data request that usually follows, so
// new content is read once); or the content itself, streamed with runs of zero
// blocks as counts, resumed after a prefix the repository side kept when it
// offers one, and under a time budget only when the rate measured so far says
// it ends in time. A file that keeps changing while read is retried, then
// reported unreadable.
import { DATA_CHUNK, type FrameWriter } from '../protocol/frames.js';
import type { SourceMessage } from '../protocol/messages.js';
import { FileChangedError, ListingChangedError, cacheable, readThrough, type ReadFacts } from '../scan/hash.js';
import type { SenderSetup, SenderStats } from './sender.js';
import { ContentRing } from './content-ring.js';
import { SparseSender } from './sparse-send.js';

/**
 * A file hashed on request is usually asked for moments later when its content is
 * new; small files are kept in memory meanwhile, up to this much, so new content
 * is read and hashed once. With 8,192 entries in flight, 32 MiB keeps what is asked
 * for; 64 MiB put the source side over 200 MB after the bench's churn.
 */
const RECENT_BYTES = 32 * 1024 * 1024;
const RECENT_FILE = 4 * 1024 * 1024;
/**
 * Kept content lives here while it fits (see content-ring.ts), else in buffers of its own. Every byte of
 * the ring is touched as it goes round, so it costs its size in resident memory: 32 MiB held nearly all
 * of a first backup's kept content (74 of 12,000 files fell outside).
 */
const RING_BYTES = 16 * 1024 * 1024;
/** Attempts at reading a file that keeps changing under us before reporting it. */
const READ_ATTEMPTS = 3;
/**
 * Under a time budget, a file is sent only if the measured rate says it ends in
 * time, except files this large: those are started anyway and, if cut off, the
 * next run resumes them (the repository side keeps what arrived). The rate is
 * trusted once this much was sent.
 */
const RESUMABLE = 8 * 1024 * 1024;
const RATE_SAMPLE = 1024 * 1024;

/** The time budget ran out in the middle of a transfer. */
export class TimeUpError extends Error {}

export interface PendingFile {
  absolute: Buffer;
  directoryInode: bigint;
  /** As scanned, then as hashed: what the time budget estimates with, and what the repository side was told. */
  size: number;
  /** As scanned, and so as the entry says: the file read must still have them. */
  mode: number;
  uid: number;
  gid: number;
}

/** The repository side holds the first `from` bytes; `prefix` is their SHA-256. */
export interface ResumeOffer {
  from: number;
  prefix: string;
}

/** What the answers need of the sender they work for. */
export interface AnswerLink {
  readonly setup: SenderSetup;
  readonly stats: SenderStats;
  readonly writer: FrameWriter;
  readonly rootBytes: Buffer;
  send(message: SourceMessage): Promise<void>;
  timeUp(): boolean;
  /** When the time budget ends (Infinity without one). */
  deadline(): number;
}

export class ContentAnswers {
  /** Content of files just hashed, oldest first, for the data request that may follow. */
  private readonly recent = new Map<number, { content: Buffer }>();
  private recentBytes = 0;
  private readonly ring = new ContentRing(RING_BYTES);
  /** Bytes sent and time spent sending them, for the budget's rate estimate. */
  private sentBytes = 0;
  private sendingMs = 0;

  constructor(private readonly link: AnswerLink) {}

  /** Would sending `size` bytes at the rate measured so far end within the budget? */
  private endsInTime(size: number): boolean {
    const deadline = this.link.deadline();
    if (deadline === Infinity || this.sentBytes < RATE_SAMPLE) return !this.link.timeUp();
    return Date.now() + (size * this.sendingMs) / this.sentBytes < deadline;
  }

  private remember(file: PendingFile, facts: ReadFacts, startedNs: bigint): void {
    if (this.link.setup.cache && cacheable(facts.stat, startedNs)) this.link.setup.cache.remember(file.directoryInode, facts.stat, facts.hash);
  }

  /** Read a file, retrying while it changes under us; null (after reporting) when it cannot be read. */
  private async readStable(index: number, file: PendingFile, attempt: () => Promise<ReadFacts>): Promise<ReadFacts | null> {
    let last: Error | null = null;
    for (let i = 0; i < READ_ATTEMPTS; i++) {
      const startedNs = BigInt(Date.now()) * 1_000_000n;
      let facts: ReadFacts;
      try {
        facts = await attempt();
      } catch (error) {
        last = error as Error;
        // Neither is about the file: out of time, or the repository side is gone.
        if (error instanceof TimeUpError || this.link.writer.broken) throw error;
        if (!(error instanceof FileChangedError) || error instanceof ListingChangedError) break;
        continue;
      }
      // Outside the read's try: whatever the cache does is never this file's read error.
      this.remember(file, facts, startedNs);
      return facts;
    }
    const reason =
      last instanceof ListingChangedError
        ? last.message
        : last instanceof FileChangedError
          ? `kept changing while being read`
          : (last as NodeJS.ErrnoException | null)?.code === 'ENOENT'
            ? 'vanished before it could be read'
            : `cannot read: ${last?.message}`;
    // Warned about once, by the repository side, which also puts it in the snapshot's log.
    this.link.setup.readLog?.unreadable(index, file.absolute.subarray(this.link.rootBytes.length + 1));
    await this.link.send({ t: 'unreadable', index, reason });
    return null;
  }

  private countRead = (n: number) => {
    this.link.stats.bytesRead += n;
  };

  async answerHash(index: number, file: PendingFile): Promise<void> {
    let content: Buffer | undefined;
    const onBytes = (n: number) => {
      this.countRead(n);
      if (this.link.timeUp()) throw new TimeUpError();
    };
    let facts: ReadFacts | null;
    try {
      facts = await this.readStable(index, file, async () => {
        let leased = null as Buffer | null;
        const allocate = (size: number) => (leased = this.ring.take(size)) ?? Buffer.allocUnsafe(size);
        try {
          const read = await readThrough(file.absolute, { onBytes, keepUpTo: RECENT_FILE, listed: file, allocate });
          content = read.content;
          return read;
        } finally {
          // Back to the ring unless it is the content kept (a failed read, or content joined from several reads).
          if (leased !== null && (content === undefined || content.buffer !== leased.buffer || content.byteOffset !== leased.byteOffset)) this.ring.give(leased);
        }
      });
    } catch (error) {
      if (!(error instanceof TimeUpError)) throw error;
      await this.link.send({ t: 'deferred', index });
      return;
    }
    if (!facts) return;
    this.link.setup.readLog?.read(index);
    file.size = facts.size;
    this.link.stats.filesHashed++;
    if (content) this.keepRecent(index, content);
    await this.link.send({ t: 'hashed', index, facts });
  }

  private keepRecent(index: number, content: Buffer): void {
    this.recent.set(index, { content });
    this.recentBytes += content.length;
    for (const [old, kept] of this.recent) {
      if (this.recentBytes <= RECENT_BYTES) break;
      this.recent.delete(old);
      this.recentBytes -= kept.content.length;
      this.ring.give(kept.content);
    }
  }

  /**
   * Entries before `upTo` are settled: content kept for them will not be asked for (the store had it). Kept
   * in the order hashed, which is the order asked, index order; anything out of it goes with the budget.
   */
  settled(upTo: number): void {
    for (const [index, kept] of this.recent) {
      if (index >= upTo) break;
      this.recent.delete(index);
      this.recentBytes -= kept.content.length;
      this.ring.give(kept.content);
    }
  }

  async answerData(index: number, file: PendingFile, offer: ResumeOffer | undefined): Promise<void> {
    const kept = this.recent.get(index);
    const size = kept?.content.length ?? file.size;
    if (!this.endsInTime(size) && (size < RESUMABLE || this.link.timeUp())) {
      await this.link.send({ t: 'deferred', index });
      return;
    }
    const started = Date.now();
    const sentBefore = this.link.stats.bytesSent;
    try {
      if (kept) await this.sendKept(index, kept.content);
      else await this.sendFromDisk(index, file, offer);
    } catch (error) {
      if (!(error instanceof TimeUpError)) throw error;
      await this.link.send({ t: 'deferred', index });
    } finally {
      this.sentBytes += this.link.stats.bytesSent - sentBefore;
      this.sendingMs += Date.now() - started;
    }
  }

  /** The very bytes that were hashed: consistent with the facts already sent. */
  private async sendKept(index: number, content: Buffer): Promise<void> {
    this.recent.delete(index);
    this.recentBytes -= content.length;
    try {
      await this.link.send({ t: 'data-begin', index, from: 0 });
      const out = this.sparseSender(0, content.length);
      for (let offset = 0; offset < content.length; offset += DATA_CHUNK) await out.chunk(content.subarray(offset, offset + DATA_CHUNK));
      await out.end();
    } finally {
      // Its bytes may sit in the stream's queue a while yet.
      this.link.writer.afterWritten(() => this.ring.give(content));
    }
    this.link.stats.filesSent++;
    // The facts its hashed announced: the repository side takes those.
    await this.link.send({ t: 'data-end', index });
  }

  /** File bytes as DATA frames (counted as sent), runs of zero blocks as `zeros` messages. */
  private sparseSender(from: number, announced: number): SparseSender {
    const data = async (bytes: Buffer) => {
      await this.link.writer.sendData(bytes);
      this.link.stats.bytesSent += bytes.length;
    };
    return new SparseSender({ data, zeros: (length) => this.link.send({ t: 'zeros', length }) }, from, announced);
  }

  /**
   * Stream a file from disk. With a resume offer, the prefix the repository side
   * holds is read and hashed here (not sent); only if its SHA-256 matches does
   * the transfer start there. A mismatch (the partial was torn, or the file
   * changed) counts as a changed read, and the retry sends everything.
   */
  private async sendFromDisk(index: number, file: PendingFile, offer: { from: number; prefix: string } | undefined): Promise<void> {
    let resume = offer;
    const facts = await this.readStable(index, file, async () => {
      const attempt = resume;
      resume = undefined;
      if (!attempt) await this.link.send({ t: 'data-begin', index, from: 0 });
      const out = this.sparseSender(attempt?.from ?? 0, file.size);
      const read = await readThrough(file.absolute, {
        listed: file,
        onBytes: this.countRead,
        onChunk: async (chunk) => {
          if (this.link.timeUp()) throw new TimeUpError();
          await out.chunk(chunk);
        },
        prefix: attempt && {
          length: attempt.from,
          reached: async (digest) => {
            if (digest !== attempt.prefix) throw new FileChangedError('differs from the part of it already stored');
            await this.link.send({ t: 'data-begin', index, from: attempt.from });
          },
        },
      });
      await out.end();
      return read;
    });
    if (!facts) return;
    this.link.setup.readLog?.read(index);
    this.link.stats.filesSent++;
    await this.link.send({ t: 'data-end', index, facts });
  }
}
