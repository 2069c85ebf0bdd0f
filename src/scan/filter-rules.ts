// rsync's include/exclude rules (rsync(1) "INCLUDE/EXCLUDE PATTERN RULES"; exclude.c, lib/wildmatch.c) on raw byte names.
// Hand-written: src/scan/ is bundled into the agent (dist/agent.cjs), which must stay Node built-ins only, so no npm glob
// library can compile the patterns. Those libraries (picomatch, minimatch) implement bash's globs anyway ("**" only as a
// whole name, braces, extglobs, dotfile rules, "!" negation), not rsync's wildmatch and its first-match rule list.
import { isWildcard, literalTokens, PatternProblem, regexSource, wildcardTokens, type Token } from './wildmatch.js';

export type RuleKind = 'include' | 'exclude';
/** One rule as the user gave it: the text of an --include/--exclude option or a line of an --exclude-from file, raw bytes. */
export interface RuleSource {
  kind: RuleKind;
  pattern: Buffer;
}
export class PatternError extends Error {}

const SLASH = 0x2f;
/** rsync discards a longer pattern (MAXPATHLEN). */
const MAX_PATTERN = 4095;

/**
 * One rule, compiled. Every test reads the path as latin1 text with a '/' put in front
 * ("/a/b"), so "at the start or after a '/'" is simply "after a '/'", as rsync's
 * wildmatch_array sees a "**" pattern's path.
 */
type Rule = { exclude: boolean; dirOnly: boolean } & (
  | {
      /** A pattern without wildcards, '/' in front: the path equals it (anchored) or ends with it. */
      literal: string;
      anchored: boolean;
    }
  | {
      literal: null;
      /** Without '/' or "**": tried at the last '/' only, so only the last name is read. */
      nameOnly: boolean;
      /** A RegExp alternative matching the whole path; for a directory it differs only after a trailing "/***". */
      forFile: string;
      forDirectory: string;
    }
);

/**
 * Consecutive rules of one kind, tested together: whichever of them matches first,
 * the answer is the same. Their wildcard patterns are joined into one RegExp (one for
 * files, which leaves out the directory-only rules, one for directories).
 */
class RuleGroup {
  readonly literals: { text: string; anchored: boolean; dirOnly: boolean }[] = [];
  readonly names: { file: RegExp | null; directory: RegExp | null };
  readonly paths: { file: RegExp | null; directory: RegExp | null };

  constructor(
    readonly exclude: boolean,
    rules: Rule[],
  ) {
    const wildcards: (Rule & { literal: null })[] = [];
    for (const rule of rules) {
      if (rule.literal === null) wildcards.push(rule);
      else this.literals.push({ text: rule.literal, anchored: rule.anchored, dirOnly: rule.dirOnly });
    }
    const joined = (nameOnly: boolean, isDirectory: boolean): RegExp | null => {
      const sources = wildcards
        .filter((rule) => rule.nameOnly === nameOnly && (isDirectory || !rule.dirOnly))
        .map((rule) => (isDirectory ? rule.forDirectory : rule.forFile));
      return sources.length === 0 ? null : new RegExp(sources.join('|'), nameOnly ? 'y' : '');
    };
    this.names = { file: joined(true, false), directory: joined(true, true) };
    this.paths = { file: joined(false, false), directory: joined(false, true) };
  }
}

export class FilterRules {
  /** How many rules remain after "!" clears (0: the walk can skip calling excluded()). */
  readonly size: number;
  private readonly groups: RuleGroup[] = [];
  private text = Buffer.alloc(256);

  private constructor(rules: Rule[]) {
    this.size = rules.length;
    for (let start = 0, end = 1; start < rules.length; start = end++) {
      while (end < rules.length && rules[end]!.exclude === rules[start]!.exclude) end++;
      this.groups.push(new RuleGroup(rules[start]!.exclude, rules.slice(start, end)));
    }
  }

  /** Throws PatternError on a pattern that cannot be compiled. An empty list excludes nothing. */
  static compile(sources: RuleSource[]): FilterRules {
    let rules: Rule[] = [];
    sources.forEach((source, index) => {
      const rule = compileRule(source, `r${index}`);
      if (rule === 'clear') rules = [];
      else rules.push(rule);
    });
    return new FilterRules(rules);
  }

  /**
   * First matching rule wins; no match = included.
   * `path`: relative to the source root, raw bytes, names joined by single '/', no leading or trailing '/', never empty.
   */
  excluded(path: Buffer, isDirectory: boolean): boolean {
    if (this.groups.length === 0) return false;
    const length = path.length + 1;
    if (this.text.length < length) this.text = Buffer.alloc(length * 2);
    this.text[0] = SLASH;
    path.copy(this.text, 1);
    const text = this.text.toString('latin1', 0, length);
    const lastSlash = text.lastIndexOf('/');
    for (const group of this.groups) {
      for (const literal of group.literals) {
        if (literal.dirOnly && !isDirectory) continue;
        if (literal.anchored ? text === literal.text : text.endsWith(literal.text)) return group.exclude;
      }
      const names = isDirectory ? group.names.directory : group.names.file;
      if (names) {
        names.lastIndex = lastSlash;
        if (names.test(text)) return group.exclude;
      }
      const paths = isDirectory ? group.paths.directory : group.paths.file;
      if (paths?.test(text)) return group.exclude;
    }
    return false;
  }
}

