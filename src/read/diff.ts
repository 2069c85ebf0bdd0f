// The body of `lb diff REPO [OLD [NEW]]`: what changed between two snapshots,
// from their manifests alone (diff/compare.ts), moves shown as moves; this file
// picks the two snapshots and prints.
import { formatBytes } from '../cli/format.js';
import { displayName, jsonName } from '../cli/names.js';
import { EXIT, UsageError } from '../cli/status.js';
import type { Change, DiffTotals, EntryType } from '../diff/change.js';
import { compareSnapshots } from '../diff/compare.js';
import type { RepositoryReader } from '../repo/reader.js';
import { resolveSnapshot } from './open.js';
import type { Report } from './report.js';

export interface DiffArgs {
  old?: string;
  new?: string;
}

export async function diffBody(reader: RepositoryReader, args: DiffArgs, out: Report): Promise<number> {
  const [older, newer] = snapshotsToCompare(reader, args.old, args.new);
  const { changes, totals } = compareSnapshots(reader.records(older), reader.records(newer));
  if (out.asJson) {
    await out.json({ old: older, new: newer, changes: changes.map(jsonChange), totals });
    return EXIT.ok;
  }
  for (const change of changes) await out.line(changeLine(change));
  await out.line(`${older} -> ${newer}: ${totalsText(totals)}`);
  return EXIT.ok;
}

/** OLD and NEW as named; NEW latest by default, OLD the snapshot just before NEW. */
function snapshotsToCompare(reader: RepositoryReader, oldWord: string | undefined, newWord: string | undefined): [string, string] {
  const newer = resolveSnapshot(reader, newWord);
  if (oldWord !== undefined) return [resolveSnapshot(reader, oldWord), newer];
  const names = reader.snapshots();
  const before = names[names.indexOf(newer) - 1];
  if (before === undefined) {
    throw new UsageError(
      names.length === 1
        ? `nothing to compare: ${reader.described} holds one snapshot only (${newer})`
        : `nothing to compare: no snapshot before ${newer}; name the older one (lb diff REPOSITORY OLD ${newer})`,
    );
  }
  return [before, newer];
}

const SYMBOL: Record<Change['op'], string> = { added: '+', removed: '-', changed: 'M', metadata: 'm', typeChanged: 'T', moved: 'R' };

/** A path as printed: the root as `.`, directories ending in `/`, bytes that are not text escaped. */
function shownPath(path: Buffer, type: EntryType): string {
  return (path.length === 0 ? '.' : displayName(path)) + (type === 'dir' ? '/' : '');
}

function changeLine(change: Change): string {
  let line = `${SYMBOL[change.op]} ${shownPath(change.path, change.type)}`;
  if (change.to) line += ` -> ${shownPath(change.to, change.type)}`;
  if (change.oldType) line += ` (was a ${change.oldType === 'dir' ? 'directory' : change.oldType})`;
  if (change.entries !== undefined) line += ` (${change.entries} ${change.entries === 1 ? 'entry' : 'entries'})`;
  if (change.metadataChanged) line += ' (metadata changed too)';
  return line;
}

function totalsText(t: DiffTotals): string {
  return [
    `${t.added} added (${formatBytes(t.bytesAdded)})`,
    `${t.removed} removed (${formatBytes(t.bytesRemoved)})`,
    `${t.changed} changed`,
    `${t.metadata} metadata only`,
    `${t.typeChanged} type changed`,
    `${t.moved} moved`,
  ].join(', ');
}

/** The root as `.`, as the manifest and the text output have it; any other name as names.ts gives it. */
function jsonPath(path: Buffer, key: string): Record<string, string> {
  return path.length === 0 ? { [key]: '.' } : jsonName(path, key);
}

function jsonChange(change: Change): Record<string, unknown> {
  return {
    op: change.op,
    type: change.type,
    ...jsonPath(change.path, 'path'),
    ...(change.to ? jsonPath(change.to, 'to') : {}),
    ...(change.oldType ? { oldType: change.oldType } : {}),
    ...(change.size !== undefined ? { size: change.size } : {}),
    ...(change.entries !== undefined ? { entries: change.entries } : {}),
    ...(change.metadataChanged ? { metadataChanged: true } : {}),
  };
}
