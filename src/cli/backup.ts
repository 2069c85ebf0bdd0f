// `lb backup SRC DST`: checks the command line, runs the source side here and
// the repository side as an agent, and reports.
import { existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { resolve, sep } from 'node:path';
import { Sender, AgentError } from '../agent/sender.js';
import { Catalog, defaultCatalogPath } from '../catalog/catalog.js';
import type { RunResult } from '../protocol/messages.js';
import { snapshotNameFor } from '../repo/repository.js';
import { startLocalAgent } from '../transport/local.js';
import { formatBytes, formatSeconds } from './format.js';
import { Progress } from './progress.js';

export interface BackupCommandOptions {
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
  always?: boolean;
  numericIds?: boolean;
  catalog?: string;
  progress?: boolean;
}

/** Exit statuses, documented in the README. */
export const EXIT = { ok: 0, error: 1, usage: 2, partial: 3 } as const;

export class UsageError extends Error {}

function isRemote(address: string): boolean {
  // scp's rule: a colon before any slash makes it host:path.
  const colon = address.indexOf(':');
  const slash = address.indexOf('/');
  return colon > 0 && (slash < 0 || colon < slash);
}

function checkSource(source: string): string {
  let stat;
  try {
    stat = statSync(source);
  } catch {
    throw new UsageError(`source ${source} does not exist`);
  }
  if (!stat.isDirectory()) throw new UsageError(`source ${source} is not a directory`);
  return realpathSync(source);
}

function checkRepository(repository: string, source: string): string {
  const absolute = resolve(repository);
  // Resolve through the nearest existing ancestor, so a repository to be created inside the source is caught too.
  let existing = absolute;
  while (!existsSync(existing)) existing = resolve(existing, '..');
  const real = resolve(realpathSync(existing), absolute.slice(existing.length).replace(/^\//, ''));
  if (real === source || real.startsWith(source + sep)) {
    throw new UsageError(`repository ${repository} lies inside the source ${source}; choose a repository outside it`);
  }
  if (existsSync(absolute)) {
    const stat = statSync(absolute);
    if (!stat.isDirectory()) throw new UsageError(`repository ${repository} exists and is not a directory`);
    if (!existsSync(resolve(absolute, '.lb', 'format')) && readdirSync(absolute).length > 0) {
      throw new UsageError(`${repository} is not empty and not an lb repository; refusing to write there`);
    }
  }
  return absolute;
}

export async function backupCommand(sourceArg: string, repositoryArg: string, opts: BackupCommandOptions): Promise<number> {
  if (isRemote(sourceArg) || isRemote(repositoryArg)) {
    throw new UsageError('remote sources and repositories (host:path) are not supported by this build yet');
  }
  const started = Date.now();
  const source = checkSource(sourceArg);
  const repository = checkRepository(repositoryArg, source);

  let catalog: Catalog | undefined;
  const catalogPath = opts.catalog ?? defaultCatalogPath();
  try {
    catalog = new Catalog(catalogPath);
  } catch (error) {
    // The catalog is only a cache: without it the run reads more, and loses nothing.
    process.stderr.write(`lb: warning: catalog ${catalogPath} unusable (${(error as Error).message}); hashing without it\n`);
  }

  const print = (line: string) => {
    if (!opts.quiet) (opts.json ? process.stderr : process.stdout).write(line + '\n');
  };
  const agent = startLocalAgent();
  const sender = new Sender(agent.input, agent.output, {
    sourceRoot: source,
    repository,
    cache: catalog,
    options: {
      snapshotName: snapshotNameFor(new Date(started)),
      always: opts.always ?? false,
      numericIds: opts.numericIds ?? false,
      verbose: opts.verbose ?? false,
      quickCheck: catalog === undefined,
      sourceLabel: source,
    },
    onLog: (line) => {
      if (line.startsWith('warning: ')) {
        if (!opts.quiet) process.stderr.write(`lb: ${line}\n`);
      } else print(line);
    },
  });
  const progress =
    opts.progress !== false && !opts.quiet && !opts.json && !opts.verbose && process.stderr.isTTY
      ? await Progress.start({
          stats: sender.stats,
          get entriesSent() {
            return sender.entriesSent;
          },
          get entriesSettled() {
            return sender.entriesSettled;
          },
        })
      : null;

  let result: RunResult;
  try {
    result = await sender.run();
  } catch (error) {
    agent.kill();
    const detail = agent.stderr().trim();
    throw new Error((error instanceof AgentError || !detail ? (error as Error).message : detail).split('\n')[0]);
  } finally {
    progress?.stop();
    agent.output.end();
  }
  await agent.exited;
  const seconds = (Date.now() - started) / 1000;
  const s = sender.stats;
  const c = result.counts;
  const partial = result.warnings.length > 0;
  catalog?.recordRun({
    source,
    repository,
    snapshot: result.snapshot,
    startedAt: new Date(started).toISOString(),
    seconds,
    newFiles: c.newFiles,
    copiedFiles: c.copiedFiles,
    linkedFiles: c.linkedFiles,
    bytesTransferred: s.bytesSent,
    status: partial ? 'partial' : 'ok',
  });
  catalog?.close();

  if (opts.json) {
    process.stdout.write(
      JSON.stringify({
        snapshot: result.snapshot,
        created: result.created,
        source,
        repository,
        files: { new: c.newFiles, copied: c.copiedFiles, linked: c.linkedFiles, total: c.newFiles + c.copiedFiles + c.linkedFiles },
        directories: c.directories,
        symlinks: c.symlinks,
        skipped: s.skipped.map((k) => ({ path: k.path.toString(), reason: k.reason })),
        warnings: result.warnings,
        bytes: { scanned: s.bytesScanned, read: s.bytesRead, transferred: s.bytesSent, stored: c.bytesStored },
        seconds,
        status: partial ? 'partial' : 'ok',
      }) + '\n',
    );
  } else if (result.created) {
    print(`lb: snapshot ${result.snapshot} of ${source} in ${repository}`);
    print(
      `  files: ${c.newFiles} new, ${c.copiedFiles} copied, ${c.linkedFiles} linked` +
        ` (${c.newFiles + c.copiedFiles + c.linkedFiles} files, ${formatBytes(s.bytesScanned)}; ${c.directories} directories, ${c.symlinks} symlinks)`,
    );
    print(
      `  transferred ${formatBytes(s.bytesSent)}, stored ${formatBytes(c.bytesStored)}, read ${formatBytes(s.bytesRead)} from the source in ${formatSeconds(seconds)}`,
    );
  } else {
    print(`lb: nothing changed since the latest snapshot in ${repository}; none made (--always makes one anyway)`);
  }
  if (partial && !opts.quiet && !opts.json) print(`lb: ${result.warnings.length} file(s) could not be read and are missing from this snapshot`);
  return partial ? EXIT.partial : EXIT.ok;
}
