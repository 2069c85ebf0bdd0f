// `lb prune host:REPO`: the agent there prunes (agent/prune.ts) and answers
// with the outcome, which is checked (protocol/prune.ts) and printed here as a
// local prune's is.
import type { KeepPolicy } from '../diff/retention.js';
import { FRAME_JSON, FrameDecoder, FrameWriter, ProtocolError } from '../protocol/frames.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import { decodePruneReply, encodePruneRequest } from '../protocol/prune.js';
import type { PruneOutcome } from '../repo/prune.js';
import type { SshOptions } from '../transport/ssh.js';
import { UsageError } from './output.js';
import { RemoteEnded, printable, withAgent, type Remote } from './remote-agent.js';

export async function pruneRemote(where: Remote, policy: KeepPolicy, dryRun: boolean, series: string | null, ssh: SshOptions): Promise<PruneOutcome> {
  return withAgent(where, ssh, 'the prune there may have stopped midway (it is crash-safe: the next prune or backup finishes it)', async (agent) => {
    const request = new FrameWriter(agent.output, false);
    request.post(encodePruneRequest({ t: 'prune', version: PROTOCOL_VERSION, repository: where.path, policy, dryRun, ...(series === null ? {} : { series }) }));
    request.flush();
    const decoder = new FrameDecoder();
    for await (const chunk of agent.input as AsyncIterable<Buffer>) {
      for (const frame of decoder.push(chunk)) {
        if (frame.type !== FRAME_JSON) throw new ProtocolError('the agent sent file data');
        const reply = decodePruneReply(frame.message);
        if (reply.t === 'pruned') return reply.outcome;
        const message = printable(reply.message);
        throw reply.usage ? new UsageError(message) : new Error(message);
      }
    }
    throw new RemoteEnded('the lb agent on the remote ended without saying how the prune went');
  });
}
