// A live progress line on a terminal (never under cron: only when stderr is a TTY).
import type cliProgress from 'cli-progress';
import type { SenderStats } from '../agent/sender.js';
import { formatBytes, formatSeconds } from './format.js';

export interface ProgressSource {
  stats: SenderStats;
  entriesSent: number;
  entriesSettled: number;
}

export class Progress {
  private readonly bar: cliProgress.SingleBar;
  private readonly timer: NodeJS.Timeout;
  private readonly started = Date.now();

  /** Loaded only on a terminal: cron runs never pay for it. */
  static async start(source: ProgressSource): Promise<Progress> {
    const { default: bars } = await import('cli-progress');
    return new Progress(source, bars);
  }

  private constructor(
    private readonly source: ProgressSource,
    bars: typeof cliProgress,
  ) {
    this.bar = new bars.SingleBar(
      {
        stream: process.stderr,
        format: '{bar} {percentage}% | {files} files {scanned} | read {read} | sent {sent} | {rate}/s | ETA {eta}',
        barsize: 20,
        hideCursor: true,
        clearOnComplete: true,
      },
      bars.Presets.shades_classic,
    );
    this.bar.start(1, 0, this.payload());
    this.timer = setInterval(() => this.update(), 250);
    // The bar hid the cursor and turned line wrap off: whatever ends lb, the terminal gets them back.
    process.once('exit', this.stop);
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
    this.bar.setTotal(Math.max(this.source.entriesSent, 1));
    this.bar.update(this.source.entriesSettled, this.payload());
  }

  /** Restores the terminal; safe to call more than once. */
  readonly stop = (): void => {
    process.off('exit', this.stop);
    clearInterval(this.timer);
    this.bar.stop();
  };
}
