// rsync's include/exclude rules (rsync(1) "INCLUDE/EXCLUDE PATTERN RULES"; exclude.c, lib/wildmatch.c) on raw byte names.
// Hand-written because src/scan/ is bundled into the agent, which must use Node built-ins only, and because the glob
// libraries (picomatch, minimatch) implement bash's globs, not rsync's wildmatch and its first-match rule list.
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
 * One compiled rule. Every test reads the path as latin1 text with a '/' put in front
 * ("/a/b"), so "at the start or after a '/'" is simply "after a '/'", as rsync's
 * wildmatch_array sees a "**" pattern's path.
 */
interface Rule {
  exclude: boolean;
  dirOnly: boolean;
  /** A pattern without wildcards, '/' in front: the path equals it (anchored) or ends with it. */
  literal: string | null;
  anchored: boolean;
  /** Without '/' or "**": tried at the last '/' only (sticky), so only the last name is read. */
  nameOnly: boolean;
  forFile: RegExp | null;
  /** Differs from forFile for a trailing "/***", which also matches the directory itself. */
  forDirectory: RegExp | null;
}

export class FilterRules {
  /** How many rules remain after "!" clears (0: the walk can skip calling excluded()). */
  readonly size: number;
  private text = Buffer.alloc(256);

  private constructor(private readonly rules: Rule[]) {
    this.size = rules.length;
  }

  /** Throws PatternError on a pattern that cannot be compiled. An empty list excludes nothing. */
  static compile(sources: RuleSource[]): FilterRules {
    let rules: Rule[] = [];
    for (const source of sources) {
      const rule = compileRule(source);
      if (rule === 'clear') rules = [];
      else rules.push(rule);
    }
    return new FilterRules(rules);
  }

  /**
   * First matching rule wins; no match = included.
   * `path`: relative to the source root, raw bytes, names joined by single '/', no leading or trailing '/', never empty.
   */
  excluded(path: Buffer, isDirectory: boolean): boolean {
    const length = path.length + 1;
    if (this.text.length < length) this.text = Buffer.alloc(length * 2);
    this.text[0] = SLASH;
    path.copy(this.text, 1);
    const text = this.text.toString('latin1', 0, length);
    const lastSlash = text.lastIndexOf('/');
    for (const rule of this.rules) {
      if (rule.dirOnly && !isDirectory) continue;
      if (rule.literal !== null) {
        if (rule.anchored ? text === rule.literal : text.endsWith(rule.literal)) return rule.exclude;
        continue;
      }
      const regex = isDirectory ? rule.forDirectory! : rule.forFile!;
      if (rule.nameOnly) regex.lastIndex = lastSlash;
      if (regex.test(text)) return rule.exclude;
    }
    return false;
  }
}

function compileRule(source: RuleSource): Rule | 'clear' {
  const quoted = JSON.stringify(source.pattern.toString('utf8'));
  try {
    return parseRule(source);
  } catch (error) {
    if (error instanceof PatternProblem) throw new PatternError(`invalid pattern ${quoted}: ${error.message}`);
    throw error;
  }
}

function parseRule(source: RuleSource): Rule | 'clear' {
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
  const rule: Rule = { exclude, dirOnly, literal: null, anchored, nameOnly: false, forFile: null, forDirectory: null };
  if (!wildcard) {
    rule.literal = anchored ? text : '/' + text;
    return rule;
  }
  // rsync decides how to match from the pattern's text (exclude.c add_rule, rule_matches): an escaped "\**" counts as "**".
  const doubleStar = text.includes('**');
  const slashes = text.split('/').length - 1;
  rule.nameOnly = slashes === 0 && !doubleStar;
  if (!anchored && !doubleStar && slashes > 0 && tokens.filter(isSlash).length !== slashes) {
    // rsync matches such a pattern against the last (slashes + 1) names, and it can span fewer.
    throw new PatternProblem('a "/" inside [...] counts as a path separator, so this pattern never matches (write "**" to cross names)');
  }
  // "/P" anchored at the root; "**P" at the start, rsync putting a '/' in front of the path; else P after any '/'.
  const start = anchored || text.startsWith('**') ? '^' : '/';
  const flags = rule.nameOnly ? 'y' : '';
  rule.forFile = new RegExp(`${start}${regexSource(tokens)}$`, flags);
  // A trailing "***" also matches the directory itself (rsync tries it with a '/' after the name).
  const slashStarStar = text.endsWith('***') && tokens.length >= 2 && isSlash(tokens[tokens.length - 2]!);
  rule.forDirectory = slashStarStar
    ? new RegExp(`${start}${regexSource(tokens, 0, tokens.length - 2)}(?:/[\\s\\S]*)?$`, flags)
    : rule.forFile;
  return rule;
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
