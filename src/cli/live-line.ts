// The live progress line on a terminal (cli-progress), for `lb backup` and `lb
// dedupe`, and the way every other line reaches the terminal while it is shown:
// above it, where it stays. cli-progress's SingleBar restores, when it stops,
// the cursor position saved when it started, so the final summary was written
// over every warning printed during the run; its MultiBar (with one bar here)
// keeps to the line it draws.
import { clearLine, cursorTo } from 'node:readline';
import type cliProgress from 'cli-progress';

let shown: LiveLine | null = null;

/** What the line shows, asked for at every redraw. */
export interface LineState {
  value: number;
  total: number;
  payload: Record<string, string | number>;
}

/** Prints one line on `stream`; while a live line is shown, above it. */
export function printLine(stream: NodeJS.WriteStream, line: string): void {
  if (shown) shown.printAbove(stream, line);
  else stream.write(line + '\n');
}

export class LiveLine {
  private readonly bars: cliProgress.MultiBar;
  private readonly bar: cliProgress.SingleBar;

  /** Loaded only on a terminal: cron runs never pay for it. */
  static async start(options: cliProgress.Options, state: () => LineState, preset?: keyof typeof cliProgress.Presets): Promise<LiveLine> {
    const { default: bars } = await import('cli-progress');
    return new LiveLine(bars, options, state, preset && bars.Presets[preset]);
  }

  private constructor(bars: typeof cliProgress, options: cliProgress.Options, state: () => LineState, preset?: cliProgress.Preset) {
    // forceRedraw: after a line printed above, the bar is drawn again even though its text did not change.
    this.bars = new bars.MultiBar({ stream: process.stderr, hideCursor: true, clearOnComplete: true, forceRedraw: true, ...options }, preset);
    const first = state();
    this.bar = this.bars.create(first.total, first.value, first.payload);
    // Asked at each redraw (10 a second, whenever the event loop gets to it), so what shows is never stale.
    this.bars.on('update-pre', () => {
      const now = state();
      this.bar.setTotal(now.total);
      this.bar.update(now.value, now.payload);
    });
    shown = this;
    this.bars.update(); // drawn now, then 10 times a second
    // The bar hid the cursor and turned line wrap off: whatever ends lb, the terminal gets them back.
    process.once('exit', this.stop);
  }

  /** Clear the bar's line, print there, and draw the bar again on the next one. */
  printAbove(stream: NodeJS.WriteStream, line: string): void {
    cursorTo(process.stderr, 0);
    clearLine(process.stderr, 0);
    stream.write(line + '\n');
    this.bars.update();
  }

  /** Clears the line; the cursor stays at its start, below everything printed meanwhile. Safe to call more than once. */
  readonly stop = (): void => {
    process.off('exit', this.stop);
    if (shown === this) shown = null;
    this.bars.stop();
  };
}
