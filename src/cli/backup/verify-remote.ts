// `lb backup --verify` with the repository on another machine, over the push's
// SSH connection: the agent there runs the repository's part and streams the
// snapshot's records (agent/verify-backup.ts); the source's part runs here on
// them (repo/verify-backup.ts), pulling one message at a time, so the agent
// waits while lb re-reads a file (the channel's window is the backpressure) and
// memory stays flat. Every message is validated (protocol/verify-backup.ts);
// records must come in canonical order; text from the peer is printed harmless.
import { bootId } from '../../agent/machine.js';
import { comparePaths } from '../../diff/order.js';
import { FRAME_JSON, FrameDecoder, FrameWriter, ProtocolError, type Frame } from '../../protocol/frames.js';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { decodeVerifyBackupReply, type VerifyBackupReply, type WireProblem, type WireRecord } from '../../protocol/verify-backup.js';
import { sourceSideDifferences, type BackupChecked, type BackupDifference, type BackupVerifyOptions } from '../../repo/verify-backup.js';
import type { Problem } from '../../repo/verify.js';
import { AccountTables } from '../../scan/accounts.js';
import type { AgentConnection } from '../../transport/local.js';
import { startRemoteAgent, type SshOptions, type SshSession } from '../../transport/ssh.js';
import { printable } from '../read-remote.js';
import { refusedRemote } from './outcome.js';
import { sourceNow } from './source-now.js';

export interface RemoteVerifySetup {
  session: SshSession;
  ssh: SshOptions;
  /** The repository's path on the remote, as the push named it. */
  repositoryPath: string;
  sourceRoot: string;
  numericIds: boolean;
  /** This run's snapshot, or null: `latest` (the run found the source unchanged). */
  snapshot: string | null;
  options: BackupVerifyOptions;
}

/** The agent's messages one at a time, each read from the channel only when asked for. */
class Replies {
  private readonly chunks: AsyncIterator<Buffer>;
  private readonly decoder = new FrameDecoder();
  private frames: Frame[] = [];

  constructor(input: AsyncIterable<Buffer>) {
    this.chunks = input[Symbol.asyncIterator]();
  }

  async next(): Promise<VerifyBackupReply> {
    while (this.frames.length === 0) {
      const chunk = await this.chunks.next();
      if (chunk.done) throw new Error('the lb agent on the remote ended before the comparison did');
      this.frames = this.decoder.push(chunk.value);
    }
    const frame = this.frames.shift()!;
    if (frame.type !== FRAME_JSON) throw new ProtocolError('the agent sent file data');
    return decodeVerifyBackupReply(frame.message);
  }
}

function unexpected(reply: VerifyBackupReply): never {
  throw new ProtocolError(`the agent sent ${JSON.stringify(reply.t)} out of its order`);
}

/** The comparison, once the agent has named the snapshot it checks. */
export class RemoteVerification {
  readonly checked: BackupChecked = { entries: 0, filesReread: 0, objectsReread: 0, bytesRead: 0 };

  private constructor(
    private readonly setup: RemoteVerifySetup,
    private readonly agent: AgentConnection,
    private readonly replies: Replies,
    readonly snapshot: string,
    private readonly first: Extract<VerifyBackupReply, { t: 'verifying' }>,
  ) {}

  /** Starts the agent and asks it; throws, in one line, when the repository cannot be checked. */
  static async start(setup: RemoteVerifySetup): Promise<RemoteVerification> {
    const agent = await startRemoteAgent(setup.session, setup.ssh, []);
    try {
      const request = new FrameWriter(agent.output, false);
      request.post({ t: 'verify-backup', version: PROTOCOL_VERSION, repository: setup.repositoryPath, snapshot: setup.snapshot, publishedNow: setup.options.publishedNow });
      request.flush();
      const replies = new Replies(agent.input);
      const first = await refusing(setup.session, () => replies.next());
      if (first.t === 'error') throw new Error(`the repository cannot be compared with the source: ${printable(first.message)}`);
      if (first.t !== 'verifying') unexpected(first);
      if (setup.snapshot !== null && first.snapshot !== setup.snapshot) throw new Error(refusedRemote(setup.session, `it checked ${first.snapshot}, not ${setup.snapshot}`, 'the comparison was stopped'));
      return new RemoteVerification(setup, agent, replies, first.snapshot, first);
    } catch (error) {
      agent.kill();
      throw error;
    }
  }

  /** The differences, as a local --verify finds them: the repository's first. A peer breaking the protocol ends them with a one-line error. */
  async *differences(): AsyncGenerator<BackupDifference> {
    try {
      yield* refusingEach(this.setup.session, this.all());
    } finally {
      this.agent.kill();
    }
  }

  private async *all(): AsyncGenerator<BackupDifference> {
    for (;;) {
      const reply = await this.replies.next();
      if (reply.t === 'problem') yield { side: 'repository', problem: harmless(reply.problem) };
      else if (reply.t === 'stored') {
        this.checked.objectsReread = reply.objectsReread;
        this.checked.bytesRead = reply.bytesRead;
        break;
      } else if (reply.t === 'error') {
        yield { side: 'repository', problem: { kind: 'unreadable', snapshot: this.snapshot, detail: `the check stopped there: ${printable(reply.message)}` } };
        return;
      } else unexpected(reply);
    }
    const fatal = (error: unknown) => error instanceof ProtocolError || this.setup.session.lost !== null;
    yield* sourceSideDifferences(this.records(), this.source(), { ...this.setup.options, fatal }, this.checked);
  }

  private source() {
    const { owners, repository } = this.first;
    const here = repository !== undefined && repository.boot === bootId();
    return sourceNow({
      sourceRoot: this.setup.sourceRoot,
      isRepository: here ? (stat) => stat.dev === repository.dev && stat.ino === repository.ino : undefined,
      ownerRule: { asRoot: owners.asRoot, numericIds: this.setup.numericIds, ownUid: owners.uid, ownGid: owners.gid },
      ownerNames: new AccountTables(owners.users, owners.groups),
    });
  }

  private async *records(): AsyncGenerator<WireRecord> {
    let previous: Buffer | null = null;
    for (;;) {
      const reply = await this.replies.next();
      if (reply.t === 'end') return;
      // The manifest does not read to its end there: the comparison says where it stopped.
      if (reply.t === 'error') throw new Error(printable(reply.message));
      if (reply.t !== 'records') unexpected(reply);
      // The whole batch before any of it is compared: nothing is said on the strength of a batch refused later.
      for (const record of reply.records) {
        if (previous !== null && comparePaths(previous, record.path) >= 0) throw new ProtocolError('the agent sent records out of canonical order');
        previous = record.path;
      }
      yield* reply.records;
    }
  }
}

/** Problems as lb verify names them, their words from the peer made harmless to print. */
function harmless(problem: WireProblem): Problem {
  return { ...problem, detail: printable(problem.detail), ...(problem.object !== undefined ? { object: printable(problem.object) } : {}) };
}

/** What a peer that broke the protocol, or a lost connection, is said as: one line. */
function refusal(session: SshSession, error: unknown): unknown {
  if (session.lost) return new Error(session.lost);
  if (error instanceof ProtocolError) return new Error(refusedRemote(session, error.message, 'the comparison was stopped'));
  return error;
}

async function refusing<T>(session: SshSession, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw refusal(session, error);
  }
}

async function* refusingEach<T>(session: SshSession, steps: AsyncGenerator<T>): AsyncGenerator<T> {
  try {
    yield* steps;
  } catch (error) {
    throw refusal(session, error);
  }
}
