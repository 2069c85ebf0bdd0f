// The body of `lb list REPO`: one line per snapshot, oldest first, from each
// snapshot's small summary file (a hundred snapshots: a hundred small reads, no manifest).
import { formatBytes } from '../cli/format.js';
import { EXIT } from '../cli/status.js';
import type { RepositoryReader } from '../repo/reader.js';
import type { Report } from './report.js';

export async function listBody(reader: RepositoryReader, _args: unknown, out: Report): Promise<number> {
  const latest = reader.latest();
  const rows = reader.snapshots().map((name) => ({ name, latest: name === latest, ...reader.summary(name) }));
  if (out.asJson) {
    await out.json(rows);
    return EXIT.ok;
  }
  if (rows.length === 0) {
    await out.line(`lb: ${reader.noSnapshot()}`);
    return EXIT.ok;
  }
  const table = [
    ['snapshot', 'files', 'size', 'new', 'copied', 'linked', 'new size', 'status'],
    ...rows.map((r) => [
      r.name + (r.latest ? ' *' : ''),
      String(r.files),
      formatBytes(r.bytes),
      String(r.new),
      String(r.copied),
      String(r.linked),
      formatBytes(r.newBytes),
      r.status ?? '-',
    ]),
  ];
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  // The name left-aligned, numbers right-aligned, the status last.
  for (const row of table) {
    await out.line(row.map((cell, i) => (i === 0 || i === row.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd());
  }
  await out.line(`${rows.length} snapshot(s); * is latest`);
  const series = reader.series === null ? reader.seriesNames() : [];
  if (series.length > 0) await out.line(`the repository holds series too: ${series.join(', ')} (lb list REPOSITORY --series NAME)`);
  return EXIT.ok;
}
