// `lb list REPO`: one line per snapshot, oldest first, from each snapshot's small
// summary file (a hundred snapshots: a hundred small reads, no manifest).
import type { Command } from 'commander';
import { formatBytes } from '../format.js';
import { EXIT, Output, addOutputOptions, oneLineErrors, type OutputOptions } from '../output.js';
import { openToRead } from './read-repository.js';

export function registerList(program: Command): void {
  const command = program
    .command('list')
    .description('list the snapshots of REPOSITORY: files, size, how files arrived, status')
    .configureOutput(oneLineErrors('usage: lb list [options] REPOSITORY (lb list --help lists the options)'))
    .argument('<repository>', 'lb repository: a local path');
  addOutputOptions(command, {}).action((repository: string, opts: OutputOptions) => {
    process.exitCode = listCommand(repository, opts);
  });
}

function listCommand(repositoryArg: string, opts: OutputOptions): number {
  const out = new Output(opts);
  const reader = openToRead(repositoryArg, 'list');
  const latest = reader.latest();
  const rows = reader.snapshots().map((name) => ({ name, latest: name === latest, ...reader.summary(name) }));
  if (out.asJson) {
    out.json(rows);
    return EXIT.ok;
  }
  if (rows.length === 0) {
    out.line(`lb: the repository ${reader.root} holds no snapshot yet`);
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
    out.line(row.map((cell, i) => (i === 0 || i === row.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd());
  }
  out.line(`${rows.length} snapshot(s); * is latest`);
  return EXIT.ok;
}
