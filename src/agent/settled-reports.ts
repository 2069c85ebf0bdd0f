// How far entries are settled, told to the source so that its window of
// unsettled entries stays open. One message per file would cost a write each:
// it is told after every SETTLED_EVERY entries, when nothing is left waiting,
// or when SETTLED_MS have passed (so progress on a terminal moves smoothly).
const SETTLED_EVERY = 1024;
const SETTLED_MS = 250;

export class SettledReports {
  private reported = 0;
  private reportedAt = 0;

  constructor(private readonly tell: (upTo: number) => void) {}

  /** Entries before `upTo` are settled; `idle` when no entry is left waiting. */
  settled(upTo: number, idle: boolean): void {
    const unreported = upTo - this.reported;
    if (unreported > 0 && (unreported >= SETTLED_EVERY || idle || Date.now() - this.reportedAt > SETTLED_MS)) {
      this.reported = upTo;
      this.reportedAt = Date.now();
      this.tell(upTo);
    }
  }
}
