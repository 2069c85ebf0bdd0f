// What the agent is asked to do, named by the kind (`t`) of the first message on
// its input: a backup to receive (the source's `hello`), a backup to send (the
// repository side's `pull`), a repository to read (`read`), a backup's snapshot
// to check for `lb backup --verify` (`verify-backup`), a restore to feed from a
// repository here (`restore-from`) or to write into a target here (`restore-to`). Each role then reads
// that first message again itself, validated by its own decoder (its version
// included), so adding a role is one kind here and one function in main.ts.
import { FRAME_JSON, ProtocolError, type Frame } from '../protocol/frames.js';

/** The first message's kind for each role. */
export const ROLE_KINDS = ['hello', 'pull', 'read', 'verify-backup', 'restore-from', 'restore-to', 'prune'] as const;
export type RoleKind = (typeof ROLE_KINDS)[number];

/** The role the first frame names; a ProtocolError (one line) for anything else. */
export function roleOf(first: Frame): RoleKind {
  if (first.type !== FRAME_JSON) throw new ProtocolError('the peer began with file data, not a message naming what to do');
  const message = first.message;
  const kind = typeof message === 'object' && message !== null && !Array.isArray(message) ? (message as { t?: unknown }).t : undefined;
  if (typeof kind !== 'string' || !(ROLE_KINDS as readonly string[]).includes(kind)) {
    const named = typeof kind === 'string' ? JSON.stringify(kind.slice(0, 40)) : 'nothing';
    throw new ProtocolError(`the peer's first message names ${named}, which is no role of this agent (another lb version?)`);
  }
  return kind as RoleKind;
}
