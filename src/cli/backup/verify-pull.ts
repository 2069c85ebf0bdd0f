// `lb backup --verify` on a pull: the repository is here, the source on the
// remote, where its agent stayed after the backup, with the run's read log
// (agent/verify-pulled-source.ts). The repository's part runs here as for a
// local run; then the snapshot's records are streamed to the agent, which walks
// its source again and sends back each difference. Records go out as the
// channel takes them (backpressure) while the differences are read as they
// come, so neither side waits on the other and memory stays flat. Every reply
// is validated (protocol/verify-source.ts); text from the peer is printed harmless.
import { repositorySideOwners, sendRecords } from '../../agent/verify-backup.js';
import { repositoryIdentity } from '../../agent/machine.js';
import { FrameWriter, ProtocolError } from '../../protocol/frames.js';
import { MessageReader } from '../../protocol/message-reader.js';
import { decodeVerifySourceReply, encodeVerifySourceRequest, type VerifySourceReply, type VerifySourceRequest } from '../../protocol/verify-source.js';
import type { RepositoryReader } from '../../repo/reader.js';
import { Repository } from '../../repo/repository.js';
import { RepositoryCheck, type BackupChecked, type BackupDifference } from '../../repo/verify-backup.js';
import type { AgentConnection } from '../../transport/local.js';
import type { SshSession } from '../../transport/ssh.js';
import { printable } from '../remote-agent.js';
import { refusing, refusingEach, unexpected } from './verify-remote.js';

/** A pull's source agent, waiting after the backup for the comparison, and its connection. */
export interface PulledSource {
  agent: AgentConnection;
  session: SshSession;
}

export class PulledVerification {
  readonly checked: BackupChecked = { entries: 0, filesReread: 0, objectsReread: 0, bytesRead: 0 };
  /** Records handed to the agent so far: it cannot have compared more. */
  private recordsSent = 0;

  private constructor(
    private readonly pulled: PulledSource,
    private readonly reader: RepositoryReader,
    readonly snapshot: string,
    private readonly publishedNow: boolean,
    private readonly replies: MessageReader<VerifySourceReply>,
  ) {}

  /** Once the agent says it is ready; null when there is no snapshot to compare with. */
  static async start(pulled: PulledSource, repositoryPath: string, snapshot: string | null, publishedNow: boolean, series: string | null = null): Promise<PulledVerification | null> {
    try {
      const reader = Repository.open(repositoryPath, 'read', series);
      const name = snapshot ?? reader.latest();
      if (name === null) return null;
      const replies = new MessageReader(pulled.agent.input, decodeVerifySourceReply, 'the lb agent on the remote ended before the comparison did');
      await refusing(pulled.session, async () => {
        const ready = await replies.next();
        if (ready.t !== 'verify-ready') unexpected(ready);
      });
      return new PulledVerification(pulled, reader, name, publishedNow, replies);
    } catch (error) {
      pulled.agent.kill();
      throw error;
    }
  }

  /** The differences, as a local --verify finds them: the repository's first. A peer breaking the protocol ends them with a one-line error. */
  async *differences(): AsyncGenerator<BackupDifference> {
    try {
      const repository = new RepositoryCheck(this.reader, this.snapshot, this.publishedNow);
      for (const problem of repository.problems()) yield { side: 'repository', problem };
      this.checked.objectsReread = repository.checked.objectsReread;
      this.checked.bytesRead = repository.checked.bytesRead;
      yield* refusingEach(this.pulled.session, this.sourceSide());
    } finally {
      this.pulled.agent.kill();
    }
  }

  private async *sourceSide(): AsyncGenerator<BackupDifference> {
    const writer = new FrameWriter(this.pulled.agent.output);
    const send = (message: VerifySourceRequest) => writer.send(encodeVerifySourceRequest(message));
    writer.post(encodeVerifySourceRequest({ t: 'verify-source', owners: repositorySideOwners(), repository: repositoryIdentity(this.reader.root) }));
    void this.feed(writer, send);
    for (;;) {
      const reply = await this.replies.next();
      if (reply.t === 'difference') yield { side: 'source', path: reply.path, detail: printable(reply.detail) };
      else if (reply.t === 'verified') {
        if (reply.entries > this.recordsSent || reply.filesReread > reply.entries) {
          throw new ProtocolError(`the agent claims ${reply.entries} records compared and ${reply.filesReread} files re-read, of ${this.recordsSent} records sent`);
        }
        this.checked.entries = reply.entries;
        this.checked.filesReread = reply.filesReread;
        this.checked.bytesRead += reply.bytesReread;
        return;
      } else if (reply.t === 'error') {
        yield { side: 'source', path: Buffer.alloc(0), detail: `the comparison with the source stopped: ${printable(reply.message)}` };
        return;
      } else unexpected(reply);
    }
  }

  /** The snapshot's records, then `end`; `error` in its place when the manifest does not read to its end (the agent says where it stopped). */
  private async feed(writer: FrameWriter, send: (message: VerifySourceRequest) => Promise<void>): Promise<void> {
    try {
      await sendRecords(this.reader, this.snapshot, (records) => {
        this.recordsSent += records.length;
        return send({ t: 'records', records });
      });
      writer.post(encodeVerifySourceRequest({ t: 'end' }));
    } catch (error) {
      if (writer.broken) return; // the agent is gone: reading its replies says why
      writer.post(encodeVerifySourceRequest({ t: 'error', message: (error as Error).message }));
    }
    writer.flush();
  }
}