function compileRule(source: RuleSource, id: string): Rule | 'clear' {
  try {
    return parseRule(source, id);
  } catch (error) {
    if (!(error instanceof PatternProblem)) throw error;
    throw new PatternError(`invalid pattern ${JSON.stringify(source.pattern.toString('utf8'))}: ${error.message}`);
  }
}

/** `id` names the rule's capture groups, unique in a RegExp joining several rules. */
function parseRule(source: RuleSource, id: string): Rule | 'clear' {
  let text = source.pattern.toString('latin1');
  let exclude = source.kind === 'exclude';
  // As rsync reads --include/--exclude and their files: a "+ " or "- " prefix decides, and "!" alone clears.
  if (text.startsWith('- ') || text.startsWith('+ ')) {
    exclude = text[0] === '-';
    text = text.slice(2);
  } else if (text === '!') return 'clear';
  if (text === '') throw new PatternProblem('it is empty');
  if (text.includes('\0')) throw new PatternProblem('it holds a NUL byte, which no name can');
  if (text.length > MAX_PATTERN) throw new PatternProblem(`it is longer than ${MAX_PATTERN} bytes`);

  const dirOnly = text.length > 1 && text.endsWith('/');
  if (dirOnly) text = text.slice(0, -1);
  const wildcard = isWildcard(text);
  const tokens = wildcard ? wildcardTokens(text) : literalTokens(text);
  refuseNeverMatching(text, tokens);

  const anchored = text.startsWith('/');
  if (!wildcard) return { exclude, dirOnly, literal: anchored ? text : '/' + text, anchored };
  // rsync decides how to match from the pattern's text (exclude.c add_rule, rule_matches): an escaped "\**" counts as "**".
  const doubleStar = text.includes('**');
  const slashes = text.split('/').length - 1;
  if (!anchored && !doubleStar && slashes > 0 && tokens.filter(isSlash).length !== slashes) {
    // rsync matches such a pattern against the last (slashes + 1) names, and it can span fewer.
    throw new PatternProblem('rsync counts the "/" inside [...] as a separator between names, so this pattern never matches (a class never matches "/": leave it out)');
  }
  // "/P" anchored at the root; "**P" from the start, rsync putting a '/' in front of the path; else P after any '/'.
  const start = anchored || text.startsWith('**') ? '^' : '/';
  const forFile = `${start}${regexSource(tokens, id)}$`;
  // A trailing "/***" also matches the directory itself (rsync tries it with a '/' after the name).
  const slashStarStar = text.endsWith('***') && tokens.length >= 2 && isSlash(tokens[tokens.length - 2]!);
  const forDirectory = slashStarStar ? `${start}${regexSource(tokens, id, 0, tokens.length - 2)}(?:/[\\s\\S]*)?$` : forFile;
  return { exclude, dirOnly, literal: null, nameOnly: slashes === 0 && !doubleStar, forFile, forDirectory };
}

const isSlash = (token: Token) => token.kind === 'byte' && token.code === SLASH;
const isDot = (token: Token) => token.kind === 'byte' && token.code === 0x2e;

/** Patterns rsync accepts but can never match, and that are surely mistakes. */
function refuseNeverMatching(text: string, tokens: Token[]): void {
  if (text === '/') throw new PatternProblem('"/" alone would be the source root itself, which is never matched');
  let nameStart = 0;
  for (let i = 0; i <= tokens.length; i++) {
    if (i < tokens.length && !isSlash(tokens[i]!)) continue;
    const name = tokens.slice(nameStart, i);
    if (name.length === 0 && i > 0) throw new PatternProblem('it holds an empty name ("//" or a "/" at its end), which no path does');
    if ((name.length === 1 || name.length === 2) && name.every(isDot)) {
      throw new PatternProblem(`no path holds a "${'.'.repeat(name.length)}" name (a leading "/" anchors a pattern at the source root)`);
    }
    nameStart = i + 1;
  }
}

/** The rules in an --exclude-from / --include-from file's bytes: one per line, as rsync reads such a file. */
export function rulesFromFile(bytes: Buffer, kind: RuleKind): RuleSource[] {
  const sources: RuleSource[] = [];
  let start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    // rsync ends a line at '\n' or '\r' (so "\r\n" is a line and an empty one); spaces stay part of the pattern.
    if (i < bytes.length && bytes[i] !== 0x0a && bytes[i] !== 0x0d) continue;
    const line = bytes.subarray(start, i);
    start = i + 1;
    if (line.length === 0 || line[0] === 0x3b /* ; */ || line[0] === 0x23 /* # */) continue;
    sources.push({ kind, pattern: Buffer.from(line) });
  }
  return sources;
}
