// FilterRules rule by rule (rsync(1) "INCLUDE/EXCLUDE PATTERN RULES"); filter-rsync.test.ts checks the same against rsync itself.
import { describe, expect, it } from 'vitest';
import { FilterRules, PatternError, rulesFromFile, type RuleKind } from '../src/scan/filter-rules.js';

const bytes = (text: string) => Buffer.from(text, 'latin1');

/** Rules from "- pattern" / "+ pattern" / bare (an exclude) strings, each byte a latin1 character. */
function rules(...patterns: string[]): FilterRules {
  return FilterRules.compile(patterns.map((pattern) => ({ kind: 'exclude' as RuleKind, pattern: bytes(pattern) })));
}

/** The paths (a trailing '/' marks a directory) the rules exclude. */
function excluded(filter: FilterRules, paths: string[]): string[] {
  return paths.filter((path) => (path.endsWith('/') ? filter.excluded(bytes(path.slice(0, -1)), true) : filter.excluded(bytes(path), false)));
}

describe('FilterRules: where a pattern matches', () => {
  it('without a "/" it matches the last name at any depth; a leading "/" anchors it at the source root', () => {
    const paths = ['foo', 'a/foo', 'a/b/foo', 'foo/a', 'xfoo', 'a/foox'];
    expect(excluded(rules('foo'), paths)).toEqual(['foo', 'a/foo', 'a/b/foo']);
    expect(excluded(rules('/foo'), paths)).toEqual(['foo']);
    expect(excluded(rules('/a/foo'), paths)).toEqual(['a/foo']);
  });

  it('with an inner "/" it matches the end of the path at a name boundary', () => {
    const paths = ['a/foo', 'x/a/foo', 'xa/foo', 'a/foo/b', 'foo'];
    expect(excluded(rules('a/foo'), paths)).toEqual(['a/foo', 'x/a/foo']);
    expect(excluded(rules('a/f*'), paths)).toEqual(['a/foo', 'x/a/foo']);
    expect(excluded(rules('*/foo'), paths)).toEqual(['a/foo', 'x/a/foo', 'xa/foo']);
  });

  it('a trailing "/" matches directories only and is not part of the match', () => {
    const paths = ['foo', 'foo/', 'a/foo/', 'a/foo', 'foo/bar'];
    expect(excluded(rules('foo/'), paths)).toEqual(['foo/', 'a/foo/']);
    expect(excluded(rules('/foo/'), paths)).toEqual(['foo/']);
    expect(excluded(rules('f*/'), paths)).toEqual(['foo/', 'a/foo/']);
  });

  it('"*" and "?" stop at "/", "**" crosses it', () => {
    const paths = ['a/b', 'a/b/c', 'ab', 'a/bc', 'abc/d'];
    expect(excluded(rules('/a/*'), paths)).toEqual(['a/b', 'a/bc']);
    expect(excluded(rules('/a/**'), paths)).toEqual(['a/b', 'a/b/c', 'a/bc']);
    expect(excluded(rules('/a*'), paths)).toEqual(['ab']);
    expect(excluded(rules('/a**'), paths)).toEqual(['a/b', 'a/b/c', 'ab', 'a/bc', 'abc/d']);
    expect(excluded(rules('/a?b'), paths)).toEqual([]);
    expect(excluded(rules('/a?c'), ['abc', 'a/c'])).toEqual(['abc']);
  });

  it('"**/" at the start matches at the root too; "/**/" in the middle needs a name between (rsync 3)', () => {
    expect(excluded(rules('**/foo'), ['foo', 'a/foo', 'a/b/foo', 'afoo'])).toEqual(['foo', 'a/foo', 'a/b/foo']);
    expect(excluded(rules('a/**/b'), ['a/b', 'a/x/b', 'a/x/y/b', 'z/a/x/b'])).toEqual(['a/x/b', 'a/x/y/b', 'z/a/x/b']);
    expect(excluded(rules('**.o'), ['a.o', 'x/a.o', 'x.o/y'])).toEqual(['a.o', 'x/a.o']);
  });

  it('a trailing "dir/***" matches the directory and everything in it, but not a file of that name', () => {
    const paths = ['d/', 'd', 'd/e', 'd/e/', 'd/e/f', 'x/d/', 'x/d/e', 'dd/', 'dd/e'];
    expect(excluded(rules('d/***'), paths)).toEqual(['d/', 'd/e', 'd/e/', 'd/e/f', 'x/d/', 'x/d/e']);
    expect(excluded(rules('/d/***'), paths)).toEqual(['d/', 'd/e', 'd/e/', 'd/e/f']);
    expect(excluded(rules('d/**'), paths)).toEqual(['d/e', 'd/e/', 'd/e/f', 'x/d/e']);
  });
});

