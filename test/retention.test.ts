// The keep-policy of `lb prune`: restic's `forget --keep-*` semantics on snapshot names, checked on
// chosen calendar corners, on restic's documented examples, and against an independent oracle.
import { describe, expect, it } from 'vitest';
import {
  PolicyError,
  applyPolicy,
  checkPolicy,
  parseCount,
  parseDuration,
  type KeepPolicy,
  type KeepReason,
} from '../src/diff/retention.js';
import { generator } from './helpers.js';

/** 'YYYY-MM-DD HH:MM[:SS]' as lb names a snapshot. */
function at(text: string): string {
  const [date, time] = text.split(' ') as [string, string];
  return `${date.replaceAll('-', '.')}-${time.replaceAll(':', '.')}${time.length === 5 ? '.00' : ''}`;
}

const LONG_AFTER = new Date(2100, 0, 1);

/** The kept names with their reasons; every other name must be removed. */
function kept(names: string[], policy: KeepPolicy, now = LONG_AFTER): Record<string, KeepReason[]> {
  const verdicts = applyPolicy(names, policy, now);
  expect(verdicts.map((v) => v.name)).toEqual([...names].sort().reverse());
  for (const v of verdicts) expect(v.keep).toBe(v.reasons.length > 0);
  return Object.fromEntries(verdicts.filter((v) => v.keep).map((v) => [v.name, v.reasons]));
}

/** Kept names only, as a sorted list, for the tables where reasons do not matter. */
const keptNames = (names: string[], policy: KeepPolicy, now = LONG_AFTER) => Object.keys(kept(names, policy, now)).sort();
const sorted = (texts: string[]) => texts.map(at).sort();

describe('calendar buckets on chosen dates', () => {
  const monthEnds = sorted([
    '2020-01-31 23:59:59', '2020-02-01 00:00', '2020-02-28 12:00', '2020-02-29 08:00',
    '2020-02-29 20:00', '2020-03-01 00:00', '2020-03-31 23:00', '2020-04-30 22:00',
  ]);

  it('daily and monthly across month ends and a leap day keep the newest of each period', () => {
    expect(keptNames(monthEnds, { daily: Infinity })).toEqual(monthEnds.filter((n) => n !== at('2020-02-29 08:00')));
    expect(keptNames(monthEnds, { daily: 3 })).toEqual(sorted(['2020-03-01 00:00', '2020-03-31 23:00', '2020-04-30 22:00']));
    expect(keptNames(monthEnds, { monthly: Infinity })).toEqual(
      sorted(['2020-01-31 23:59:59', '2020-02-29 20:00', '2020-03-31 23:00', '2020-04-30 22:00']),
    );
    expect(keptNames(monthEnds, { monthly: 2 })).toEqual(sorted(['2020-03-31 23:00', '2020-04-30 22:00']));
    expect(keptNames(monthEnds, { last: 3 })).toEqual(sorted(['2020-03-01 00:00', '2020-03-31 23:00', '2020-04-30 22:00']));
  });

  const isoWeeks = sorted([
    '2020-12-28 10:00', '2020-12-31 10:00', '2021-01-01 09:00', '2021-01-03 23:00', // 2020-W53, Monday to Sunday
    '2021-01-04 00:30', // 2021-W01
    '2024-12-29 12:00', // 2024-W52
    '2024-12-30 12:00', '2025-01-05 12:00', // 2025-W01: it starts in calendar year 2024
    '2025-01-06 12:00', // 2025-W02
  ]);

  it('weekly uses ISO weeks: week 53, and a week-year that differs from the calendar year', () => {
    expect(keptNames(isoWeeks, { weekly: Infinity })).toEqual(
      sorted(['2021-01-03 23:00', '2021-01-04 00:30', '2024-12-29 12:00', '2025-01-05 12:00', '2025-01-06 12:00']),
    );
    expect(keptNames(isoWeeks, { weekly: 3 })).toEqual(sorted(['2024-12-29 12:00', '2025-01-05 12:00', '2025-01-06 12:00']));
    // yearly goes by the calendar year, not the ISO week-year.
    expect(keptNames(isoWeeks, { yearly: Infinity })).toEqual(
      sorted(['2020-12-31 10:00', '2021-01-04 00:30', '2024-12-30 12:00', '2025-01-06 12:00']),
    );
  });

  // Europe's 2026 changes: 02:00 jumps to 03:00 on Mar 29; 03:00 falls back to 02:00 on Oct 25. The second pass
  // through 02:xx is named after the first (lb never names a snapshot before an existing one): 02.50.01.
  const dstDays = sorted([
    '2026-03-29 01:10', '2026-03-29 01:50', '2026-03-29 03:05',
    '2026-10-25 01:59', '2026-10-25 02:10', '2026-10-25 02:50', '2026-10-25 02:50:01', '2026-10-25 03:00',
  ]);

  it('hourly: a repeated local hour after a fall-back is one hour; a skipped hour is simply absent', () => {
    expect(keptNames(dstDays, { hourly: Infinity })).toEqual(
      sorted(['2026-03-29 01:50', '2026-03-29 03:05', '2026-10-25 01:59', '2026-10-25 02:50:01', '2026-10-25 03:00']),
    );
    expect(keptNames(dstDays, { hourly: 2 })).toEqual(sorted(['2026-10-25 02:50:01', '2026-10-25 03:00']));
    expect(keptNames(dstDays, { daily: Infinity })).toEqual(sorted(['2026-03-29 03:05', '2026-10-25 03:00']));
    // More count than days with snapshots keeps one per day, nothing more.
    expect(keptNames(dstDays, { daily: 100 })).toEqual(sorted(['2026-03-29 03:05', '2026-10-25 03:00']));
  });

  it('combined rules are OR-ed, each counted on its own, with every rule that keeps a snapshot named', () => {
    expect(kept(dstDays, { last: 2, hourly: 3, daily: Infinity })).toEqual({
      [at('2026-10-25 03:00')]: ['newest', 'last', 'hourly', 'daily'],
      [at('2026-10-25 02:50:01')]: ['last', 'hourly'],
      [at('2026-10-25 01:59')]: ['hourly'],
      [at('2026-03-29 03:05')]: ['daily'],
    });
    expect(kept(monthEnds, { daily: 2, monthly: Infinity, yearly: 1 })).toEqual({
      [at('2020-04-30 22:00')]: ['newest', 'daily', 'monthly', 'yearly'],
      [at('2020-03-31 23:00')]: ['daily', 'monthly'],
      [at('2020-02-29 20:00')]: ['monthly'],
      [at('2020-01-31 23:59:59')]: ['monthly'],
    });
  });

  it('rules of zero keep nothing: only the newest stays', () => {
    expect(kept(monthEnds, { daily: 0 })).toEqual({ [at('2020-04-30 22:00')]: ['newest'] });
    expect(kept(monthEnds, { last: 0, weekly: 0, within: { years: 0, months: 0, days: 0, hours: 0 } })).toEqual({
      [at('2020-04-30 22:00')]: ['newest'],
    });
  });
});

