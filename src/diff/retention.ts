// Which snapshots a keep-policy keeps, with restic's `forget --keep-*` semantics so users can carry
// their policies over: rules are OR'ed and each is counted on its own over the snapshots newest first.
// Pure: it sees only snapshot names (the local wall-clock time the run started) and `now`.
//
// Everything is computed on the name's fields, never through a time zone. Two consequences, on purpose:
// - A DST fall-back repeats a local hour (02:00-02:59 twice in Europe). Snapshots made in both passes
//   have the same local hour, so --keep-hourly sees them as one hour and keeps only the newer name, as
//   restic's local-time buckets do (lb names the second pass after the first, so names stay in order).
//   A spring-forward hour has no snapshots at all. Days, weeks, months and years are unaffected.
//   During the second pass, a snapshot named in the first pass later than `now` counts as in the
//   future: it is kept, which is the safe side.
// - --keep-within's hours are wall-clock hours (see `cutoffOf`), which differs from restic's elapsed
//   hours by one hour only when the span crosses a DST change.

/** Counts per rule; Infinity for `unlimited`; a rule not given is absent. */
export interface KeepPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  within?: Duration;
}

export interface Duration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

/** A bad --keep-* value or an empty policy; the message is one line naming the option. */
export class PolicyError extends Error {}

export type KeepReason = 'newest' | 'future' | 'last' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly' | 'within';

export interface Verdict {
  name: string;
  keep: boolean;
  reasons: KeepReason[];
}

const DURATION = /^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)d)?(?:(\d+)h)?$/;

/** `--keep-within` text: `1y2m3d4h`, any subset in that order, each a non-negative integer; at least one part. */
export function parseDuration(text: string, option: string): Duration {
  const numbers = (text === '' ? null : DURATION.exec(text))?.slice(1).map((part) => Number(part ?? 0));
  if (numbers === undefined || !numbers.every((n) => Number.isSafeInteger(n))) {
    const wanted = 'a duration of years, months, days and hours in that order, such as 1y2m3d4h or 7d';
    throw new PolicyError(`${option} wants ${wanted}, not ${JSON.stringify(text)}`);
  }
  const [years, months, days, hours] = numbers as [number, number, number, number];
  return { years, months, days, hours };
}

/** A `--keep-*` count: a non-negative integer or `unlimited`. */
export function parseCount(text: string, option: string): number {
  if (text === 'unlimited') return Infinity;
  const count = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(count)) {
    throw new PolicyError(`${option} wants a count (0 or more) or "unlimited", not ${JSON.stringify(text)}`);
  }
  return count;
}

const BUCKET_RULES = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
type BucketRule = (typeof BUCKET_RULES)[number];

/**
 * Throws PolicyError when no rule is given: an empty policy would remove everything. A policy of zeros
 * only (`--keep-daily 0`) is allowed, unlike restic, which treats it as empty and removes nothing: it
 * names a rule, and what it removes is everything but the newest snapshot (always kept) and any dated
 * in the future.
 */
export function checkPolicy(policy: KeepPolicy): void {
  const named = [...BUCKET_RULES, 'within' as const].filter((rule) => policy[rule] !== undefined);
  if (named.length === 0) {
    const options = [...BUCKET_RULES, 'within'].map((rule) => `--keep-${rule}`).join(', ');
    throw new PolicyError(`the policy names no rule: give one or more of ${options}`);
  }
  for (const rule of BUCKET_RULES) {
    const count = policy[rule];
    if (count !== undefined && !(count === Infinity || (Number.isSafeInteger(count) && count >= 0))) {
      throw new PolicyError(`--keep-${rule} wants a count (0 or more) or "unlimited", not ${count}`);
    }
  }
}

/** A snapshot name's fields: year, month (1-12), day, hour, minute, second. */
type Fields = [number, number, number, number, number, number];

const SNAPSHOT_NAME = /^(\d{4})\.(\d{2})\.(\d{2})-(\d{2})\.(\d{2})\.(\d{2})$/;

function fieldsOf(name: string): Fields {
  const m = SNAPSHOT_NAME.exec(name);
  if (m === null) throw new Error(`not a snapshot name: ${JSON.stringify(name)}`);
  return m.slice(1).map(Number) as Fields;
}

