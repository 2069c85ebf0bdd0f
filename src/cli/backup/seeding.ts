// Link-Backup's seeding through a transfer disk: --showfiles names the source
// files whose content the repository lacks (no snapshot, nothing written),
// --catalogonly stores content without a snapshot. Which options make sense
// together is checked here, before anything runs.
import { storeOf, storeSelectionRefusal } from '../../agent/store-source.js';
import { comparePaths } from '../../diff/order.js';
import { ProtocolError } from '../../protocol/frames.js';
import type { RunEvent, RunPurpose } from '../../protocol/messages.js';
import { choosesPaths, type SelectionSpec } from '../../scan/selection.js';
import { formatBytes, formatSeconds } from '../format.js';
import { displayName } from '../names.js';
import { UsageError, type Output } from '../output.js';
import type { Outcome } from './outcome.js';
import { bytesTransferred } from './summary.js';

export interface SeedingCommandOptions {
  showfiles?: boolean;
  catalogonly?: boolean;
  null?: boolean;
  filelist?: string;
  verify?: boolean;
  always?: boolean;
  minutes?: string;
  json?: boolean;
  verbose?: boolean;
}

/** What the run is for; a UsageError for options that cannot go together. */
export function purposeFrom(opts: SeedingCommandOptions): RunPurpose {
  const refuse = (a: string, b: string, why: string) => {
    throw new UsageError(`${a} and ${b} cannot go together: ${why}`);
  };
  if (opts.showfiles && opts.catalogonly) refuse('--showfiles', '--catalogonly', '--showfiles writes nothing, --catalogonly stores content');
  const seeding = opts.showfiles ? '--showfiles' : opts.catalogonly ? '--catalogonly' : null;
  if (seeding) {
    if (opts.verify) refuse(seeding, '--verify', 'no snapshot is made to verify');
    if (opts.always) refuse(seeding, '--always', 'no snapshot is made');
  }
  if (opts.showfiles) {
    if (opts.minutes !== undefined) refuse('--showfiles', '--minutes', '--showfiles transfers nothing');
    if (opts.json) refuse('--showfiles', '--json', 'the output is the list of paths (-0 makes it safe for any name)');
    if (opts.verbose) refuse('--showfiles', '--verbose', 'the output is the list of paths');
  }
  if (opts.null && !opts.showfiles && opts.filelist === undefined) {
    throw new UsageError('-0 separates the paths of --showfiles or --filelist; give one of them');
  }
  return opts.showfiles ? 'showfiles' : opts.catalogonly ? 'catalogonly' : 'backup';
}

/**
 * --catalogonly from an lb repository stores its object store whole: a file list or an exclude names paths
 * of a tree, which that walk never meets, so it would silently store nothing (or everything).
 */
export function refuseSelectionOnStore(purpose: RunPurpose, selection: SelectionSpec, source: string | null): void {
  if (purpose !== 'catalogonly' || source === null || storeOf(source) === null) return;
  if (choosesPaths(selection)) throw new UsageError(storeSelectionRefusal(source));
}

/** --showfiles: each missing path on stdout as it is found, newline- or NUL-terminated; run events go on as usual. */
export class MissingPaths {
  count = 0;
  bytes = 0;
  /** Paths with a newline, which a newline-separated list cannot carry. */
  unlistable = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private last: Buffer | null = null;

  constructor(
    private readonly nul: boolean,
    private readonly out: Output,
    private readonly otherEvents: (event: RunEvent) => void,
  ) {}

  readonly onEvent = (event: RunEvent): void => {
    if (event.kind !== 'missing') return this.otherEvents(event);
    // As the source sent its entries: a repository side naming a path twice or out of order is not to be believed.
    if (this.last !== null && comparePaths(this.last, event.path) >= 0) {
      throw new ProtocolError(`the repository side named ${displayName(event.path)} as missing out of order`);
    }
    this.last = event.path;
    if (!this.nul && event.path.includes(0x0a)) {
      this.unlistable++;
      this.out.warn(`warning: ${displayName(event.path)} has a newline in its name and is not listed; use -0 to list every name`);
      return;
    }
    this.count++;
    this.bytes += event.size;
    this.pending.push(event.path, Buffer.from(this.nul ? '\0' : '\n'));
    this.pendingBytes += event.path.length + 1;
    if (this.pendingBytes >= 65536) this.flush();
  };

  flush(): void {
    if (this.pending.length === 0) return;
    process.stdout.write(Buffer.concat(this.pending));
    this.pending = [];
    this.pendingBytes = 0;
  }
}

/** The closing lines of --showfiles and --catalogonly; on stderr for --showfiles, whose stdout is the list. */
export function printSeedingSummary(out: Output, outcome: Outcome, repository: string, seconds: number, missing: MissingPaths | null): void {
  const c = outcome.result.counts;
  if (out.quiet) return;
  if (missing) {
    const held = c.linkedFiles;
    process.stderr.write(
      `lb: ${missing.count} file(s), ${formatBytes(missing.bytes)}, have content that ${repository} does not hold; ` +
        `${held} file(s) it holds already (${formatSeconds(seconds)}, nothing written)\n`,
    );
    return;
  }
  if (out.asJson) {
    out.json({ snapshot: null, repository, files: { new: c.newFiles, held: c.linkedFiles }, bytes: { transferred: bytesTransferred(outcome), stored: c.bytesStored }, wire: outcome.wire, seconds });
    return;
  }
  out.line(`lb: stored the content of ${c.newFiles} file(s), ${formatBytes(c.bytesStored)}, in ${repository}; ${c.linkedFiles} file(s) it held already; no snapshot made (--catalogonly)`);
  out.line(`  transferred ${formatBytes(bytesTransferred(outcome))} in ${formatSeconds(seconds)}`);
  if (outcome.wire) out.line(`  on the wire: ${formatBytes(outcome.wire.sent)} sent, ${formatBytes(outcome.wire.received)} received`);
}
