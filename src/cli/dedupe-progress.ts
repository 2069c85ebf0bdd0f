// The live status line of `lb dedupe` on a terminal: what it has found and done so far.
import type cliProgress from 'cli-progress';
import type { DedupeReport } from '../dedupe/dedupe.js';
import { formatBytes } from './format.js';

export class DedupeProgress {
  private readonly bar: cliProgress.SingleBar;
  private readonly timer: NodeJS.Timeout;

  /** Loaded only on a terminal. */
  static async start(report: DedupeReport, dryRun: boolean): Promise<DedupeProgress> {
    const { default: bars } = await import('cli-progress');
    return new DedupeProgress(report, dryRun, bars);
  }

  private constructor(
    private readonly report: DedupeReport,
    private readonly dryRun: boolean,
    bars: typeof cliProgress,
  ) {
    this.bar = new bars.SingleBar({
      stream: process.stderr,
      format: '{phase} | {files} files, {scanned} | read {read} | {linked} {verb}, {reclaimed} back',
      hideCursor: true,
      clearOnComplete: true,
    });
    this.bar.start(1, 0, this.payload());
    this.timer = setInterval(() => this.bar.update(0, this.payload()), 250);
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
    clearInterval(this.timer);
    this.bar.stop();
  }
}