describe('--keep-within', () => {
  const zero = { years: 0, months: 0, days: 0, hours: 0 };
  /** What --keep-within keeps of `names` (the newest, `anchor`, included), by name. */
  const within = (anchor: string, names: string[], duration: Partial<typeof zero>) =>
    keptNames([at(anchor), ...names.map(at)], { within: { ...zero, ...duration } }).filter((n) => n !== at(anchor));

  it('subtracts months as restic does (AddDate): Mar 31 minus 1m is "Feb 31", Mar 3, or Mar 2 in a leap year', () => {
    expect(within('2021-03-31 12:00', ['2021-03-03 12:00', '2021-03-03 12:00:01', '2021-02-28 23:00'], { months: 1 })).toEqual([
      at('2021-03-03 12:00:01'),
    ]);
    expect(within('2020-03-31 12:00', ['2020-03-02 12:00', '2020-03-02 12:00:01', '2020-02-29 23:00'], { months: 1 })).toEqual([
      at('2020-03-02 12:00:01'),
    ]);
    expect(within('2026-01-15 00:00', ['2025-11-15 00:00', '2025-11-15 00:00:01'], { months: 2 })).toEqual([at('2025-11-15 00:00:01')]);
  });

  it('Feb 29 minus 1y is Mar 1; all four parts together; hours across midnight and a month end', () => {
    expect(within('2024-02-29 12:00', ['2023-02-28 23:59:59', '2023-03-01 12:00', '2023-03-01 12:00:01'], { years: 1 })).toEqual([
      at('2023-03-01 12:00:01'),
    ]);
    const all = { years: 1, months: 2, days: 3, hours: 4 };
    expect(within('2026-03-31 12:00', ['2025-01-28 08:00', '2025-01-28 08:00:01'], all)).toEqual([at('2025-01-28 08:00:01')]);
    expect(within('2026-03-01 02:00', ['2026-02-27 23:00', '2026-02-27 23:00:01'], { days: 1, hours: 3 })).toEqual([
      at('2026-02-27 23:00:01'),
    ]);
  });

  it('counts hours on the wall clock, also across a DST change', () => {
    // 03:00 on Oct 25 minus 4h is 23:00 the day before by the names (restic's elapsed hours would give 00:00).
    expect(within('2026-10-25 03:00', ['2026-10-24 23:00', '2026-10-24 23:30'], { hours: 4 })).toEqual([at('2026-10-24 23:30')]);
  });

  it('a duration beyond the calendar keeps everything', () => {
    const ancient = ['0001-01-01 00:00', '1970-01-01 00:00'];
    expect(within('2026-01-01 00:00', ancient, { years: 900_000 })).toEqual(sorted(ancient));
  });
});

