// `lb du REPO`: what each snapshot alone holds (what deleting it would free) and
// what it added, then what the repository stores against what its snapshots show.
// The accounting is repo/usage.ts; the lstats, repo/usage-scan.ts.
import type { Command } from 'commander';
import { accountUsage, type Usage } from '../../repo/usage.js';
import { allSnapshotFiles, storeObjects, type TreeDamage } from '../../repo/usage-scan.js';
import { formatBytes } from '../format.js';
import { EXIT, Output, addOutputOptions, oneLineErrors, type OutputOptions } from '../output.js';
import { openToRead } from './read-repository.js';

export function registerDu(program: Command): void {
  const command = program
    .command('du')
    .description('space used: what each snapshot alone holds and what it added, what the repository stores in all')
    .configureOutput(oneLineErrors('usage: lb du [options] REPOSITORY (lb du --help lists the options)'))
    .argument('<repository>', 'lb repository: a local path');
  addOutputOptions(command, {}).action((repository: string, opts: OutputOptions) => {
    process.exitCode = duCommand(repository, opts);
  });
}

function duCommand(repositoryArg: string, opts: OutputOptions): number {
  const out = new Output(opts);
  const reader = openToRead(repositoryArg, 'du');
  const usage = accountUsage(
    allSnapshotFiles(reader, (damage) => out.warn(damageLine(damage))),
    storeObjects(reader.root),
  );
  if (out.asJson) {
    out.json(usage);
    return EXIT.ok;
  }
  if (usage.snapshots.length === 0) out.line(`lb: the repository ${reader.root} holds no snapshot yet`);
  else printTable(out, usage);
  const { totals } = usage;
  out.line(`stored in all: ${formatBytes(totals.storedBytes)} (${formatBytes(totals.storedDiskBytes)} on disk)`);
  out.line(`all snapshots together: ${formatBytes(totals.apparentBytes)}, ${totals.ratio.toFixed(2)} times what is stored`);
  out.line(`linked by no snapshot: ${totals.unreferencedObjects} object(s), ${formatBytes(totals.unreferencedBytes)}`);
  return EXIT.ok;
}

function printTable(out: Output, usage: Usage): void {
  const table = [
    ['snapshot', 'only it', 'added', 'files'],
    ...usage.snapshots.map((s) => [s.name, formatBytes(s.exclusiveBytes), formatBytes(s.addedBytes), String(s.files)]),
  ];
  const widths = table[0]!.map((_, column) => Math.max(...table.map((row) => row[column]!.length)));
  // The name left-aligned, numbers right-aligned.
  for (const row of table) out.line(row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '));
  out.line(`${usage.snapshots.length} snapshot(s); only it: what deleting it would free; added: what it linked first`);
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
