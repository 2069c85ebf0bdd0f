// The source side of a backup: walks the source and streams entries in batches,
// and answers the repository side's requests for hashes and file data (content-answers.ts) while the
// walk goes on. A window of unsettled entries bounds memory on both sides; no
// request waits for a reply per file.
import type { BigIntStats } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { FrameDecoder, FrameWriter, FRAME_JSON, ProtocolError } from '../protocol/frames.js';
import {
  PROTOCOL_VERSION,
  decodeAgentMessage,
  encodeSourceMessage,
  type BackupOptions,
  type Entry,
  type EntryItem,
  type RepositoryIdentity,
  type RunEvent,
  type RunResult,
  type SourceMessage,
} from '../protocol/messages.js';
import { Accounts } from '../scan/accounts.js';
import type { HashCache } from '../scan/hash.js';
import { LinkGroups } from '../scan/link-groups.js';
import type { Selection } from '../scan/selection.js';
import { checkListable, walk, type ScanEntry, type Skipped } from '../scan/walk.js';
import { objectHash, storeOf } from './store-source.js';
import { ContentAnswers, type PendingFile } from './content-answers.js';
import { appendItem, type SentMemory } from './sent-memory.js';
import { bootId } from './machine.js';
import type { ReadLog } from './read-log.js';
import { SourceRootError, sourceRootProblem } from './source-root.js';

/** Entries in flight between the two sides; bounds memory, large enough to keep both busy. */
const WINDOW = 8192;
const BATCH = 512;
/** Entries one batch may stand for when runs of the previous snapshot make it small. */
const BATCH_ENTRIES = 2048;
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
  /** Excludes, tags, --one-file-system, --filelist. */
  selection?: Selection;
  /** The stream last sent to this repository: unchanged entries go as runs of its latest snapshot (sent-memory.ts). */
  memory?: SentMemory;
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
  readonly writer: FrameWriter;
  private readonly pending = new Map<number, PendingFile>();
  private readonly accounts = new Accounts();
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
  readonly rootBytes: Buffer;
  private readonly answers: ContentAnswers;
  private deadline = Infinity;
  /** The budget stopped the walk before its end. */
  private stoppedEarly = false;
  /** Resume offers from the repository side, by entry index. */
  private readonly offers = new Map<number, { from: number; prefix: string }>();
  /** Resolves on the first failure. */
  private readonly failed: Promise<void>;
  private signalFailure!: () => void;

  readonly setup: SenderSetup;
  /** The object directory walked instead of the source, when --catalogonly was given a repository. */
  private readonly fromStore: string | null;

  constructor(
    private readonly input: Readable,
    output: Writable,
    setup: SenderSetup,
  ) {
    this.setup = setup;
    this.writer = new FrameWriter(output, setup.remote ?? false);
    // --catalogonly from a repository (a transfer disk's): its objects are the content to store, named by their hashes.
    this.fromStore = setup.options.purpose === 'catalogonly' ? storeOf(setup.sourceRoot) : null;
    if (this.fromStore) setup = this.setup = { ...setup, sourceRoot: this.fromStore };
    this.rootBytes = Buffer.from(setup.sourceRoot);
    this.answers = new ContentAnswers({
      setup,
      stats: this.stats,
      writer: this.writer,
      rootBytes: this.rootBytes,
      send: (message) => this.send(message),
      timeUp: () => this.timeUp(),
      deadline: () => this.deadline,
    });
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
      const stream = this.setup.memory?.offered;
      await this.send({ t: 'hello', version: PROTOCOL_VERSION, repository: this.setup.repository, options: this.setup.options, ...(stream ? { stream } : {}) });
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
    // Kept only after a published snapshot: a failed or aborted run leaves the remembered stream as it was.
    this.setup.memory?.finish(this.failure ? null : this.result);
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
    this.setup.memory?.observe(message);
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
    // An object's name claims its hash; data sent is hashed as it goes, so a damaged object is stored under its true hash.
    if (this.fromStore && scanned.type === 'file') entry.hash ??= objectHash(scanned.path);
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
    let batch: EntryItem[] = [];
    /** Entries the batch stands for: a run of the previous snapshot is one item for many. */
    let batchEntries = 0;
    let first = 0;
    const stats = this.stats;
    const prune = this.repositoryPrune();
    const skips: Skipped[] = [];
    const linkGroups = new LinkGroups();
    const walking = walk(this.setup.sourceRoot, { prune, cache: this.setup.cache, selection: this.setup.selection, onSkip: (skipped) => this.noteSkip(skips, skipped) });
    for await (const scanned of walking) {
      if (this.failure) throw this.failure;
      if (scanned.path.length === 0 && prune?.(scanned.stat)) throw new Error(`the source ${this.setup.sourceRoot} is the repository itself`);
      for (const { path, kind, reason } of skips.splice(0)) await this.send({ t: 'skipped', path, kind, reason });
      if (this.timeUp()) {
        this.stoppedEarly = true;
        break;
      }
      const index = first + batchEntries;
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
      if (this.setup.memory) appendItem(batch, this.setup.memory.item(entry, scanned.type === 'dir' ? `${scanned.stat.dev}:${scanned.stat.ino}` : undefined));
      else batch.push(entry);
      batchEntries++;
      if (batch.length >= BATCH || batchEntries >= BATCH_ENTRIES) {
        // Counted as sent before the write completes: the repository side may settle them before it does.
        const sending = this.send({ t: 'entries', first, entries: batch });
        // Out now: a batch of runs is a few bytes, and a walk that never leaves its microtasks would
        // otherwise hold every batch until the window closes, leaving the repository side idle meanwhile.
        this.writer.flush();
        first += batchEntries;
        this.sent = first;
        batch = [];
        batchEntries = 0;
        await sending;
        while (this.sent - this.settled > WINDOW && !this.failure && !this.timeUp()) await new Promise<void>((r) => (this.wake = r));
      }
    }
    this.sent = first + batchEntries;
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
            this.setup.memory?.useReferences(message.references === true);
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
            this.answers.settled(message.upTo);
            this.setup.memory?.settled(message.upTo);
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
          const offer = this.offers.get(data[0]);
          this.offers.delete(data[0]);
          await this.answers.answerData(...data, offer);
          continue;
        }
        const hash = this.hashQueue.shift();
        if (!hash) return;
        if (this.timeUp()) {
          await this.send({ t: 'deferred', index: hash[0] });
          continue;
        }
        await this.answers.answerHash(...hash);
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
}