describe('the newest snapshot and snapshots in the future', () => {
  const now = new Date(2026, 5, 1, 12, 0, 0);

  it('a future snapshot is kept, takes no count, and does not anchor --keep-within', () => {
    const names = sorted(['2026-05-31 12:00', '2026-06-01 12:00', '2026-06-01 12:00:01', '2030-01-01 00:00']);
    expect(kept(names, { last: 1 }, now)).toEqual({
      [at('2030-01-01 00:00')]: ['newest', 'future'],
      [at('2026-06-01 12:00:01')]: ['future'],
      [at('2026-06-01 12:00')]: ['last'], // dated at `now` exactly: not in the future
    });
    expect(kept(names, { within: { years: 0, months: 0, days: 1, hours: 0 } }, now)).toEqual({
      [at('2030-01-01 00:00')]: ['newest', 'future'],
      [at('2026-06-01 12:00:01')]: ['future'],
      [at('2026-06-01 12:00')]: ['within'],
    });
  });

  it('when every snapshot is in the future all are kept, and no snapshots give no verdicts', () => {
    const policy = { last: 1, within: { years: 1, months: 0, days: 0, hours: 0 } };
    expect(kept(sorted(['2027-01-01 00:00', '2028-01-01 00:00']), policy, now)).toEqual({
      [at('2028-01-01 00:00')]: ['newest', 'future'],
      [at('2027-01-01 00:00')]: ['future'],
    });
    expect(applyPolicy([], { last: 1 }, now)).toEqual([]);
  });
});

describe("restic's documented examples (doc/060_forget.rst, \"Removing snapshots according to a policy\")", () => {
  it('forget --keep-last 1 keeps the later of two snapshots a minute apart', () => {
    expect(kept(sorted(['2017-02-21 10:48:33', '2017-02-21 10:49:18']), { last: 1 })).toEqual({
      [at('2017-02-21 10:49:18')]: ['newest', 'last'],
    });
  });

  it('one backup every Sunday for 12 weeks: --keep-daily 4 keeps the last four Sundays', () => {
    const sundays = ['09-01', '09-08', '09-15', '09-22', '09-29', '10-06', '10-13', '10-20', '10-27', '11-03', '11-10', '11-17'];
    const names = sundays.map((day) => at(`2019-${day} 11:00`));
    expect(kept(names, { daily: 4 })).toEqual({
      [at('2019-11-17 11:00')]: ['newest', 'daily'],
      [at('2019-11-10 11:00')]: ['daily'],
      [at('2019-11-03 11:00')]: ['daily'],
      [at('2019-10-27 11:00')]: ['daily'],
    });
  });

  it('a backup every day for 100 years: --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-yearly 75', () => {
    // restic's prose: the 7 newest dailies, 4 more last-days-of-the-week (the dailies include one), 12 or 11
    // last-days-of-the-month and 75 or 74 last-days-of-the-year, fewer where they coincide with ones kept already.
    // Here the newest day is Sunday 2026-05-24: 4 more Sundays; May's monthly is a daily (11 more); 2026's yearly
    // is a daily and 2025's (Dec 31) a monthly (73 more).
    const names: string[] = [];
    for (let day = Date.UTC(1926, 4, 25); day <= Date.UTC(2026, 4, 24); day += 86_400_000) {
      names.push(at(`${new Date(day).toISOString().slice(0, 10)} 11:00`));
    }
    expect(names).toHaveLength(36_525);
    const expected: Record<string, KeepReason[]> = {};
    const add = (date: string, reason: KeepReason) => (expected[at(`${date} 11:00`)] ??= []).push(reason);
    add('2026-05-24', 'newest');
    for (const day of ['24', '23', '22', '21', '20', '19', '18']) add(`2026-05-${day}`, 'daily');
    for (const date of ['2026-05-24', '2026-05-17', '2026-05-10', '2026-05-03', '2026-04-26']) add(date, 'weekly');
    add('2026-05-24', 'monthly');
    for (const month of ['04-30', '03-31', '02-28', '01-31']) add(`2026-${month}`, 'monthly');
    for (const month of ['12-31', '11-30', '10-31', '09-30', '08-31', '07-31', '06-30']) add(`2025-${month}`, 'monthly');
    add('2026-05-24', 'yearly');
    for (let year = 2025; year >= 1952; year--) add(`${year}-12-31`, 'yearly');
    const result = kept(names, { daily: 7, weekly: 5, monthly: 12, yearly: 75 });
    expect(result).toEqual(expected);
    expect(Object.keys(result)).toHaveLength(7 + 4 + 11 + 73);
  });
});

