// The live status line of `lb dedupe` on a terminal: what it has found and done so far.
import type { DedupeReport } from '../dedupe/dedupe.js';
import { formatBytes } from './format.js';
import { LiveLine } from './live-line.js';

export class DedupeProgress {
  private readonly timer: NodeJS.Timeout;

  static async start(report: DedupeReport, dryRun: boolean): Promise<DedupeProgress> {
    const format = '{phase} | {files} files, {scanned} | read {read} | {linked} {verb}, {reclaimed} back';
    return new DedupeProgress(report, dryRun, await LiveLine.start({ format }));
  }

  private constructor(
    private readonly report: DedupeReport,
    private readonly dryRun: boolean,
    private readonly bar: LiveLine,
  ) {
    const update = () => this.bar.update(0, 1, this.payload());
    update();
    this.timer = setInterval(update, 250);
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