describe('FilterRules: pattern characters', () => {
  it('classes: ranges, "!" and "^" negation, POSIX names, "]" first and "-" at an end are members, never "/"', () => {
    const names = ['a', 'b', 'c', 'x', 'A', '7', '-', ']', '.', ' ', '\t', '\xe9'];
    expect(excluded(rules('[a-c]'), names)).toEqual(['a', 'b', 'c']);
    expect(excluded(rules('[!a-c]'), names)).toEqual(['x', 'A', '7', '-', ']', '.', ' ', '\t', '\xe9']);
    expect(excluded(rules('[^a-c]'), names)).toEqual(excluded(rules('[!a-c]'), names));
    expect(excluded(rules('[[:alpha:]]'), names)).toEqual(['a', 'b', 'c', 'x', 'A']);
    expect(excluded(rules('[[:upper:][:digit:]]'), names)).toEqual(['A', '7']);
    expect(excluded(rules('[[:punct:]]'), names)).toEqual(['-', ']', '.']);
    expect(excluded(rules('[[:blank:]]'), names)).toEqual([' ', '\t']);
    expect(excluded(rules('[]a]'), names)).toEqual(['a', ']']);
    expect(excluded(rules('[a-]'), names)).toEqual(['a', '-']);
    expect(excluded(rules('[\xe9]'), names)).toEqual(['\xe9']);
    expect(excluded(rules('[\\xe9]'), names)).toEqual(['x']); // "\x" is an escaped "x", as in rsync: no hex escapes
    expect(excluded(rules('/a[!x]b', '/a[[:punct:]]b'), ['a/b', 'a.b'])).toEqual(['a.b']);
  });

  it('a backslash escapes a wildcard character in a wildcard pattern, and is a plain byte in a pattern without wildcards', () => {
    const names = ['star*', 'starX', 'q?', 'qX', 'br[a]ck', 'back\\slash', 'backslash'];
    expect(excluded(rules('star\\*'), names)).toEqual(['star*']);
    expect(excluded(rules('star*'), names)).toEqual(['star*', 'starX']);
    expect(excluded(rules('q\\?'), names)).toEqual(['q?']);
    expect(excluded(rules('br\\[a]ck'), names)).toEqual(['br[a]ck']);
    expect(excluded(rules('back\\slash'), names)).toEqual(['back\\slash']);
    expect(excluded(rules('back\\s*'), names)).toEqual(['backslash']);
    expect(excluded(rules('back\\\\s*'), names)).toEqual(['back\\slash']);
  });

  it('matches bytes: "?" is one byte of a name that is not UTF-8, and a literal pattern compares bytes', () => {
    const names = ['caf\xe9', 'caf\xc3\xa9', '\xff', 'cafe'];
    expect(excluded(rules('caf?'), names)).toEqual(['caf\xe9', 'cafe']);
    expect(excluded(rules('caf??'), names)).toEqual(['caf\xc3\xa9']);
    expect(excluded(rules('?'), names)).toEqual(['\xff']);
    expect(excluded(rules('caf\xe9'), names)).toEqual(['caf\xe9']);
    expect(excluded(rules('[\x80-\xff]*'), names)).toEqual(['\xff']);
    const utf8 = FilterRules.compile([{ kind: 'exclude', pattern: Buffer.from('café') }]);
    expect(utf8.excluded(Buffer.from('café'), false)).toBe(true);
    expect(utf8.excluded(bytes('caf\xe9'), false)).toBe(false);
  });

  it('many stars on a long name take linear time, not exponential', () => {
    const filter = rules('*a*a*a*a*a*a*a*a*b', '**a**a**a**a**a**a**b', '/*a*a*a*a*a*a*a*/**c');
    const started = performance.now();
    expect(filter.excluded(bytes('a'.repeat(250)), false)).toBe(false);
    expect(filter.excluded(bytes(`${'a'.repeat(200)}/${'a'.repeat(200)}`), false)).toBe(false);
    expect(filter.excluded(bytes(`${'a'.repeat(200)}b`), false)).toBe(true);
    expect(performance.now() - started).toBeLessThan(100);
  });

  it('works on paths longer than its scratch buffer', () => {
    const deep = Array.from({ length: 40 }, (_, i) => `dir${i}-${'x'.repeat(30)}`).join('/');
    expect(rules('*.o').excluded(bytes(`${deep}/a.o`), false)).toBe(true);
    expect(rules('/dir0-*/**/dir39-*').excluded(bytes(deep), true)).toBe(true);
    expect(rules('*.o').excluded(bytes('a.c'), false)).toBe(false);
  });
});

