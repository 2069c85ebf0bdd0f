// The source side of a backup: walks the source and streams entries in batches,
// and answers the repository side's requests for hashes and file data while the
// walk goes on. A window of unsettled entries bounds memory on both sides; no
// request waits for a reply per file.
import type { BigIntStats } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { DATA_CHUNK, FrameDecoder, FrameWriter, FRAME_JSON, ProtocolError } from '../protocol/frames.js';
import {
  PROTOCOL_VERSION,
  decodeAgentMessage,
  encodeSourceMessage,
  type BackupOptions,
  type Entry,
  type RepositoryIdentity,
  type RunEvent,
  type RunResult,
  type SourceMessage,
} from '../protocol/messages.js';
import { Accounts } from '../scan/accounts.js';
import { FileChangedError, ListingChangedError, cacheable, readThrough, type HashCache, type ReadFacts } from '../scan/hash.js';
import { LinkGroups } from '../scan/link-groups.js';
import { checkListable, walk, type ScanEntry, type Skipped } from '../scan/walk.js';
import { bootId } from './machine.js';
import type { ReadLog } from './read-log.js';
import { SparseSender } from './sparse-send.js';
import { SourceRootError, sourceRootProblem } from './source-root.js';

/** Entries in flight between the two sides; bounds memory, large enough to keep both busy. */
const WINDOW = 16384;
const BATCH = 512;
/**
 * A file hashed on request is usually asked for moments later when its content is
 * new; small files are kept in memory meanwhile, up to this much, so new content
 * is read and hashed once.
 */
const RECENT_BYTES = 64 * 1024 * 1024;
const RECENT_FILE = 4 * 1024 * 1024;
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
/**
 * After a failure, how long to wait for the repository side to abort (it removes
 * its work in progress and releases the repository lock) before giving up on it.
 */
const ABORT_GRACE_MS = 10_000;

export interface SenderStats {
  filesScanned: number;
  bytesScanned: number;
  filesHashed: number;
  bytesRead: number;
  filesSent: number;
  bytesSent: number;
  scanDone: boolean;
}

export interface SenderSetup {
  sourceRoot: string;
  repository: string;
  options: BackupOptions;
  cache?: HashCache;
  onEvent?: (event: RunEvent) => void;
  /** The repository side is across a network: deflate large messages. */
  remote?: boolean;
  /** --minutes: stop starting transfers when the next would end after this many ms from the start. */
  budgetMs?: number;
  /**
   * After a failure, wait a while for the repository side to abort (releasing the repository lock) before
   * run() throws. False where ending the output cannot reach it and only this process's exit can: stdout on
   * a pipe, as sshd gives it (libuv never closes fds 0-2).
   */
  awaitAbort?: boolean;
  /** Told what this run read and left out, for `lb backup --verify`. */
  readLog?: ReadLog;
}

export class AgentError extends Error {
  constructor(
    message: string,
    /** The repository side refused the repository path itself: a bad command line. */
    readonly refused = false,
  ) {
    super(message);
  }
}

/** The time budget ran out in the middle of a transfer. */
class TimeUpError extends Error {}

interface PendingFile {
  absolute: Buffer;
  directoryInode: bigint;
  /** As scanned, then as hashed: what the time budget estimates with, and what the repository side was told. */
  size: number;
  /** As scanned, and so as the entry says: the file read must still have them. */
  mode: number;
  uid: number;
  gid: number;
}

