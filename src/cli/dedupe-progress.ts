// The live status line of `lb dedupe` on a terminal: what it has found and done so far.
import type { DedupeReport } from '../dedupe/dedupe.js';
import { formatBytes } from './format.js';
import { LiveLine } from './live-line.js';

export class DedupeProgress {
  private line: LiveLine | undefined;

  private constructor(
    private readonly report: DedupeReport,
    private readonly dryRun: boolean,
  ) {}

  static async start(report: DedupeReport, dryRun: boolean): Promise<DedupeProgress> {
    const progress = new DedupeProgress(report, dryRun);
    const format = '{phase} | {files} files, {scanned} | read {read} | {linked} {verb}, {reclaimed} back';
    progress.line = await LiveLine.start({ format }, () => ({ value: 0, total: 1, payload: progress.payload() }));
    return progress;
  }

  private payload(): Record<string, string | number> {
    const r = this.report;
    return {
      phase: r.phase,
      files: r.filesScanned,
      scanned: formatBytes(r.bytesScanned),
      read: formatBytes(r.bytesRead),
      linked: r.filesLinked,
      verb: this.dryRun ? 'to link' : 'linked',
      reclaimed: formatBytes(r.bytesReclaimed),
    };
  }

  stop(): void {
    this.line?.stop();
  }
}