describe('FilterRules: the rule list', () => {
  it('the first matching rule wins: an include before an exclude keeps what it matches', () => {
    const paths = ['keep.o', 'drop.o', 'a/keep.o', 'a.c'];
    expect(excluded(rules('+ keep.o', '- *.o'), paths)).toEqual(['drop.o']);
    expect(excluded(rules('- *.o', '+ keep.o'), paths)).toEqual(['keep.o', 'drop.o', 'a/keep.o']);
    expect(excluded(rules('+ */', '+ *.c', '- *'), ['a/', 'a.c', 'b.o'])).toEqual(['b.o']);
  });

  it('"+ " and "- " decide the kind whatever option gave the rule; a pattern without them takes the option\'s kind', () => {
    const filter = FilterRules.compile([
      { kind: 'include', pattern: bytes('- drop') },
      { kind: 'exclude', pattern: bytes('+ keep') },
      { kind: 'include', pattern: bytes('also') },
      { kind: 'exclude', pattern: bytes('*') },
    ]);
    expect(excluded(filter, ['drop', 'keep', 'also', 'other'])).toEqual(['drop', 'other']);
    expect(excluded(rules('- - dash'), ['- dash', 'dash'])).toEqual(['- dash']);
    expect(excluded(rules('+x', '-y'), ['+x', '-y', 'x'])).toEqual(['+x', '-y']);
  });

  it('"!" alone clears the rules before it; "!x" and "- !" are patterns', () => {
    const cleared = rules('- *.o', '- a', '!', '- b');
    expect(cleared.size).toBe(1);
    expect(excluded(cleared, ['x.o', 'a', 'b'])).toEqual(['b']);
    expect(rules('- *.o', '!').size).toBe(0);
    expect(excluded(rules('!x', '- !'), ['!x', '!', 'x'])).toEqual(['!x', '!']);
  });

  it('an empty list excludes nothing and has size 0', () => {
    const none = FilterRules.compile([]);
    expect(none.size).toBe(0);
    expect(none.excluded(bytes('anything'), true)).toBe(false);
    expect(rules('a', 'b', 'c').size).toBe(3);
  });
});

