// A live progress line on a terminal (never under cron: only when stderr is a TTY).
import type { SenderStats } from '../agent/sender.js';
import { formatBytes, formatSeconds } from './format.js';
import { LiveLine } from './live-line.js';

export interface ProgressSource {
  stats: SenderStats;
  entriesSent: number;
  entriesSettled: number;
}

export class Progress {
  private readonly timer: NodeJS.Timeout;
  private readonly started = Date.now();

  static async start(source: ProgressSource): Promise<Progress> {
    const format = '{bar} {percentage}% | {files} files {scanned} | read {read} | sent {sent} | {rate}/s | ETA {eta}';
    return new Progress(source, await LiveLine.start({ format, barsize: 20 }, 'shades_classic'));
  }

  private constructor(
    private readonly source: ProgressSource,
    private readonly bar: LiveLine,
  ) {
    this.update();
    this.timer = setInterval(() => this.update(), 250);
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

  private update(): void {
    // Until the walk ends the total is a lower bound; the bar shows entries settled out of entries found.
    this.bar.update(this.source.entriesSettled, Math.max(this.source.entriesSent, 1), this.payload());
  }

  stop(): void {
    clearInterval(this.timer);
    this.bar.stop();
  }
}