/** `now` as a snapshot name would spell it: local wall-clock time, the shape that sorts like time. */
function nameOf(now: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${now.getFullYear()}.${p(now.getMonth() + 1)}.${p(now.getDate())}-${p(now.getHours())}.${p(now.getMinutes())}.${p(now.getSeconds())}`;
}

/**
 * Milliseconds of a wall-clock time on a zone-less (UTC) time line, with calendar overflow normalised:
 * month 0 is December of the year before, day 31 of a 28-day month is the 3rd of the next. That is Go's
 * `time.Date` normalisation, which restic's AddDate relies on. setUTCFullYear, not Date.UTC, which
 * would read years 0-99 as 1900-1999. NaN beyond the Date range (±270,000 years).
 */
function wallClock(year: number, month: number, day: number, hour: number, minute: number, second: number): number {
  const time = new Date(0);
  time.setUTCFullYear(year, month - 1, day);
  return time.setUTCHours(hour, minute, second, 0);
}

/**
 * --keep-within keeps what is newer than this: the anchor minus the duration, restic's
 * `AddDate(-years, -months, -days)` then minus the hours. Years, months and days subtract from the
 * fields and normalise once (Mar 31 minus 1m is "Feb 31", that is Mar 3, or Mar 2 in a leap year; Feb 29
 * minus 1y is Mar 1), so the day is not clamped to the month's end. Hours are wall-clock hours here.
 */
function cutoffOf([year, month, day, hour, minute, second]: Fields, within: Duration): number {
  const { years, months, days, hours } = within;
  const shifted = new Date(wallClock(year - years, month - months, day - days, hour, minute, second));
  const cutoff = shifted.setUTCHours(shifted.getUTCHours() - hours);
  // So far back it leaves the Date range: every snapshot is within.
  return Number.isNaN(cutoff) ? -Infinity : cutoff;
}

/**
 * The ISO 8601 week, named by its Monday (days since the epoch). ISO weeks run Monday to Sunday, so this
 * splits time exactly as (ISO week-year, week number) does, week 53 and weeks across New Year included,
 * without computing either.
 */
function mondayOf([year, month, day]: Fields): number {
  const midnight = new Date(wallClock(year, month, day, 0, 0, 0));
  const sinceMonday = (midnight.getUTCDay() + 6) % 7;
  return midnight.getTime() / 86_400_000 - sinceMonday;
}

/** The calendar period a snapshot falls in for each bucket rule; two snapshots share a bucket when equal. */
const BUCKET_OF: Record<Exclude<BucketRule, 'last'>, (f: Fields) => number> = {
  hourly: ([y, mo, d, h]) => ((y * 100 + mo) * 100 + d) * 100 + h,
  daily: ([y, mo, d]) => (y * 100 + mo) * 100 + d,
  weekly: mondayOf,
  monthly: ([y, mo]) => y * 100 + mo,
  yearly: ([y]) => y,
};

/**
 * `names`: snapshot names `YYYY.MM.DD-HH.MM.SS` (local time, as lb names them), any order, unique.
 * Returns one verdict per name, newest first. `now` decides what is "in the future".
 *
 * Snapshots dated after `now` (made while the clock was wrong) are kept and set aside before the
 * rules count. restic counts them like any other; here a mis-dated snapshot must not make a rule keep
 * one real snapshot fewer. --keep-within is measured from the newest snapshot not in the future, as
 * restic does. restic 0.17 and later also keep the oldest snapshot when a counted rule has counts
 * left over; lb does not: a rule keeps the newest of each of its last N periods, nothing more.
 */
export function applyPolicy(names: string[], policy: KeepPolicy, now: Date): Verdict[] {
  checkPolicy(policy);
  const present = nameOf(now);
  // The names' fixed-width shape sorts like time.
  const verdicts: Verdict[] = [...names].sort().reverse().map((name) => ({ name, keep: false, reasons: [] }));
  const keep = (verdict: Verdict, reason: KeepReason) => {
    verdict.keep = true;
    verdict.reasons.push(reason);
  };
  if (verdicts[0] !== undefined) keep(verdicts[0], 'newest');
  const counted: { verdict: Verdict; fields: Fields }[] = [];
  for (const verdict of verdicts) {
    const fields = fieldsOf(verdict.name);
    if (verdict.name > present) keep(verdict, 'future');
    else counted.push({ verdict, fields });
  }

  for (const rule of BUCKET_RULES) {
    let left = policy[rule];
    if (left === undefined) continue;
    // A snapshot is kept when its period differs from that of the last one this rule kept: the newest of each period.
    let lastKept: number | undefined;
    for (const [index, { verdict, fields }] of counted.entries()) {
      if (left <= 0) break;
      const bucket = rule === 'last' ? index : BUCKET_OF[rule](fields);
      if (bucket === lastKept) continue;
      keep(verdict, rule);
      lastKept = bucket;
      left--;
    }
  }

  if (policy.within !== undefined && counted[0] !== undefined) {
    const cutoff = cutoffOf(counted[0].fields, policy.within);
    for (const { verdict, fields } of counted) {
      if (wallClock(...fields) <= cutoff) break;
      keep(verdict, 'within');
    }
  }
  return verdicts;
}