describe('FilterRules: bad patterns', () => {
  const refusal = (pattern: string): string => {
    try {
      rules(pattern);
    } catch (error) {
      expect(error).toBeInstanceOf(PatternError);
      return (error as Error).message;
    }
    throw new Error(`${JSON.stringify(pattern)} was accepted`);
  };

  it('refuses, in one line naming the pattern, what rsync would silently never match', () => {
    expect(refusal('foo[')).toBe('invalid pattern "foo[": "[" is never closed');
    expect(refusal('')).toBe('invalid pattern "": it is empty');
    expect(refusal('- ')).toBe('invalid pattern "- ": it is empty');
    expect(refusal('a*\\')).toMatch(/^invalid pattern "a\*\\\\": it ends with a lone "\\"/);
    expect(refusal('a\0b')).toMatch(/NUL byte/);
    expect(refusal('[z-a]')).toMatch(/the range "z-a" is reversed/);
    expect(refusal('[[:alhpa:]]')).toMatch(/"\[:alhpa:\]" is not a character class/);
    expect(refusal('[[:constructor:]]')).toMatch(/is not a character class/);
    expect(refusal('/')).toMatch(/source root/);
    expect(refusal('a//b')).toMatch(/empty name/);
    expect(refusal('foo//')).toMatch(/empty name/);
    expect(refusal('./foo')).toMatch(/no path holds a "\." name/);
    expect(refusal('a/../b')).toMatch(/no path holds a "\.\." name/);
    expect(refusal('a/[^/]*')).toMatch(/inside \[\.\.\.\]/);
    expect(refusal('[!/]')).toMatch(/inside \[\.\.\.\]/); // rsync: one '/', so the last two names, which one byte never spans
    expect(refusal('**/a[/]')).toMatch(/"\[\/\]" matches no byte/);
    expect(refusal('x'.repeat(4096))).toMatch(/longer than 4095 bytes/);
    expect(refusal('\xff[')).toBe('invalid pattern "\ufffd[": "[" is never closed');
    for (const pattern of ['foo[', '', 'a*\\', '[z-a]', '/', 'a//b', './foo']) expect(refusal(pattern)).not.toContain('\n');
  });

  it('accepts what rsync can match, however odd', () => {
    for (const pattern of ['[a-a]', '/[!/]', '/a/[^/]*', '**[/x]', '[[:a]', '[]-]', '.a', '...', 'a\\', 'x/.../y', '\\', 'x'.repeat(4095)]) {
      expect(() => rules(pattern), pattern).not.toThrow();
    }
    expect(excluded(rules('a\\'), ['a\\', 'a'])).toEqual(['a\\']);
    expect(excluded(rules('[[:a]'), ['[', ':', 'a', 'b'])).toEqual(['[', ':', 'a']);
  });
});

describe('rulesFromFile', () => {
  const patterns = (text: string) => rulesFromFile(bytes(text), 'exclude').map((rule) => rule.pattern.toString('latin1'));

  it('reads one rule a line, skipping blank lines and lines that begin with ";" or "#"', () => {
    expect(patterns('a\n\n# comment\n; comment\n- b\n+ c\n!\n')).toEqual(['a', '- b', '+ c', '!']);
    expect(patterns('no final newline')).toEqual(['no final newline']);
    expect(patterns('')).toEqual([]);
  });

  it('ends a line at "\\n" or "\\r", as rsync does: CRLF lines read as if LF, a lone CR splits a line', () => {
    expect(patterns('a\r\nb\r\n')).toEqual(['a', 'b']);
    expect(patterns('a\rb')).toEqual(['a', 'b']);
  });

  it('keeps leading and trailing spaces, and a "#" that does not begin the line', () => {
    expect(patterns('foo \n  bar\n+ #x\n #y\n')).toEqual(['foo ', '  bar', '+ #x', ' #y']);
  });

  it('gives every rule the file\'s kind and keeps bytes that are not UTF-8', () => {
    const read = rulesFromFile(bytes('\xff\xe9\n- x\n'), 'include');
    expect(read.map((rule) => rule.kind)).toEqual(['include', 'include']);
    expect(read[0]!.pattern).toEqual(Buffer.from([0xff, 0xe9]));
    expect(excluded(FilterRules.compile(rulesFromFile(bytes('+ keep\n- *\n'), 'exclude')), ['keep', 'other'])).toEqual(['other']);
  });
});
