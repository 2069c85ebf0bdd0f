// Pushing: the source is here. It is scanned with the catalog and fed to a
// repository-side agent, a local child process or one pushed over SSH.
import type { ReadLog } from '../../agent/read-log.js';
import { AgentError, Sender } from '../../agent/sender.js';
import { SentMemory, sentStreamPath } from '../../agent/sent-memory.js';
import type { Catalog } from '../../catalog/catalog.js';
import { ProtocolError } from '../../protocol/frames.js';
import type { BackupOptions, RunEvent } from '../../protocol/messages.js';
import { NO_SELECTION, Selection, type SelectionSpec } from '../../scan/selection.js';
import { describeLocation, type Location } from '../../transport/address.js';
import { startLocalAgent, type AgentConnection } from '../../transport/local.js';
import { openSession, startRemoteAgent, type SshOptions, type SshSession } from '../../transport/ssh.js';
import { Interruption, agentStopped } from '../interrupt.js';
import { UsageError, type Output } from '../output.js';
import { Progress } from '../progress.js';
import { refusedRemote, wireOf, type Outcome } from './outcome.js';

/** The source is here: scan with the catalog, and feed a local or remote repository-side agent. */
export async function push(
  source: string,
  repository: Location,
  repositoryPath: string,
  options: BackupOptions,
  catalog: Catalog | undefined,
  ssh: SshOptions,
  out: Output,
  onEvent: (event: RunEvent) => void,
  budget: number | undefined,
  interruption: Interruption,
  readLog?: ReadLog,
  selection: SelectionSpec = NO_SELECTION,
): Promise<Outcome> {
  let session: SshSession | null = null;
  let kept: SshSession | null = null;
  let agent: AgentConnection;
  if (repository.kind === 'remote') {
    session = await interruption.orStop(openSession(repository.host, repository.user, ssh));
    try {
      agent = await interruption.orStop(startRemoteAgent(session, ssh, []));
    } catch (error) {
      session.close();
      throw error;
    }
  } else agent = startLocalAgent();
  interruption.whileRunning(() => agent.interrupt());

  const sender = new Sender(agent.input, agent.output, {
    sourceRoot: source,
    repository: repositoryPath,
    cache: catalog?.contentHashes,
    options,
    onEvent,
    remote: session !== null,
    budgetMs: budget,
    readLog,
    selection: new Selection(selection),
    memory: catalog && options.purpose === 'backup' ? SentMemory.open(sentStreamPath(catalog.path, describeLocation({ ...repository, path: repositoryPath }), options.series)) : undefined,
  });
  const progress = out.showsProgress
    ? await Progress.start({
        stats: sender.stats,
        get entriesSent() {
          return sender.entriesSent;
        },
        get entriesSettled() {
          return sender.entriesSettled;
        },
      })
    : null;
  const forgetProgress = progress ? interruption.onSignalRestore(progress.stop) : null;
  try {
    const result = await sender.run();
    agent.output.end();
    await agent.exited;
    // --verify compares over the same connection (no second login, no second passphrase).
    kept = readLog ? session : null;
    return { result, stats: sender.stats, wire: wireOf(session), ...(kept ? { session: kept } : {}) };
  } catch (error) {
    if (interruption.signal) {
      // The agent was asked to stop and did not finish: once it is gone, its lock is gone too.
      await agentStopped(agent);
      throw interruption.interrupted();
    }
    agent.kill();
    if (error instanceof AgentError && error.refused) throw new UsageError(error.message);
    if (error instanceof ProtocolError && session) {
      // This side's verdict stands: a repository side that broke the protocol may say anything.
      throw new Error(session.lost ?? refusedRemote(session, error.message, 'the backup was stopped'));
    }
    throw new Error(session?.lost ?? (await agentDeath(agent)) ?? agentFailure(agent, error as Error));
  } finally {
    forgetProgress?.();
    progress?.stop();
    if (session !== kept) session?.close();
  }
}

/** The agent's own words when it has any, else what went wrong on this side; one line. */
function agentFailure(agent: AgentConnection, error: Error): string {
  const detail = agent.stderr().trim();
  return (error instanceof AgentError || error instanceof ProtocolError || !detail ? error.message : detail).split('\n')[0]!;
}

/** If the agent was killed (it then said nothing), say so rather than report a broken pipe. */
async function agentDeath(agent: AgentConnection): Promise<string | null> {
  const exited = await Promise.race([agent.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 2000).unref())]);
  const signal = exited === null ? null : agent.exitSignal();
  if (signal === null || signal === 'SIGTERM') return null; // SIGTERM is ours, sent just above
  return `the repository side (lb agent) was killed by ${signal}; nothing was published, and the next run takes over from here`;
}
