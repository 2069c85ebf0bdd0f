// TEMPORARY STUB (not committed): replaced by helper's module.
export type RuleKind = 'include' | 'exclude';
export interface RuleSource { kind: RuleKind; pattern: Buffer }
export class PatternError extends Error {}
export class FilterRules {
  private constructor(private readonly rules: { exclude: boolean; name: string; dir: boolean }[]) {}
  static compile(sources: RuleSource[]): FilterRules {
    return new FilterRules(sources.map((s) => { const t = s.pattern.toString('latin1'); return { exclude: s.kind === 'exclude', name: t.replace(/\/$/, ''), dir: t.endsWith('/') }; }));
  }
  get size(): number { return this.rules.length; }
  excluded(path: Buffer, isDirectory: boolean): boolean {
    const p = path.toString('latin1');
    const base = p.slice(p.lastIndexOf('/') + 1);
    for (const r of this.rules) if ((!r.dir || isDirectory) && r.name === base) return r.exclude;
    return false;
  }
}
export function rulesFromFile(bytes: Buffer, kind: RuleKind): RuleSource[] {
  return bytes.toString('latin1').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => ({ kind, pattern: Buffer.from(l, 'latin1') }));
}
