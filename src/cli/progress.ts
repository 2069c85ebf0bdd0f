// A live progress line on a terminal (never under cron: only when stderr is a TTY).
import type { SenderStats } from '../agent/sender.js';
import { formatBytes, formatSeconds } from './format.js';
import { LiveLine, type LineState } from './live-line.js';

export interface ProgressSource {
  stats: SenderStats;
  entriesSent: number;
  entriesSettled: number;
}

export class Progress {
  private readonly started = Date.now();
  private line: LiveLine | undefined;

  private constructor(private readonly source: ProgressSource) {}

  static async start(source: ProgressSource): Promise<Progress> {
    const progress = new Progress(source);
    const format = '{bar} {percentage}% | {files} files {scanned} | read {read} | sent {sent} | {rate}/s | ETA {eta}';
    progress.line = await LiveLine.start({ format, barsize: 20 }, () => progress.state(), 'shades_classic');
    return progress;
  }

  /** Until the walk ends the total is a lower bound; the bar shows entries settled out of entries found. */
  private state(): LineState {
    return { value: this.source.entriesSettled, total: Math.max(this.source.entriesSent, 1), payload: this.payload() };
  }

  private payload(): Record<string, string | number> {
    const s = this.source.stats;
    const seconds = Math.max((Date.now() - this.started) / 1000, 0.001);
    return {
      files: s.filesScanned + (s.scanDone ? '' : '+'),
      scanned: formatBytes(s.bytesScanned),
      read: formatBytes(s.bytesRead),
      sent: formatBytes(s.bytesSent),
      rate: formatBytes(Math.round(s.bytesRead / seconds)),
      eta: this.eta(seconds),
    };
  }

  /** Remaining entries at the rate entries have settled so far; unknown until the walk has found them all. */
  private eta(seconds: number): string {
    const { stats, entriesSent, entriesSettled } = this.source;
    if (!stats.scanDone || entriesSettled === 0) return '…';
    return formatSeconds(((entriesSent - entriesSettled) * seconds) / entriesSettled);
  }

  /** Restores the terminal; safe to call more than once. */
  readonly stop = (): void => {
    this.line?.stop();
  };
}
