// Which objects `lb verify --read-data` re-reads: all of them, a share chosen at
// random (`10%`), or a fixed part (`N/T`), as restic's --read-data-subset: the
// parts split the store by the first byte of the hash, so running 1/T … T/T on
// successive nights reads every object exactly once, one fan-out directory
// group at a time. Pure: the random source is given.

export type ObjectSubset =
  | { kind: 'all' }
  | { kind: 'share'; percent: number }
  | { kind: 'part'; part: number; parts: number };

/** The first byte of a hash decides its part, so there are at most 256 parts. */
export const MAX_PARTS = 256;

export class SubsetError extends Error {}

/** `10%`, `2.5%` or `N/T`; throws a SubsetError saying what is accepted. */
export function parseObjectSubset(text: string): ObjectSubset {
  const share = /^([0-9]+(?:\.[0-9]+)?)%$/.exec(text);
  if (share) {
    const percent = Number(share[1]);
    if (percent <= 0 || percent > 100) throw new SubsetError(`${text}: a share of the objects must be above 0% and at most 100%`);
    return percent === 100 ? { kind: 'all' } : { kind: 'share', percent };
  }
  const part = /^([0-9]+)\/([0-9]+)$/.exec(text);
  if (part) {
    const [n, total] = [Number(part[1]), Number(part[2])];
    if (total < 1 || total > MAX_PARTS) throw new SubsetError(`${text}: the objects split into 1 to ${MAX_PARTS} parts (by the first byte of their hash)`);
    if (n < 1 || n > total) throw new SubsetError(`${text}: the part must be from 1 to ${total}`);
    return total === 1 ? { kind: 'all' } : { kind: 'part', part: n, parts: total };
  }
  throw new SubsetError(`${text} is not a subset of the objects: give a share (10%) or a part (N/T, such as 1/7)`);
}

/**
 * Whether the subset takes the object of content `hash` (64 hex digits). A share
 * draws for each object on its own, so it takes about that share, not exactly it.
 */
export function subsetTakes(subset: ObjectSubset, hash: string, random: () => number = Math.random): boolean {
  switch (subset.kind) {
    case 'all':
      return true;
    case 'share':
      return random() * 100 < subset.percent;
    case 'part':
      return parseInt(hash.slice(0, 2), 16) % subset.parts === subset.part - 1;
  }
}

/** How the closing line names the subset. */
export function describeSubset(subset: ObjectSubset): string {
  switch (subset.kind) {
    case 'all':
      return 'every object';
    case 'share':
      return `${subset.percent}% of the objects at random`;
    case 'part':
      return `part ${subset.part} of ${subset.parts}`;
  }
}
