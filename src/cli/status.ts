// Exit statuses and the bad-command-line error, apart from output.ts (which needs
// commander) so that the read commands' bodies, which the agent runs too, can use them.

/** Exit statuses, documented in the README. */
export const EXIT = { ok: 0, error: 1, usage: 2, partial: 3, incomplete: 4, damaged: 5, differs: 6 } as const;

/** A bad command line: exit status 2. */
export class UsageError extends Error {}
