// rsync's wildmatch pattern language (lib/wildmatch.c), compiled to a RegExp over a
// path's bytes read as latin1 text (one character per byte, so a name that is not
// UTF-8 matches byte by byte). Hand-written: see filter-rules.ts for why.

/** Why a pattern cannot be compiled; filter-rules.ts names the pattern. */
export class PatternProblem extends Error {}

const SLASH = 0x2f;

export type Token =
  | { kind: 'byte'; code: number }
  | { kind: 'one' } // ?
  | { kind: 'star' } // * : any run of bytes but '/'
  | { kind: 'starstar' } // ** (or more stars): any run of bytes
  | { kind: 'class'; members: Uint8Array }; // [...]: one byte of the set, never '/'

/** True for a pattern rsync treats as a wildcard pattern; any other is compared literally, backslashes included. */
export function isWildcard(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/** A literal pattern: one byte token per character. */
export function literalTokens(pattern: string): Token[] {
  return Array.from(pattern, (char) => ({ kind: 'byte', code: char.charCodeAt(0) }) as const);
}

export function wildcardTokens(pattern: string): Token[] {
  const tokens: Token[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const code = pattern.charCodeAt(i);
    if (code === 0x5c /* \ */) {
      if (++i === pattern.length) throw new PatternProblem('it ends with a lone "\\", which escapes nothing');
      tokens.push({ kind: 'byte', code: pattern.charCodeAt(i) });
    } else if (code === 0x2a /* * */) {
      let end = i + 1;
      while (pattern.charCodeAt(end) === 0x2a) end++;
      tokens.push({ kind: end - i > 1 ? 'starstar' : 'star' });
      i = end - 1;
    } else if (code === 0x3f /* ? */) tokens.push({ kind: 'one' });
    else if (code === 0x5b /* [ */) {
      const { members, end } = parseClass(pattern, i + 1);
      tokens.push({ kind: 'class', members });
      i = end;
    } else tokens.push({ kind: 'byte', code });
  }
  return tokens;
}

// The C locale's ctype classes: rsync's [[:alpha:]] etc. match no byte above 0x7f in the C and UTF-8 locales (checked with rsync 3.5).
const inRange = (c: number, low: string, high: string) => c >= low.charCodeAt(0) && c <= high.charCodeAt(0);
const isAlpha = (c: number) => inRange(c, 'a', 'z') || inRange(c, 'A', 'Z');
const isDigit = (c: number) => inRange(c, '0', '9');
const isGraph = (c: number) => c > 0x20 && c < 0x7f;
const POSIX_CLASSES = new Map<string, (c: number) => boolean>(Object.entries({
  alnum: (c: number) => isAlpha(c) || isDigit(c),
  alpha: isAlpha,
  blank: (c: number) => c === 0x20 || c === 0x09,
  cntrl: (c: number) => c < 0x20 || c === 0x7f,
  digit: isDigit,
  graph: isGraph,
  lower: (c: number) => inRange(c, 'a', 'z'),
  print: (c: number) => c >= 0x20 && c < 0x7f,
  punct: (c: number) => isGraph(c) && !isAlpha(c) && !isDigit(c),
  space: (c: number) => c === 0x20 || (c >= 0x09 && c <= 0x0d),
  upper: (c: number) => inRange(c, 'A', 'Z'),
  xdigit: (c: number) => isDigit(c) || inRange(c, 'a', 'f') || inRange(c, 'A', 'F'),
}));

const UNCLOSED = '"[" is never closed';

/**
 * Parses a class as wildmatch.c's dowild does, quirks included: a ']' right after
 * '[' or '[!' is a member, '-' is literal first, last or right after a range, a
 * backslash escapes the next byte, and "[:" without a matching ":]" is a literal '['.
 * `start` is the index after '['; returns the index of the closing ']'.
 */
function parseClass(pattern: string, start: number): { members: Uint8Array; end: number } {
  const members = new Uint8Array(256);
  const at = (index: number): number => (index < pattern.length ? pattern.charCodeAt(index) : 0);
  let i = start;
  let ch = at(i);
  const negated = ch === 0x21 /* ! */ || ch === 0x5e; /* ^ */
  if (negated) ch = at(++i);
  let previous = 0;
  do {
    if (i >= pattern.length) throw new PatternProblem(UNCLOSED);
    if (ch === 0x5c /* \ */) {
      if (++i >= pattern.length) throw new PatternProblem(UNCLOSED);
      ch = at(i);
      members[ch] = 1;
    } else if (ch === 0x2d /* - */ && previous !== 0 && i + 1 < pattern.length && at(i + 1) !== 0x5d /* ] */) {
      ch = at(++i);
      if (ch === 0x5c && ++i >= pattern.length) throw new PatternProblem(UNCLOSED);
      ch = at(i);
      if (ch < previous) {
        throw new PatternProblem(`the range "${String.fromCharCode(previous)}-${String.fromCharCode(ch)}" is reversed, so it matches nothing`);
      }
      members.fill(1, previous, ch + 1);
      ch = 0; // no range may start right after a range
    } else if (ch === 0x5b /* [ */ && at(i + 1) === 0x3a /* : */) {
      const nameStart = i + 2;
      const close = pattern.indexOf(']', nameStart);
      if (close < 0) throw new PatternProblem(UNCLOSED);
      if (close - nameStart - 1 < 0 || at(close - 1) !== 0x3a) {
        members[0x5b] = 1; // no ":]": a literal '[', and the ':' after it is read as a member next
      } else {
        const name = pattern.slice(nameStart, close - 1);
        const test = POSIX_CLASSES.get(name);
        if (!test) throw new PatternProblem(`"[:${name}:]" is not a character class`);
        for (let c = 0; c < 256; c++) if (test(c)) members[c] = 1;
        i = close;
        ch = 0;
      }
    } else members[ch] = 1;
    previous = ch;
    ch = at(++i);
  } while (i >= pattern.length || ch !== 0x5d);
  if (negated) for (let c = 0; c < 256; c++) members[c] = members[c] ? 0 : 1;
  members[SLASH] = 0; // wildmatch's class never matches '/', even "[^a]" or "[/]"
  if (!members.includes(1)) throw new PatternProblem(`"${pattern.slice(start - 1, i + 1)}" matches no byte (a class never matches "/")`);
  return { members, end: i };
}

const hex = (code: number) => '\\x' + code.toString(16).padStart(2, '0');

function classSource(members: Uint8Array): string {
  let source = '[';
  for (let c = 0; c < 256; c++) {
    if (!members[c]) continue;
    let last = c;
    while (last < 255 && members[last + 1]) last++;
    source += last === c ? hex(c) : `${hex(c)}-${hex(last)}`;
    c = last;
  }
  return source + ']'; // "[]" matches nothing, as an empty set should
}

/** Where the run of one-byte tokens starting at `from` ends: at the next star run or the end. */
function chunkEnd(tokens: Token[], from: number): number {
  let end = from;
  while (end < tokens.length && tokens[end]!.kind !== 'star' && tokens[end]!.kind !== 'starstar') end++;
  return end;
}

const isSlash = (token: Token) => token.kind === 'byte' && token.code === SLASH;

/**
 * The RegExp source of tokens[from..to). A star run X followed by a chunk C and then a
 * star run Y takes C's first occurrence, atomically (in a lookahead), when that loses
 * no match: a later occurrence only leaves more for Y, so the earlier one works too when
 * Y is "**", or when X is "*" and C holds no '/' (then the bytes Y takes over hold no
 * '/' either). That keeps "*a*a*a*a*b" linear where plain backtracking is exponential.
 * `name` makes the capture groups' names unique among sources joined into one RegExp.
 */
export function regexSource(tokens: Token[], name: string, from = 0, to = tokens.length): string {
  let source = '';
  for (let i = from; i < to; i++) {
    const token = tokens[i]!;
    if (token.kind !== 'star' && token.kind !== 'starstar') {
      source += tokenSource(token);
      continue;
    }
    const any = token.kind === 'star' ? '[^/]*' : '[\\s\\S]*';
    const end = chunkEnd(tokens, i + 1);
    const chunk = tokens.slice(i + 1, end);
    const safe = tokens[end]?.kind === 'starstar' || (token.kind === 'star' && !chunk.some(isSlash));
    if (end < to && chunk.length > 0 && safe) {
      const group = `${name}_${i}`;
      source += `(?=(?<${group}>${any}?${chunk.map(tokenSource).join('')}))\\k<${group}>`;
      i = end - 1;
    } else source += any;
  }
  return source;
}

function tokenSource(token: Token): string {
  switch (token.kind) {
    case 'byte':
      return /[A-Za-z0-9_]/.test(String.fromCharCode(token.code)) ? String.fromCharCode(token.code) : hex(token.code);
    case 'one':
      return '[^/]';
    case 'class':
      return classSource(token.members);
    default:
      throw new Error('unreachable');
  }
}