export class Sender {
  readonly stats: SenderStats = {
    filesScanned: 0,
    bytesScanned: 0,
    filesHashed: 0,
    bytesRead: 0,
    filesSent: 0,
    bytesSent: 0,
    scanDone: false,
  };
  private readonly writer: FrameWriter;
  private readonly pending = new Map<number, PendingFile>();
  private readonly accounts = new Accounts();
  /** Content of files just hashed, oldest first, for the data request that may follow. */
  private readonly recent = new Map<number, { content: Buffer; facts: ReadFacts }>();
  private recentBytes = 0;
  /** Requests waiting; data first, so hashing stays only just ahead of sending and its bytes are still in `recent`. */
  private readonly dataQueue: [number, PendingFile][] = [];
  private readonly hashQueue: [number, PendingFile][] = [];
  private working: Promise<void> | null = null;
  private sent = 0;
  private settled = 0;
  private wake: (() => void) | null = null;
  private failure: Error | null = null;
  private result: RunResult | null = null;
  /** The repository side's hello: the walk starts after it, knowing where the repository is. */
  private greeted!: () => void;
  private helloHeard = false;
  private readonly greeting = new Promise<void>((resolve) => (this.greeted = resolve));
  private repositoryRoot: RepositoryIdentity | undefined;
  private readonly rootBytes: Buffer;
  private deadline = Infinity;
  /** The budget stopped the walk before its end. */
  private stoppedEarly = false;
  /** Resume offers from the repository side, by entry index. */
  private readonly offers = new Map<number, { from: number; prefix: string }>();
  /** Bytes sent and time spent sending them, for the budget's rate estimate. */
  private sentBytes = 0;
  private sendingMs = 0;
  /** Resolves on the first failure. */
  private readonly failed: Promise<void>;
  private signalFailure!: () => void;

  constructor(
    private readonly input: Readable,
    output: Writable,
    private readonly setup: SenderSetup,
  ) {
    this.writer = new FrameWriter(output, setup.remote ?? false);
    this.rootBytes = Buffer.from(setup.sourceRoot);
    this.failed = new Promise<void>((resolve) => (this.signalFailure = resolve));
  }

  get entriesSent(): number {
    return this.sent;
  }

  get entriesSettled(): number {
    return this.settled;
  }

  get wireBytesSent(): number {
    return this.writer.bytesWritten;
  }

  async run(): Promise<RunResult> {
    await this.checkRoot();
    let budgetTimer: NodeJS.Timeout | undefined;
    if (this.setup.budgetMs !== undefined) {
      this.deadline = Date.now() + this.setup.budgetMs;
      // Wakes a walk waiting for its window, so it notices the end of the budget.
      budgetTimer = setTimeout(() => this.wakeUp(), this.setup.budgetMs).unref();
    }
    const reading = this.readReplies().catch((error: Error) => this.fail(error));
    try {
      checkListable(this.setup.sourceRoot);
      await this.send({ t: 'hello', version: PROTOCOL_VERSION, repository: this.setup.repository, options: this.setup.options });
      await this.sendEntries();
      await this.send({ t: 'end', incomplete: this.stoppedEarly });
    } catch (error) {
      this.fail(error as Error);
    }
    // The replies end when the repository side is done; after a failure, when it has aborted (or not soon enough).
    let grace: NodeJS.Timeout | undefined;
    const ended = (async () => {
      await reading;
      await this.working;
    })();
    const waitMs = this.setup.awaitAbort === false ? 0 : ABORT_GRACE_MS;
    const abandoned = this.failed.then(() => new Promise<void>((resolve) => (grace = setTimeout(resolve, waitMs).unref())));
    await Promise.race([ended, abandoned]);
    clearTimeout(budgetTimer);
    clearTimeout(grace);
    if (this.failure) throw this.failure;
    if (!this.result) throw new AgentError('the repository side ended without a result');
    return this.result;
  }

  /** Before hello: an unusable source ends the run before the repository side creates, locks or writes anything. */
  private async checkRoot(): Promise<void> {
    const problem = sourceRootProblem(this.setup.sourceRoot);
    if (!problem) return;
    await this.send({ t: 'bad-source', problem });
    this.writer.end();
    throw new SourceRootError(problem, this.setup.sourceRoot);
  }

  private timeUp(): boolean {
    return Date.now() >= this.deadline;
  }

