// `lb dedupe DIR`: checks the command line, runs the deduplication with the
// catalog's fast-hash cache, and reports.
import { realpathSync, statSync } from 'node:fs';
import { defaultCatalogPath } from '../catalog/catalog.js';
import { startDedupe } from '../dedupe/dedupe.js';
import { EXIT, UsageError, openCatalog } from './backup.js';
import { DedupeProgress } from './dedupe-progress.js';
import { formatBytes, formatSeconds } from './format.js';
import { printLine } from './live-line.js';

export interface DedupeCommandOptions {
  contentOnly?: boolean;
  dryRun?: boolean;
  catalog?: string;
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  progress?: boolean;
}

function checkDirectory(dir: string): string {
  let stat;
  try {
    stat = statSync(dir);
  } catch {
    throw new UsageError(`${dir} does not exist`);
  }
  if (!stat.isDirectory()) throw new UsageError(`${dir} is not a directory`);
  return realpathSync(dir);
}

export async function dedupeCommand(dirArg: string, opts: DedupeCommandOptions): Promise<number> {
  const started = Date.now();
  const dir = checkDirectory(dirArg);
  const print = (line: string) => {
    if (!opts.quiet) printLine(opts.json ? process.stderr : process.stdout, line);
  };
  const warn = (line: string) => {
    if (!opts.quiet) printLine(process.stderr, `lb: ${line}`);
  };
  const dryRun = opts.dryRun ?? false;
  const catalog = openCatalog(opts.catalog ?? defaultCatalogPath(), warn);
  const { report, done } = startDedupe(dir, {
    contentOnly: opts.contentOnly ?? false,
    dryRun,
    cache: catalog?.fastHashes,
    onLink: opts.verbose ? (kept, duplicate) => print(`${dryRun ? 'would link' : 'linked'} ${duplicate.toString()} => ${kept.toString()}`) : undefined,
    onSkip: (skipped) => warn(`warning: ${JSON.stringify(skipped.path.toString())}: ${skipped.reason}`),
  });
  const progress =
    opts.progress !== false && !opts.quiet && !opts.json && !opts.verbose && process.stderr.isTTY ? await DedupeProgress.start(report, dryRun) : null;
  try {
    await done;
  } finally {
    progress?.stop();
    catalog?.close();
  }
  const seconds = (Date.now() - started) / 1000;
  const r = report;
  if (opts.json) {
    process.stdout.write(
      JSON.stringify({
        directory: dir,
        dryRun,
        contentOnly: opts.contentOnly ?? false,
        files: { scanned: r.filesScanned, hashed: r.filesHashed, linked: r.filesLinked, changed: r.changed },
        groups: r.groups,
        bytes: { scanned: r.bytesScanned, read: r.bytesRead, reclaimed: r.bytesReclaimed },
        collisions: r.collisions,
        leftoversRemoved: r.leftoversRemoved,
        skipped: r.skipped.map((s) => ({ path: s.path.toString(), reason: s.reason })),
        seconds,
      }) + '\n',
    );
  } else {
    const verb = dryRun ? 'would link' : 'linked';
    print(
      `lb dedupe: ${verb} ${r.filesLinked} file(s) in ${r.groups} group(s) of identical files, ` +
        `${dryRun ? 'reclaiming' : 'reclaimed'} ${formatBytes(r.bytesReclaimed)}${dryRun ? ' (dry run: nothing changed)' : ''}`,
    );
    print(`  ${r.filesScanned} files (${formatBytes(r.bytesScanned)}) scanned, ${formatBytes(r.bytesRead)} read, in ${formatSeconds(seconds)}`);
    if (r.changed) print(`  ${r.changed} file(s) changed while being looked at and were left alone`);
    if (r.leftoversRemoved) print(`  removed ${r.leftoversRemoved} temporary link(s) left by an interrupted run`);
  }
  return r.skipped.some((s) => s.kind === 'unreadable') ? EXIT.partial : EXIT.ok;
}
