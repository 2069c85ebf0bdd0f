// The body of `lb du REPO`: what each snapshot alone holds (what deleting it would
// free) and what it added, then what the repository stores against what its
// snapshots show. The accounting is repo/usage.ts; the lstats, repo/usage-scan.ts.
// Every series counts (their snapshots share the store) unless --series names one:
// then the figures are that series' snapshots', and what no snapshot links is still
// the whole repository's (link counts say it, whichever series are looked at).
import { formatBytes } from '../cli/format.js';
import { EXIT } from '../cli/status.js';
import type { RepositoryReader } from '../repo/reader.js';
import { accountUsage, type Usage } from '../repo/usage.js';
import { allSnapshotFiles, storeObjects, unlinkedObjects, type TreeDamage } from '../repo/usage-scan.js';
import type { Report } from './report.js';

export async function duBody(reader: RepositoryReader, _args: unknown, out: Report): Promise<number> {
  // Said once the figures are in (the scan cannot wait for the peer between files); there are few.
  const damages: TreeDamage[] = [];
  const usage = accountUsage(
    allSnapshotFiles(reader, (damage) => damages.push(damage)),
    reader.series === null ? storeObjects(reader.root) : [],
  );
  if (reader.series !== null) {
    for (const object of unlinkedObjects(reader.root)) {
      usage.totals.unreferencedObjects++;
      usage.totals.unreferencedBytes += object.size;
    }
  }
  for (const damage of damages) await out.warn(damageLine(damage));
  if (out.asJson) {
    await out.json(usage);
    return EXIT.ok;
  }
  if (usage.snapshots.length === 0) await out.line(`lb: ${reader.described} holds no snapshot yet`);
  else await printTable(out, usage);
  const { totals } = usage;
  const stored = `${formatBytes(totals.storedBytes)} (${formatBytes(totals.storedDiskBytes)} on disk)`;
  if (reader.series === null) await out.line(`stored in all: ${stored}`);
  else await out.line(`stored for series ${reader.series}: ${stored}, counting in full what it shares with other series`);
  await out.line(`${reader.series === null ? 'all' : 'its'} snapshots together: ${formatBytes(totals.apparentBytes)}, ${totals.ratio.toFixed(2)} times what is stored`);
  await out.line(`linked by no snapshot: ${totals.unreferencedObjects} object(s), ${formatBytes(totals.unreferencedBytes)}`);
  return EXIT.ok;
}

async function printTable(out: Report, usage: Usage): Promise<void> {
  const table = [
    ['snapshot', 'only it', 'added', 'files'],
    ...usage.snapshots.map((s) => [(s.series === undefined ? '' : `${s.series}/`) + s.name, formatBytes(s.exclusiveBytes), formatBytes(s.addedBytes), String(s.files)]),
  ];
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  // The name left-aligned, numbers right-aligned.
  for (const row of table) await out.line(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  await out.line(`${usage.snapshots.length} snapshot(s); only it: what deleting it would free; added: what it linked first`);
}

/** One line for a hand-edited tree: what was found, and how the figures take it. */
function damageLine(damage: TreeDamage): string {
  const parts = [
    damage.missing ? `${damage.missing} missing from its tree (not counted)` : '',
    damage.notRegular ? `${damage.notRegular} not regular files in its tree (not counted)` : '',
    damage.unlinked ? `${damage.unlinked} not hard links to a stored object (counted as only its own)` : '',
  ].filter((part) => part !== '');
  return `snapshot ${damage.snapshot}: of the files its manifest lists, ${parts.join(', ')}; was its tree edited by hand?`;
}
