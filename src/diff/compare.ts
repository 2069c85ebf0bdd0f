// What changed between two snapshots, from their manifests alone (`lb diff`).
// Both record streams are in canonical order (order.ts), so one merge pass sees
// every path once: an entry present on both sides is compared and forgotten,
// only the entries present on one side are kept, to find the moves among them
// (moves.ts). Memory follows what changed, not the size of the tree.
import { sameContent, sameHardLink, sameMetadata, type Change, type Comparison, type DiffRecord, type DiffTotals } from './change.js';
import { foldMoves } from './moves.js';
import { comparePaths } from './order.js';

/** The change at one path present in both snapshots, or null when it is the same entry. */
function changeInPlace(older: DiffRecord, newer: DiffRecord): Change | null {
  if (older.type !== newer.type) return { op: 'typeChanged', path: newer.path, type: newer.type, oldType: older.type };
  if (!sameContent(older, newer)) return { op: 'changed', path: newer.path, type: newer.type };
  // A link made or broken at the same path is metadata too (a moved member's first moves with it: not compared).
  if (!sameMetadata(older, newer) || !sameHardLink(older, newer)) return { op: 'metadata', path: newer.path, type: newer.type };
  return null;
}

/** Records one at a time, refusing a stream out of canonical order (the merge would be wrong). */
class OrderedStream {
  private readonly iterator: Iterator<DiffRecord>;
  current: DiffRecord | null = null;

  constructor(
    records: Iterable<DiffRecord>,
    private readonly side: string,
  ) {
    this.iterator = records[Symbol.iterator]();
    this.advance();
  }

  advance(): void {
    const previous = this.current;
    const next = this.iterator.next();
    this.current = next.done ? null : next.value;
    if (previous && this.current && comparePaths(previous.path, this.current.path) >= 0) {
      throw new Error(`the ${this.side} manifest is not in canonical order at ${JSON.stringify(this.current.path.toString())}`);
    }
  }

  close(): void {
    this.iterator.return?.();
  }
}

/** Compares two snapshots' records, each in canonical order. */
export function compareSnapshots(older: Iterable<DiffRecord>, newer: Iterable<DiffRecord>): Comparison {
  const removed: DiffRecord[] = [];
  const added: DiffRecord[] = [];
  const changes: Change[] = [];
  const a = new OrderedStream(older, 'older');
  const b = new OrderedStream(newer, 'newer');
  try {
    while (a.current || b.current) {
      const order = !a.current ? 1 : !b.current ? -1 : comparePaths(a.current.path, b.current.path);
      if (order < 0) {
        removed.push(a.current!);
        a.advance();
      } else if (order > 0) {
        added.push(b.current!);
        b.advance();
      } else {
        const change = changeInPlace(a.current!, b.current!);
        if (change) changes.push(change);
        a.advance();
        b.advance();
      }
    }
  } finally {
    a.close();
    b.close();
  }
  changes.push(...foldMoves(removed, added));
  changes.sort((x, y) => comparePaths(x.path, y.path));
  return { changes, totals: totalsOf(changes) };
}

function totalsOf(changes: Change[]): DiffTotals {
  const totals: DiffTotals = { added: 0, removed: 0, changed: 0, metadata: 0, typeChanged: 0, moved: 0, bytesAdded: 0, bytesRemoved: 0 };
  for (const change of changes) {
    totals[change.op]++;
    if (change.op === 'added') totals.bytesAdded += change.size ?? 0;
    if (change.op === 'removed') totals.bytesRemoved += change.size ?? 0;
  }
  return totals;
}
