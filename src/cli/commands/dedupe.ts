// `lb dedupe DIR`: checks the command line, runs the deduplication with the
// catalog's fast-hash cache, and reports.
import { realpathSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { defaultCatalogPath } from '../../catalog/catalog.js';
import { openCatalog } from '../../catalog/open.js';
import { startDedupe } from '../../dedupe/dedupe.js';
import { DedupeProgress } from '../dedupe-progress.js';
import { formatBytes, formatSeconds } from '../format.js';
import { EXIT, Output, UsageError, addOutputOptions, oneLineErrors, type OutputOptions } from '../output.js';

export interface DedupeCommandOptions extends OutputOptions {
  contentOnly?: boolean;
  dryRun?: boolean;
  catalog?: string;
}

export function registerDedupe(program: Command): void {
  const command = program
    .command('dedupe')
    .description('hard-link identical files inside DIR (one filesystem), replacing each duplicate atomically')
    .configureOutput(oneLineErrors('usage: lb dedupe [options] DIR (lb dedupe --help lists the options)'))
    .argument('<dir>', 'directory tree to deduplicate')
    .option('--content-only', "link equal contents even when mode, owner, group or mtime differ (the kept file's metadata wins)")
    .option('-n, --dry-run', 'change nothing: report the groups and the space linking would free')
    .option('--catalog <path>', 'hash cache database (default $XDG_STATE_HOME/lb/catalog.sqlite)');
  addOutputOptions(command, { verbose: 'list every link made', quiet: 'print only errors', progress: true }).action(
    async (dir: string, opts: DedupeCommandOptions) => {
      process.exitCode = await dedupeCommand(dir, opts);
    },
  );
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

async function dedupeCommand(dirArg: string, opts: DedupeCommandOptions): Promise<number> {
  const started = Date.now();
  const dir = checkDirectory(dirArg);
  const out = new Output(opts);
  // `lb dedupe -q` prints only errors, as its help says: a file left alone is no error.
  const warn = (line: string) => {
    if (!out.quiet) out.warn(line);
  };
  const dryRun = opts.dryRun ?? false;
  // The catalog is only a cache: whatever is wrong with it is a warning (said once), never the run's failure.
  const catalog = openCatalog(opts.catalog ?? defaultCatalogPath(), (line) => warn(`warning: ${line}`));
  const { report, done } = startDedupe(dir, {
    contentOnly: opts.contentOnly ?? false,
    dryRun,
    cache: catalog?.fastHashes,
    onLink: out.verbose ? (kept, duplicate) => out.line(`${dryRun ? 'would link' : 'linked'} ${duplicate.toString()} => ${kept.toString()}`) : undefined,
    onSkip: (skipped) => warn(`warning: ${JSON.stringify(skipped.path.toString())}: ${skipped.reason}`),
  });
  const progress = out.showsProgress ? await DedupeProgress.start(report, dryRun) : null;
  try {
    await done;
  } finally {
    progress?.stop();
    catalog?.close();
  }
  const seconds = (Date.now() - started) / 1000;
  const r = report;
  if (out.asJson) {
    out.json({
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
    });
  } else {
    const verb = dryRun ? 'would link' : 'linked';
    out.line(
      `lb dedupe: ${verb} ${r.filesLinked} file(s) in ${r.groups} group(s) of identical files, ` +
        `${dryRun ? 'reclaiming' : 'reclaimed'} ${formatBytes(r.bytesReclaimed)}${dryRun ? ' (dry run: nothing changed)' : ''}`,
    );
    out.line(`  ${r.filesScanned} files (${formatBytes(r.bytesScanned)}) scanned, ${formatBytes(r.bytesRead)} read, in ${formatSeconds(seconds)}`);
    if (r.changed) out.line(`  ${r.changed} file(s) changed while being looked at and were left alone`);
    if (r.leftoversRemoved) out.line(`  removed ${r.leftoversRemoved} temporary link(s) left by an interrupted run`);
  }
  return r.skipped.some((s) => s.kind === 'unreadable') ? EXIT.partial : EXIT.ok;
}
