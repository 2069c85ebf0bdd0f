// The name of a series (`--series NAME`): a directory of the repository beside
// its top-level snapshots and `.lb`, so it must never be taken for either, nor
// lead anywhere else: 1 to 64 of A-Z a-z 0-9 . _ -, not beginning with . or -,
// not `latest`, not shaped like a snapshot name. docs/FORMAT.md says the same;
// protocol/validate.ts holds the same rule for names from a peer.

const SERIES_CHARACTERS = /^[A-Za-z0-9._-]+$/;
const SNAPSHOT_SHAPE = /^[0-9]{4}\.[0-9]{2}\.[0-9]{2}-[0-9]{2}\.[0-9]{2}\.[0-9]{2}$/;
export const SERIES_NAME_MAX = 64;

/** What is wrong with `name` as a series name, or null when it is one. */
export function seriesNameProblem(name: string): string | null {
  if (name.length === 0) return 'a series needs a name';
  if (!SERIES_CHARACTERS.test(name)) return 'a series name is made of letters A-Z a-z, digits, ".", "_" and "-" only';
  if (name.length > SERIES_NAME_MAX) return `a series name has at most ${SERIES_NAME_MAX} characters, not ${name.length}`;
  if (name.startsWith('.') || name.startsWith('-')) return 'a series name cannot begin with "." or "-"';
  if (name === 'latest') return '"latest" names the link to the latest snapshot, not a series';
  if (SNAPSHOT_SHAPE.test(name)) return 'a series cannot be named like a snapshot';
  return null;
}

export function isSeriesName(name: string): boolean {
  return seriesNameProblem(name) === null;
}
