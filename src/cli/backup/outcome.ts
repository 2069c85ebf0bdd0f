// What a push or a pull gives back to `lb backup`, and how either says that its
// remote peer could not be trusted.
import type { SenderStats } from '../../agent/sender.js';
import type { RunResult } from '../../protocol/messages.js';
import type { SshSession } from '../../transport/ssh.js';
import type { VerifyReport } from './verify.js';
import type { PulledSource } from './verify-pull.js';

export interface Outcome {
  result: RunResult;
  /** Source-side figures; null when pulling (the source side ran on the remote). */
  stats: SenderStats | null;
  wire: { sent: number; received: number } | null;
  /** With --verify: the comparison of the snapshot with the source; null when there was no snapshot to compare. */
  verify?: VerifyReport | null;
  /** A push with --verify: its SSH connection, left open for the comparison, which closes it. */
  session?: SshSession;
  /** A pull with --verify: the source's agent, waiting for the comparison, which closes its connection. */
  pulled?: PulledSource;
}

export function wireOf(session: SshSession | null): Outcome['wire'] {
  return session ? { sent: session.socket.bytesWritten, received: session.socket.bytesRead } : null;
}

/** The remote agent broke the protocol: say so, and what to do about the copy cached there. */
export function refusedRemote(session: SshSession, detail: string, consequence: string): string {
  const where = `${session.target.user}@${session.target.alias}`;
  return (
    `refused what ${where} sent (${detail}); ${consequence}. ` +
    `The lb agent cached there (~/.cache/lb/agent-*.cjs) may be damaged or tampered with: check that host, then delete the file so lb sends a fresh one`
  );
}
