// The prune role: `lb prune host:REPO --keep-…` asks the agent next to the
// repository to apply the policy there (under that repository's lock, by that
// machine's clock) and answers with what it kept, removed and freed. Counts are
// integers or "unlimited"; every field of the reply is checked before lb prints it.
import type { KeepPolicy, KeepReason } from '../diff/retention.js';
import type { PruneOutcome, PruneVerdict } from '../repo/prune.js';
import { ProtocolError } from './frames.js';
import { bool, fail, int, obj, optionalSeries, snapshotName, str } from './validate.js';

export interface PruneRequest {
  t: 'prune';
  version: number;
  repository: string;
  policy: KeepPolicy;
  dryRun: boolean;
  /** --series: that series alone; absent, each series and the top level, each on its own. */
  series?: string;
}

export type PruneReply = { t: 'pruned'; outcome: PruneOutcome } | { t: 'error'; message: string; usage: boolean };

const COUNT_RULES = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const;
const REASONS: readonly string[] = ['newest', 'future', 'last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly', 'within', 'latest'];
const MAX_SNAPSHOTS = 1_000_000;
const MAX_COUNT = 1_000_000_000;

function encodePolicy(policy: KeepPolicy): object {
  const wire: Record<string, unknown> = {};
  for (const rule of COUNT_RULES) {
    const count = policy[rule];
    if (count !== undefined) wire[rule] = count === Infinity ? 'unlimited' : count;
  }
  if (policy.within) wire.within = policy.within;
  return wire;
}

function decodePolicy(raw: unknown): KeepPolicy {
  const p = obj(raw, 'keep policy');
  const policy: KeepPolicy = {};
  for (const rule of COUNT_RULES) {
    const count = p[rule];
    if (count !== undefined) policy[rule] = count === 'unlimited' ? Infinity : int(count, 'keep count', MAX_COUNT);
  }
  if (p.within !== undefined) {
    const w = obj(p.within, 'keep duration');
    policy.within = { years: int(w.years, 'duration', 10_000), months: int(w.months, 'duration', 120_000), days: int(w.days, 'duration', 3_650_000), hours: int(w.hours, 'duration', 87_600_000) };
  }
  return policy;
}

export function encodePruneRequest(request: PruneRequest): object {
  return { ...request, policy: encodePolicy(request.policy) };
}

export function decodePruneRequest(raw: unknown, version: number): PruneRequest {
  const m = obj(raw, 'message');
  if (m.t !== 'prune') fail('prune request');
  const asked = int(m.version, 'version');
  if (asked !== version) throw new ProtocolError(`lb speaks protocol ${asked}, this agent speaks ${version}`);
  return {
    t: 'prune',
    version: asked,
    repository: str(m.repository, 'repository path'),
    policy: decodePolicy(m.policy),
    dryRun: bool(m.dryRun, 'dry-run option'),
    ...optionalSeries(m.series),
  };
}

/** Removed snapshots as `NAME` or `SERIES/NAME`; each is checked against the verdicts after. */
function labels(v: unknown): string[] {
  if (!Array.isArray(v) || v.length > MAX_SNAPSHOTS) fail('removed snapshots');
  return v.map((label) => {
    const text = str(label, 'removed snapshot', 100);
    const slash = text.lastIndexOf('/');
    if (slash >= 0) optionalSeries(text.slice(0, slash));
    snapshotName(text.slice(slash + 1));
    return text;
  });
}

export function encodePruneReply(reply: PruneReply): object {
  return reply;
}


function decodeVerdict(raw: unknown): PruneVerdict {
  const v = obj(raw, 'verdict');
  if (!Array.isArray(v.reasons) || v.reasons.length > REASONS.length) fail('keep reasons');
  const reasons = v.reasons.map((r) => (REASONS.includes(r as string) ? (r as KeepReason | 'latest') : fail('keep reason')));
  return { name: snapshotName(v.name), keep: bool(v.keep, 'verdict'), reasons, ...optionalSeries(v.series) };
}

export function decodePruneReply(raw: unknown): PruneReply {
  const m = obj(raw, 'message');
  if (m.t === 'error') return { t: 'error', message: str(m.message, 'error', 65536), usage: m.usage === true };
  if (m.t !== 'pruned') fail('prune reply');
  const o = obj(m.outcome, 'prune outcome');
  if (!Array.isArray(o.verdicts) || o.verdicts.length > MAX_SNAPSHOTS) fail('verdicts');
  const outcome: PruneOutcome = {
    verdicts: o.verdicts.map(decodeVerdict),
    removed: labels(o.removed),
    objectsRemoved: int(o.objectsRemoved, 'count'),
    bytesFreed: int(o.bytesFreed, 'count'),
    dryRun: bool(o.dryRun, 'dry-run flag'),
  };
  // Only a dry run predicts what it would free.
  if (o.predicted !== undefined) {
    const predicted = obj(o.predicted, 'prediction');
    outcome.predicted = { objects: int(predicted.objects, 'count'), bytes: int(predicted.bytes, 'count') };
  }
  if ((outcome.predicted !== undefined) !== outcome.dryRun) fail('prune outcome');
  // What it says it removed must be what its verdicts say goes.
  const going = outcome.verdicts.filter((v) => !v.keep).map((v) => (v.series === undefined ? v.name : `${v.series}/${v.name}`));
  if (going.length !== outcome.removed.length || going.some((name, i) => name !== outcome.removed[i])) fail('list of removed snapshots');
  return { t: 'pruned', outcome };
}