describe('parsing --keep-* values', () => {
  it('reads counts and durations', () => {
    expect(parseCount('0', '--keep-daily')).toBe(0);
    expect(parseCount('007', '--keep-daily')).toBe(7);
    expect(parseCount('unlimited', '--keep-yearly')).toBe(Infinity);
    expect(parseDuration('1y2m3d4h', '--keep-within')).toEqual({ years: 1, months: 2, days: 3, hours: 4 });
    expect(parseDuration('7d', '--keep-within')).toEqual({ years: 0, months: 0, days: 7, hours: 0 });
    expect(parseDuration('2y12h', '--keep-within')).toEqual({ years: 2, months: 0, days: 0, hours: 12 });
    expect(parseDuration('0h', '--keep-within')).toEqual({ years: 0, months: 0, days: 0, hours: 0 });
  });

  it('refuses bad ones in one line naming the option', () => {
    for (const bad of ['-3', '', '1.5', '+2', ' 3', 'Unlimited', 'infinity', '1e3', '0x10', '99999999999999999999', '3\nrm']) {
      expect(() => parseCount(bad, '--keep-daily')).toThrow(PolicyError);
      const message = `--keep-daily wants a count (0 or more) or "unlimited", not ${JSON.stringify(bad)}`;
      expect(() => parseCount(bad, '--keep-daily')).toThrow(message);
    }
    for (const bad of ['', '1w', '3d1y', '1d1d', 'd', '1', '-1d', '1.5d', '1D', ' 1d', 'unlimited', '99999999999999999999h', '1d\n']) {
      expect(() => parseDuration(bad, '--keep-within')).toThrow(PolicyError);
      let message = '';
      try {
        parseDuration(bad, '--keep-within');
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/^--keep-within wants a duration .*1y2m3d4h.*, not "/);
      expect(message).not.toContain('\n');
    }
  });

  it('refuses a policy that names no rule, and counts that are not counts', () => {
    expect(() => checkPolicy({})).toThrow(/names no rule/);
    expect(() => applyPolicy([at('2026-01-01 00:00')], {}, LONG_AFTER)).toThrow(PolicyError);
    expect(() => checkPolicy({ daily: -1 })).toThrow('--keep-daily wants a count (0 or more) or "unlimited", not -1');
    expect(() => checkPolicy({ last: 1.5 })).toThrow(PolicyError);
    expect(() => checkPolicy({ hourly: 0 })).not.toThrow();
  });
});

describe('random snapshot sets against an independent oracle', () => {
  const BUCKET_RULES = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
  // Names and milliseconds on a zone-less time line, through ISO 8601 text.
  const nameAt = (ms: number) => at(new Date(ms).toISOString().slice(0, 19).replace('T', ' '));
  const msOf = (name: string) => Date.parse(name.replace(/^(\d+)\.(\d+)\.(\d+)-(\d+)\.(\d+)\.(\d+)$/, '$1-$2-$3T$4:$5:$6Z'));

  /** ISO week by the ordinal-date formula, with week numbers and week-years, where the module names a week by its Monday. */
  function isoWeekOf(name: string): string {
    const [y, m, d] = name.slice(0, 10).split('.').map(Number) as [number, number, number];
    const weekday = (y: number, m: number, d: number) => ((new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7) + 1;
    const leap = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
    const weeksIn = (y: number) => (weekday(y, 1, 1) === 4 || (leap(y) && weekday(y, 1, 1) === 3) ? 53 : 52);
    const ordinal = (Date.UTC(y, m - 1, d) - Date.UTC(y, 0, 1)) / 86_400_000 + 1;
    const week = Math.floor((ordinal - weekday(y, m, d) + 10) / 7);
    if (week < 1) return `${y - 1}-${weeksIn(y - 1)}`;
    if (week > weeksIn(y)) return `${y + 1}-1`;
    return `${y}-${week}`;
  }

  const periodOf: Record<(typeof BUCKET_RULES)[number], (name: string, index: number) => string> = {
    last: (_, index) => String(index),
    hourly: (name) => name.slice(0, 13),
    daily: (name) => name.slice(0, 10),
    weekly: isoWeekOf,
    monthly: (name) => name.slice(0, 7),
    yearly: (name) => name.slice(0, 4),
  };

  /** What one rule keeps of the past names (newest first): the newest of each of its first `count` periods. */
  function oracle(rule: keyof KeepPolicy, policy: KeepPolicy, past: string[]): Set<string> {
    if (rule === 'within') {
      const w = policy.within!;
      const [y, mo, d, h, mi, s] = past[0]!.split(/[.-]/).map(Number) as number[];
      const cutoff = Date.UTC(y! - w.years, mo! - 1 - w.months, d! - w.days, h! - w.hours, mi!, s!);
      return new Set(past.filter((name) => msOf(name) > cutoff));
    }
    const newestOfPeriod = new Map<string, string>();
    past.forEach((name, index) => {
      const period = periodOf[rule](name, index);
      if (!newestOfPeriod.has(period)) newestOfPeriod.set(period, name);
    });
    return new Set([...newestOfPeriod.values()].slice(0, policy[rule]!));
  }

  it('every rule keeps what the oracle says, the combination keeps the union, the newest and the future stay', () => {
    // How often each situation came up, so the rounds cannot pass by never meeting it.
    const seen: Record<string, number> = { future: 0, removed: 0 };
    for (const rule of [...BUCKET_RULES, 'within']) seen[rule] = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const random = generator(seed);
      const pick = <T>(options: readonly T[]): T => options[Math.floor(random() * options.length)]!;
      // Bursts of snapshots minutes apart, separated by gaps from an hour to a few weeks, over New Year 2020/21.
      const names = new Set<string>();
      let ms = Date.UTC(2020, 10, 1) + Math.floor(random() * 86_400) * 1000;
      for (let i = Math.floor(random() * 60); i >= 0; i--) {
        ms += pick([60, 3_600, 86_400, 7 * 86_400]) * 1000 * (1 + Math.floor(random() * 4)) + Math.floor(random() * 3_600) * 1000;
        names.add(nameAt(ms));
      }
      const all = [...names].sort().reverse();
      const nowName = pick([all[0]!, all[Math.floor(all.length / 2)]!, all[all.length - 1]!]).slice(0, 11) + '12.00.00';
      const [ny, nmo, nd] = nowName.split(/[.-]/).map(Number) as [number, number, number];
      const now = new Date(ny, nmo - 1, nd, 12, 0, 0);
      const policy: KeepPolicy = {};
      for (const rule of BUCKET_RULES) if (random() < 0.4) policy[rule] = pick([0, 1, 2, 3, 5, 10, Infinity]);
      if (random() < 0.3) {
        policy.within = { years: pick([0, 1]), months: pick([0, 1, 2]), days: pick([0, 3, 10]), hours: pick([0, 5, 30]) };
      }
      if (Object.keys(policy).length === 0) policy.last = pick([0, 1, 4]);

      const context = `seed ${seed}, policy ${JSON.stringify(policy)}, now ${nowName}`;
      const verdicts = applyPolicy(all, policy, now);
      const keptSet = new Set(verdicts.filter((v) => v.keep).map((v) => v.name));
      const past = all.filter((name) => name <= nowName);
      expect(keptSet.has(all[0]!), context).toBe(true);
      for (const name of all.filter((name) => name > nowName)) expect(keptSet.has(name), context).toBe(true);

      const union = new Set([all[0]!, ...all.filter((name) => name > nowName)]);
      for (const rule of Object.keys(policy) as (keyof KeepPolicy)[]) {
        const expected = past.length === 0 ? new Set<string>() : oracle(rule, policy, past);
        const byRule = verdicts.filter((v) => v.reasons.includes(rule)).map((v) => v.name);
        expect(new Set(byRule), `${context}, rule ${rule}`).toEqual(expected);
        if (byRule.length > 1) seen[rule]!++;
        const alone = applyPolicy(all, { [rule]: policy[rule] }, now).filter((v) => v.keep).map((v) => v.name);
        for (const name of alone) union.add(name);
      }
      expect(keptSet, context).toEqual(union);
      if (past.length < all.length) seen.future!++;
      if (keptSet.size < all.length) seen.removed!++;
    }
    for (const [situation, count] of Object.entries(seen)) expect(count, situation).toBeGreaterThan(10);
  });
});
