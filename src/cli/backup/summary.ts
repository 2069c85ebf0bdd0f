// What `lb backup` says when a run has ended: a few lines of text, or one JSON
// object under --json.
import { specialFilesLine } from '../../repo/skips.js';
import { formatBytes, formatSeconds } from '../format.js';
import { EXIT, type Output } from '../output.js';
import type { Outcome } from './outcome.js';

export type RunStatus = 'ok' | 'partial' | 'incomplete' | 'differs';

/** Incomplete: out of time, no snapshot made. Partial: a snapshot lacking the paths that could not be read. Differs: --verify found differences. */
export function runStatus(outcome: Outcome): RunStatus {
  if ((outcome.verify?.differenceCount ?? 0) > 0) return 'differs';
  return outcome.result.incomplete ? 'incomplete' : outcome.result.skipCounts.unreadable > 0 ? 'partial' : 'ok';
}

export const EXIT_FOR: Record<RunStatus, number> = { ok: EXIT.ok, partial: EXIT.partial, incomplete: EXIT.incomplete, differs: EXIT.differs };

/** Bytes sent by the source side (known here when pushing), else received by the repository side. */
export function bytesTransferred(outcome: Outcome): number {
  return outcome.stats?.bytesSent ?? outcome.result.counts.bytesReceived;
}

export interface RunFacts {
  /** As recorded in the catalog and printed: the resolved local path, or `[user@]host:path`. */
  source: string;
  repository: string;
  /** --series, when given. */
  series?: string;
  seconds: number;
  /** --minutes as given, for the line saying that the budget ran out. */
  minutes: string | undefined;
}

/** `series NAME of ` before the repository, with --series. */
function inSeries(facts: RunFacts): string {
  return facts.series === undefined ? '' : `series ${facts.series} of `;
}

export function printSummary(out: Output, outcome: Outcome, facts: RunFacts): void {
  const { result, stats, wire } = outcome;
  const c = result.counts;
  const status = runStatus(outcome);
  const transferred = bytesTransferred(outcome);
  const { seconds } = facts;
  if (out.asJson) {
    out.json({
      snapshot: result.snapshot,
      created: result.created,
      source: facts.source,
      repository: facts.repository,
      ...(facts.series === undefined ? {} : { series: facts.series }),
      files: { new: c.newFiles, copied: c.copiedFiles, linked: c.linkedFiles, total: c.newFiles + c.copiedFiles + c.linkedFiles },
      directories: c.directories,
      symlinks: c.symlinks,
      skipped: result.skipped,
      warnings: result.warnings,
      deferred: result.deferred,
      bytes: { scanned: stats?.bytesScanned ?? null, read: stats?.bytesRead ?? null, transferred, stored: c.bytesStored, resumed: c.bytesResumed },
      wire,
      seconds,
      ...(outcome.verify !== undefined ? { verify: outcome.verify } : {}),
      status,
    });
    return;
  }
  if (result.incomplete) {
    out.line(`lb: time budget of ${facts.minutes} minute(s) used up; no snapshot made, the next run goes on from here`);
    out.line(
      `  stored ${c.newFiles + c.copiedFiles} file(s), ${formatBytes(c.bytesStored)}, which stay in the repository` +
        `${result.deferred ? `; ${result.deferred} file(s) left for the next run` : ''}` +
        `${c.bytesResumed ? `; resumed ${formatBytes(c.bytesResumed)} already received` : ''}`,
    );
    out.line(`  transferred ${formatBytes(transferred)} in ${formatSeconds(seconds)}`);
  } else if (result.created) {
    out.line(`lb: snapshot ${result.snapshot} of ${facts.source} in ${inSeries(facts)}${facts.repository}`);
    out.line(
      `  files: ${c.newFiles} new, ${c.copiedFiles} copied, ${c.linkedFiles} linked` +
        ` (${c.newFiles + c.copiedFiles + c.linkedFiles} files${stats ? ', ' + formatBytes(stats.bytesScanned) : ''}; ${c.directories} directories, ${c.symlinks} symlinks)`,
    );
    out.line(
      `  transferred ${formatBytes(transferred)}, stored ${formatBytes(c.bytesStored)}` +
        (stats ? `, read ${formatBytes(stats.bytesRead)} from the source` : '') +
        ` in ${formatSeconds(seconds)}`,
    );
  } else {
    out.line(`lb: nothing changed since the latest snapshot in ${inSeries(facts)}${facts.repository}; none made (--always makes one anyway)`);
  }
  if (result.skipCounts.special > 0) out.line(`  ${specialFilesLine(result.skipCounts.special)}`);
  if (wire) out.line(`  on the wire: ${formatBytes(wire.sent)} sent, ${formatBytes(wire.received)} received`);
  if (result.skipCounts.unreadable > 0) out.warn(`${result.skipCounts.unreadable} path(s) could not be read and are missing from this snapshot`);
}
