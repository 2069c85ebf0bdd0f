// `lb backup --verify` with the repository on another machine, over the push's
// SSH connection: the agent there runs the repository's part and streams the
// snapshot's records (agent/verify-backup.ts); the source's part runs here on
// them (repo/verify-backup.ts), pulling one message at a time, so the agent
// waits while lb re-reads a file (the channel's window is the backpressure) and
// memory stays flat. Every message is validated (protocol/verify-backup.ts);
// records must come in canonical order; text from the peer is printed harmless.
import type { Selection } from '../../scan/selection.js';
import { sourceAsMappedThere } from '../../agent/source-now.js';
import { comparePaths } from '../../diff/order.js';
import { FrameWriter, ProtocolError } from '../../protocol/frames.js';
import { MessageReader } from '../../protocol/message-reader.js';
import { PROTOCOL_VERSION } from '../../protocol/messages.js';
import { decodeVerifyBackupReply, type VerifyBackupReply, type WireProblem, type WireRecord } from '../../protocol/verify-backup.js';
import { sourceSideDifferences, type BackupChecked, type BackupDifference, type BackupVerifyOptions } from '../../repo/verify-backup.js';
import type { Problem } from '../../repo/verify.js';
import type { AgentConnection } from '../../transport/local.js';
import { startRemoteAgent, type SshOptions, type SshSession } from '../../transport/ssh.js';
import { printable } from '../remote-agent.js';
import { refusedRemote } from './outcome.js';

export interface RemoteVerifySetup {
  session: SshSession;
  ssh: SshOptions;
  /** The repository's path on the remote, as the push named it. */
  repositoryPath: string;
  /** --series: the snapshot is one of that series. */
  series?: string;
  sourceRoot: string;
  numericIds: boolean;
  selection: Selection | undefined;
  /** This run's snapshot, or null: `latest` (the run found the source unchanged). */
  snapshot: string | null;
  options: BackupVerifyOptions;
}

export function unexpected(reply: { t: string }): never {
  throw new ProtocolError(`the agent sent ${JSON.stringify(reply.t)} out of its order`);
}

/** The comparison, once the agent has named the snapshot it checks. */
export class RemoteVerification {
  readonly checked: BackupChecked = { entries: 0, filesReread: 0, objectsReread: 0, bytesRead: 0 };

  private constructor(
    private readonly setup: RemoteVerifySetup,
    private readonly agent: AgentConnection,
    private readonly replies: MessageReader<VerifyBackupReply>,
    readonly snapshot: string,
    private readonly first: Extract<VerifyBackupReply, { t: 'verifying' }>,
  ) {}

  /** Starts the agent and asks it; throws, in one line, when the repository cannot be checked. */
  static async start(setup: RemoteVerifySetup): Promise<RemoteVerification> {
    const agent = await startRemoteAgent(setup.session, setup.ssh, []);
    try {
      const request = new FrameWriter(agent.output, false);
      const inSeries = setup.series === undefined ? {} : { series: setup.series };
      request.post({ t: 'verify-backup', version: PROTOCOL_VERSION, repository: setup.repositoryPath, snapshot: setup.snapshot, publishedNow: setup.options.publishedNow, ...inSeries });
      request.flush();
      const replies = new MessageReader(agent.input, decodeVerifyBackupReply, 'the lb agent on the remote ended before the comparison did');
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
    return sourceAsMappedThere(this.setup.sourceRoot, this.setup.numericIds, this.first.owners, this.first.repository, this.setup.selection);
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

export async function refusing<T>(session: SshSession, step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (error) {
    throw refusal(session, error);
  }
}

export async function* refusingEach<T>(session: SshSession, steps: AsyncGenerator<T>): AsyncGenerator<T> {
  try {
    yield* steps;
  } catch (error) {
    throw refusal(session, error);
  }
}
