// Pulling: the source is remote. Its agent scans and sends; the repository
// side runs here, in this process.
import { PassThrough } from 'node:stream';
import { serve } from '../../agent/serve.js';
import { sourceProblemLine } from '../../agent/source-root.js';
import { FrameWriter, MAX_FRAME } from '../../protocol/frames.js';
import { PROTOCOL_VERSION, encodePullRequest, type BackupOptions, type PullRequest, type RunEvent } from '../../protocol/messages.js';
import type { SelectionSpec } from '../../scan/selection.js';
import { MAX_FILE_LIST_BYTES } from '../../protocol/selection.js';
import { formatBytes } from '../format.js';
import { describeLocation, type Location } from '../../transport/address.js';
import { openSession, startRemoteAgent, type SshOptions } from '../../transport/ssh.js';
import { Interrupted, Interruption, exitedWithin } from '../interrupt.js';
import { UsageError } from '../output.js';
import { refusedRemote, wireOf, type Outcome } from './outcome.js';
import type { PulledSource } from './verify-pull.js';

/** The source is remote: its agent scans and sends; the repository side runs here. */
export async function pull(
  source: Extract<Location, { kind: 'remote' }>,
  repository: string,
  options: BackupOptions,
  ssh: SshOptions,
  onEvent: (event: RunEvent) => void,
  budget: number | undefined,
  interruption: Interruption,
  verify = false,
  selection?: SelectionSpec,
): Promise<Outcome> {
  // What to send travels as the first message, validated there like every other (not on the remote's command line).
  const request: PullRequest = { t: 'pull', version: PROTOCOL_VERSION, sourceRoot: source.path, repository, options };
  if (budget !== undefined) request.budgetMs = budget;
  if (verify) request.verify = true;
  if (selection) request.selection = selection;
  const message = pullRequestMessage(request, source.host);
  const session = await interruption.orStop(openSession(source.host, source.user, ssh));
  let kept: PulledSource | null = null;
  try {
    const agent = await interruption.orStop(startRemoteAgent(session, ssh, []));
    // Deflated: a file list can be megabytes of paths that share their prefixes.
    const first = new FrameWriter(agent.output, true);
    first.post(message);
    first.flush();
    // The repository side runs here: an interruption ends its input at once (it aborts as if the source went
    // away), whatever the remote does with the signal and the end of input it is sent.
    const input = agent.input.pipe(new PassThrough());
    interruption.whileRunning((signal) => {
      agent.interrupt();
      input.destroy(new Interrupted(signal));
    });
    const outcome = await serve(input, agent.output, { onEvent, own: { repository, options } });
    if (interruption.signal && !outcome.result) {
      await exitedWithin(agent, 2000);
      throw interruption.interrupted();
    }
    if (outcome.failure === 'bad-source') {
      // Refused before its hello: nothing was created, locked or written here.
      agent.kill();
      throw new UsageError(sourceProblemLine(describeLocation(source), outcome.sourceProblem!));
    }
    if (outcome.failure === 'protocol' || outcome.failure === 'local' || outcome.failure === 'refused') {
      // This side's verdict stands; a remote that broke the protocol may say anything, or never exit.
      agent.kill();
      if (session.lost) throw new Error(session.lost);
      if (outcome.failure === 'refused') throw new UsageError(outcome.error!);
      if (outcome.failure === 'local') throw new Error(outcome.error!);
      throw new Error(refusedRemote(session, outcome.error!, 'no snapshot was made'));
    }
    if (verify && outcome.result) {
      // The agent stays for the comparison, over this connection; its messages from here on are read from its own stream.
      agent.input.unpipe(input);
      kept = { agent, session };
      return { result: outcome.result, stats: null, wire: wireOf(session), pulled: kept };
    }
    agent.output.end();
    const code = await agent.exited;
    if (!outcome.result) {
      // The remote's own words first: they say why it stopped (a missing source, say).
      const remote = agent.stderr().trim().split('\n')[0]?.replace(/^lb agent: /, '');
      throw new Error(session.lost ?? (remote || outcome.error || `the remote agent exited with status ${code}`));
    }
    return { result: outcome.result, stats: null, wire: wireOf(session) };
  } finally {
    if (!kept) session.close();
  }
}

/** The pull request as it travels; refused in one line, before connecting, when it would not fit in one frame. */
function pullRequestMessage(request: PullRequest, host: string): object {
  const listed = request.selection?.listed?.length ?? 0;
  if (listed > MAX_FILE_LIST_BYTES) {
    throw new UsageError(`the file list holds ${listed} bytes of paths, more than the ${MAX_FILE_LIST_BYTES} a remote source is sent at once; split it, or run lb on ${host}`);
  }
  const message = encodePullRequest(request);
  // The filter rules have no bound of their own but the frame's.
  const size = Buffer.byteLength(JSON.stringify(message));
  if (size > MAX_FRAME) {
    throw new UsageError(`the filter rules and file list make a request of ${formatBytes(size)}, more than a remote source is sent at once (${formatBytes(MAX_FRAME)}); shorten them, or run lb on ${host}`);
  }
  return message;
}