  /** Would sending `size` bytes at the rate measured so far end within the budget? */
  private endsInTime(size: number): boolean {
    if (this.deadline === Infinity || this.sentBytes < RATE_SAMPLE) return !this.timeUp();
    return Date.now() + (size * this.sendingMs) / this.sentBytes < this.deadline;
  }

  private fail(error: Error): void {
    if (!this.failure) {
      this.failure = error;
      // Tell the repository side, which would otherwise wait for entries forever: its input ends, so it aborts.
      this.writer.end();
      this.signalFailure();
    }
    this.greeted();
    this.wakeUp();
  }

  private wakeUp(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async send(message: SourceMessage): Promise<void> {
    await this.writer.send(encodeSourceMessage(message));
  }

  private toEntry(scanned: ScanEntry): Entry {
    const s = scanned.stat;
    const uid = Number(s.uid);
    const gid = Number(s.gid);
    const entry: Entry = {
      path: scanned.path,
      type: scanned.type,
      size: scanned.type === 'file' ? Number(s.size) : 0,
      mtimeNs: s.mtimeNs,
      mode: Number(s.mode & 0o7777n),
      uid,
      gid,
      user: this.accounts.userName(uid),
      group: this.accounts.groupName(gid),
    };
    if (scanned.type === 'symlink') entry.target = scanned.target!;
    if (scanned.cachedHash !== undefined) entry.hash = scanned.cachedHash;
    return entry;
  }

  private absolute(path: Buffer): Buffer {
    return path.length === 0 ? this.rootBytes : Buffer.concat([this.rootBytes, Buffer.from('/'), path]);
  }

  /** The repository's own directory, when it is on this machine: never walked into, however the source reaches it. */
  private repositoryPrune(): ((stat: BigIntStats) => boolean) | undefined {
    const root = this.repositoryRoot;
    if (!root || root.boot !== bootId()) return undefined;
    return (stat) => stat.dev === root.dev && stat.ino === root.ino;
  }

  private async sendEntries(): Promise<void> {
    await this.greeting;
    if (this.failure) throw this.failure;
    let batch: Entry[] = [];
    let first = 0;
    const stats = this.stats;
    const prune = this.repositoryPrune();
    const skips: Skipped[] = [];
    const linkGroups = new LinkGroups();
    for await (const scanned of walk(this.setup.sourceRoot, { prune, cache: this.setup.cache, onSkip: (skipped) => this.noteSkip(skips, skipped) })) {
      if (this.failure) throw this.failure;
      if (scanned.path.length === 0 && prune?.(scanned.stat)) throw new Error(`the source ${this.setup.sourceRoot} is the repository itself`);
      for (const { path, kind, reason } of skips.splice(0)) await this.send({ t: 'skipped', path, kind, reason });
      if (this.timeUp()) {
        this.stoppedEarly = true;
        break;
      }
      const index = first + batch.length;
      const entry = this.toEntry(scanned);
      if (entry.type === 'file') {
        const link = linkGroups.place(scanned.stat, index);
        if (link !== undefined) entry.link = link;
        stats.filesScanned++;
        stats.bytesScanned += entry.size;
        this.pending.set(index, {
          absolute: this.absolute(entry.path),
          directoryInode: scanned.directoryInode,
          size: entry.size,
          mode: entry.mode,
          uid: entry.uid,
          gid: entry.gid,
        });
      }
      batch.push(entry);
      if (batch.length >= BATCH) {
        // Counted as sent before the write completes: the repository side may settle them before it does.
        const sending = this.send({ t: 'entries', first, entries: batch });
        first += batch.length;
        this.sent = first;
        batch = [];
        await sending;
        while (this.sent - this.settled > WINDOW && !this.failure && !this.timeUp()) await new Promise<void>((r) => (this.wake = r));
      }
    }
    this.sent = first + batch.length;
    if (batch.length) await this.send({ t: 'entries', first, entries: batch });
    for (const { path, kind, reason } of skips) await this.send({ t: 'skipped', path, kind, reason });
    stats.scanDone = true;
  }

  private noteSkip(skips: Skipped[], skipped: Skipped): void {
    skips.push(skipped);
    if (skipped.kind === 'unreadable') this.setup.readLog?.skipped(skipped.path);
  }

  private async readReplies(): Promise<void> {
    const decoder = new FrameDecoder();
    for await (const chunk of this.input as AsyncIterable<Buffer>) {
      for (const frame of decoder.push(chunk)) {
        if (frame.type !== FRAME_JSON) throw new ProtocolError('the repository side sent file data');
        const message = decodeAgentMessage(frame.message);
        // Before its hello the repository side may only say why it stops, or log; a result then would be a lie.
        if (!this.helloHeard && message.t !== 'hello' && message.t !== 'error' && message.t !== 'event') {
          throw new ProtocolError(`the repository side sent '${message.t}' before its hello`);
        }
        switch (message.t) {
          case 'hello':
            if (this.helloHeard) throw new ProtocolError('the repository side said hello twice');
            if (message.version !== PROTOCOL_VERSION) {
              throw new AgentError(`the repository side speaks protocol ${message.version}, this lb speaks ${PROTOCOL_VERSION}`);
            }
            this.helloHeard = true;
            this.repositoryRoot = message.repository;
            this.greeted();
            break;
          case 'want':
            for (const index of message.hash) this.hashQueue.push([index, this.requested(index)]);
            for (const index of message.data) this.dataQueue.push([index, this.requested(index)]);
            for (const offer of message.resume) {
              if (!message.data.includes(offer.index)) throw new ProtocolError(`the repository side offered to resume entry ${offer.index} without asking for it`);
              this.offers.set(offer.index, offer);
            }
            this.working ??= this.work().catch((e: Error) => this.fail(e));
            break;
          case 'settled':
            if (message.upTo < this.settled || message.upTo > this.sent) throw new ProtocolError('the repository side settled entries never sent');
            for (let i = this.settled; i < message.upTo; i++) this.pending.delete(i);
            this.settled = message.upTo;
            this.wakeUp();
            break;
          case 'event':
            this.setup.onEvent?.(message.event);
            break;
          case 'done':
            this.result = message.result;
            return;
          case 'error':
            throw new AgentError(message.message, message.refused);
        }
      }
    }
    throw new AgentError('the repository side exited without finishing');
  }

  /** Answer requests one at a time until none are left. */
  private async work(): Promise<void> {
    try {
      for (;;) {
        if (this.failure) return;
        const data = this.dataQueue.shift();
        if (data) {
          await this.answerData(...data);
          continue;
        }
        const hash = this.hashQueue.shift();
        if (!hash) return;
        if (this.timeUp()) {
          await this.send({ t: 'deferred', index: hash[0] });
          continue;
        }
        await this.answerHash(...hash);
        // Let the data requests that answer brings back in before hashing further ahead.
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.working = null;
    }
  }

  /** A peer may only ask about files it was sent and has not settled. */
  private requested(index: number): PendingFile {
    const file = index >= this.settled ? this.pending.get(index) : undefined;
    if (!file) throw new ProtocolError(`the repository side asked for entry ${index}, which is not a pending file`);
    return file;
  }

  private remember(file: PendingFile, facts: ReadFacts, startedNs: bigint): void {
    if (this.setup.cache && cacheable(facts.stat, startedNs)) this.setup.cache.remember(file.directoryInode, facts.stat, facts.hash);
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
        if (error instanceof TimeUpError || this.writer.broken) throw error;
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
    this.setup.readLog?.unreadable(index, file.absolute.subarray(this.rootBytes.length + 1));
    await this.send({ t: 'unreadable', index, reason });
    return null;
  }

  private countRead = (n: number) => {
    this.stats.bytesRead += n;
  };

  private async answerHash(index: number, file: PendingFile): Promise<void> {
    let content: Buffer | undefined;
    const onBytes = (n: number) => {
      this.countRead(n);
      if (this.timeUp()) throw new TimeUpError();
    };
    let facts: ReadFacts | null;
    try {
      facts = await this.readStable(index, file, async () => {
        const read = await readThrough(file.absolute, { onBytes, keepUpTo: RECENT_FILE, listed: file });
        content = read.content;
        return read;
      });
    } catch (error) {
      if (!(error instanceof TimeUpError)) throw error;
      await this.send({ t: 'deferred', index });
      return;
    }
    if (!facts) return;
    this.setup.readLog?.read(index);
    file.size = facts.size;
    this.stats.filesHashed++;
    if (content) this.keepRecent(index, content, facts);
    await this.send({ t: 'hashed', index, facts });
  }

  private keepRecent(index: number, content: Buffer, facts: ReadFacts): void {
    this.recent.set(index, { content, facts });
    this.recentBytes += content.length;
    for (const [old, kept] of this.recent) {
      if (this.recentBytes <= RECENT_BYTES) break;
      this.recent.delete(old);
      this.recentBytes -= kept.content.length;
    }
  }

  private async answerData(index: number, file: PendingFile): Promise<void> {
    const kept = this.recent.get(index);
    const offer = this.offers.get(index);
    this.offers.delete(index);
    const size = kept?.content.length ?? file.size;
    if (!this.endsInTime(size) && (size < RESUMABLE || this.timeUp())) {
      await this.send({ t: 'deferred', index });
      return;
    }
    const started = Date.now();
    const sentBefore = this.stats.bytesSent;
    try {
      if (kept) await this.sendKept(index, kept.content, kept.facts);
      else await this.sendFromDisk(index, file, offer);
    } catch (error) {
      if (!(error instanceof TimeUpError)) throw error;
      await this.send({ t: 'deferred', index });
    } finally {
      this.sentBytes += this.stats.bytesSent - sentBefore;
      this.sendingMs += Date.now() - started;
    }
  }

  /** The very bytes that were hashed: consistent with the facts already sent. */
  private async sendKept(index: number, content: Buffer, facts: ReadFacts): Promise<void> {
    this.recent.delete(index);
    this.recentBytes -= content.length;
    await this.send({ t: 'data-begin', index, from: 0 });
    const out = this.sparseSender(0, content.length);
    for (let offset = 0; offset < content.length; offset += DATA_CHUNK) await out.chunk(content.subarray(offset, offset + DATA_CHUNK));
    await out.end();
    this.stats.filesSent++;
    await this.send({ t: 'data-end', index, facts });
  }

  /** File bytes as DATA frames (counted as sent), runs of zero blocks as `zeros` messages. */
  private sparseSender(from: number, announced: number): SparseSender {
    const data = async (bytes: Buffer) => {
      await this.writer.sendData(bytes);
      this.stats.bytesSent += bytes.length;
    };
    return new SparseSender({ data, zeros: (length) => this.send({ t: 'zeros', length }) }, from, announced);
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
      if (!attempt) await this.send({ t: 'data-begin', index, from: 0 });
      const out = this.sparseSender(attempt?.from ?? 0, file.size);
      const read = await readThrough(file.absolute, {
        listed: file,
        onBytes: this.countRead,
        onChunk: async (chunk) => {
          if (this.timeUp()) throw new TimeUpError();
          await out.chunk(chunk);
        },
        prefix: attempt && {
          length: attempt.from,
          reached: async (digest) => {
            if (digest !== attempt.prefix) throw new FileChangedError('differs from the part of it already stored');
            await this.send({ t: 'data-begin', index, from: attempt.from });
          },
        },
      });
      await out.end();
      return read;
    });
    if (!facts) return;
    this.setup.readLog?.read(index);
    this.stats.filesSent++;
    await this.send({ t: 'data-end', index, facts });
  }
}
