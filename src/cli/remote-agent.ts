// Running one conversation with lb's agent on another machine, for the commands
// that read or restore there: the session and the agent are closed whatever
// happens, and what went wrong is said in one line, a peer's words made printable.
import { ProtocolError } from '../protocol/frames.js';
import type { Location } from '../transport/address.js';
import type { AgentConnection } from '../transport/local.js';
import { openSession, startRemoteAgent, type SshOptions, type SshSession } from '../transport/ssh.js';
import { refusedRemote } from './backup/outcome.js';

export type Remote = Extract<Location, { kind: 'remote' }>;

/** The agent's output ended before its last message. */
export class RemoteEnded extends Error {}

/** Control characters (C0, DEL, C1: ESC and CSI among them) as `\xNN`, as names.ts shows them in names. */
export function printable(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Runs `work` against lb's agent on `where`. A protocol break is refused naming the host and the
 * cached agent (`stopped` says what it cut short); an agent that ended early is quoted from its stderr.
 */
export async function withAgent<T>(
  where: Remote,
  ssh: SshOptions,
  stopped: string,
  work: (agent: AgentConnection, session: SshSession) => Promise<T>,
): Promise<T> {
  const session = await openSession(where.host, where.user, ssh);
  try {
    const agent = await startRemoteAgent(session, ssh, []);
    try {
      return await work(agent, session);
    } catch (error) {
      if (session.lost) throw new Error(session.lost);
      if (error instanceof ProtocolError) throw new Error(refusedRemote(session, error.message, stopped));
      if (error instanceof RemoteEnded) {
        // The agent's own words, if any (a request it could not take, say), as text from a peer is shown.
        const said = agent.stderr().trim().split('\n')[0]?.replace(/^lb agent: /, '');
        throw new Error(said ? `the lb agent on ${where.host}: ${printable(said)}` : error.message);
      }
      throw error;
    } finally {
      agent.kill();
    }
  } finally {
    session.close();
  }
}
