// FilterRules against the real rsync: for each rule list, the paths `rsync -a` would copy from a tree
// must be exactly the paths a walk that asks FilterRules keeps (an excluded directory is not entered).
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FilterRules, PatternError, rulesFromFile } from '../src/scan/filter-rules.js';
import { generator, tempDir } from './helpers.js';

const bytes = (text: string) => Buffer.from(text, 'latin1');

// Names with dots, spaces, brackets, wildcard characters, backslashes, leading rule-prefix characters and bytes that are not UTF-8.
const NAMES = [
  'a', 'ab', 'abc', 'b', 'a.o', 'b.o', '.hidden', 'foo', 'foo.txt', 'Foo', 'bar', 'with space', 'trailing ', 'br[a]ck',
  'star*', 'q?', 'back\\slash', '\xff', 'caf\xe9', 'x\xe9\xffy', 'node_modules', 'build', 'x1', '9lives', '-dash', '#hash',
  '!', 'tab\tname', 'cache',
];

/** The same tree every run: several depths, files and directories sharing names. */
function buildTree(root: string): void {
  const random = generator(20240611);
  const fill = (dir: string, depth: number) => {
    const pick = [1, 0.3, 0.15, 0.12][depth]!;
    const dirChance = [0.5, 0.45, 0.35, 0][depth]!;
    for (const name of NAMES) {
      if (random() >= pick) continue;
      const path = join(dir, name);
      if (random() < dirChance) {
        mkdirSync(bytes(path));
        fill(path, depth + 1);
      } else writeFileSync(bytes(path), '');
    }
  };
  fill(root, 0);
}

/** What a walk asking FilterRules keeps: "path" or "path/" for a directory, latin1. */
function kept(root: string, rules: FilterRules): Set<string> {
  const paths = new Set<string>();
  const visit = (relative: Buffer) => {
    const dir = relative.length === 0 ? bytes(root) : Buffer.concat([bytes(root + '/'), relative]);
    for (const name of readdirSync(dir, { encoding: 'buffer' })) {
      const path = relative.length === 0 ? name : Buffer.concat([relative, bytes('/'), name]);
      const isDirectory = lstatSync(Buffer.concat([dir, bytes('/'), name])).isDirectory();
      if (rules.excluded(path, isDirectory)) continue;
      paths.add(path.toString('latin1') + (isDirectory ? '/' : ''));
      if (isDirectory) visit(path);
    }
  };
  visit(Buffer.alloc(0));
  return paths;
}

/** What rsync would copy with these rule-file bytes (a dry run; %n escapes other bytes than these names hold as \#ooo). */
function rsyncKeeps(root: string, ruleFile: string): Set<string> {
  const run = spawnSync('rsync', ['-a', '-n', '-8', '--out-format=%n', `--exclude-from=${ruleFile}`, root + '/', join(root, '..', 'nowhere') + '/'], {
    env: { ...process.env, LC_ALL: 'C' },
  });
  if (run.status !== 0) throw new Error(`rsync failed: ${run.stderr.toString()}`);
  const lines = run.stdout.toString('latin1').split('\n').filter((line) => line !== '' && line !== './');
  return new Set(lines.map((line) => line.replace(/\\#([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))));
}

interface Comparison {
  checked: number;
  refused: number;
  mismatches: string[];
}

/** Rule lines are written as a file ("- pattern" / "+ pattern" / "!") so any byte reaches rsync unchanged. */
function compare(root: string, scratch: string, lists: string[][]): Comparison {
  const result: Comparison = { checked: 0, refused: 0, mismatches: [] };
  const everything = rsyncKeeps(root, '/dev/null');
  lists.forEach((lines, index) => {
    const ruleFile = join(scratch, `rules-${index}`);
    const fileBytes = bytes(lines.join('\n') + '\n');
    writeFileSync(ruleFile, fileBytes);
    const expected = rsyncKeeps(root, ruleFile);
    let rules: FilterRules;
    try {
      rules = FilterRules.compile(rulesFromFile(fileBytes, 'exclude'));
    } catch (error) {
      if (!(error instanceof PatternError)) throw error;
      result.refused++;
      // A refused pattern is one rsync never matches: alone as an exclude, it must leave the whole tree.
      for (const line of lines) {
        const single = join(scratch, `single-${index}`);
        writeFileSync(single, bytes(line.replace(/^[-+] /, '- ') + '\n'));
        try {
          FilterRules.compile(rulesFromFile(bytes(line), 'exclude'));
        } catch {
          const left = rsyncKeeps(root, single);
          if (left.size !== everything.size) result.mismatches.push(`refused ${JSON.stringify(line)} but rsync matches with it (${error.message})`);
        }
      }
      return;
    }
    result.checked++;
    const ours = kept(root, rules);
    const onlyRsync = [...expected].filter((path) => !ours.has(path));
    const onlyOurs = [...ours].filter((path) => !expected.has(path));
    if (onlyRsync.length > 0 || onlyOurs.length > 0) {
      result.mismatches.push(
        `rules ${JSON.stringify(lines)}: rsync keeps, we exclude: ${JSON.stringify(onlyRsync.slice(0, 8))}; we keep, rsync excludes: ${JSON.stringify(onlyOurs.slice(0, 8))}`,
      );
    }
  });
  return result;
}

const HAND_PICKED: string[][] = [
  ['- a'], ['- a.o'], ['- *.o'], ['- foo/'], ['- /foo'], ['- /foo/'], ['- foo/bar'], ['- /foo/bar'], ['- */a'], ['- /*/a'],
  ['- a/*/b'], ['- **/a'], ['- a/**'], ['- a/**/b'], ['- /a/**/b'], ['- **/b.o'], ['- a**b'], ['- **b'], ['- *b*'],
  ['- a/***'], ['- /a/***'], ['- foo/***'], ['- ***'], ['- */***'], ['- a***'], ['- **/'], ['- */'], ['- *'], ['- ?'], ['- ??'],
  ['- ?.o'], ['- [ab]'], ['- [!ab]'], ['- [^ab]*'], ['- [a-c]*'], ['- [[:alpha:]]'], ['- [[:digit:]]*'], ['- [[:punct:]]*'],
  ['- [[:space:]]*'], ['- *[[:space:]]'], ['- [[:upper:]]*'], ['- [[:print:]]*'], ['- [![:print:]]*'], ['- []a]'], ['- [a-]'],
  ['- [-a]'], ['- [[:a]'], ['- [\\]]*'], ['- [a\\-c]'], ['- br\\[a\\]ck'], ['- br[[]a]ck'], ['- br[a]ck'], ['- star\\*'], ['- star*'],
  ['- q\\?'], ['- q?'], ['- back\\slash'], ['- back\\\\slash'], ['- back\\s*'], ['- back\\\\s*'], ['- \xff'], ['- ?\xe9*'],
  ['- caf?'], ['- *\xff*'], ['- [\xe9\xff]*'], ['- x[\x80-\xff]*'], ['- with space'], ['- with *'], ['- trailing '], ['- trailing'],
  ['- -dash'], ['- #hash'], ['- !'], ['- .*'], ['- .hidden/'], ['- tab\tname'], ['- tab[[:blank:]]*'], ['- *[[:cntrl:]]*'],
  ['+ a.o', '- *.o'], ['+ foo/', '- foo'], ['+ */', '- *'], ['+ */', '+ *.o', '- *'], ['+ /a/', '+ /a/**', '- *'], ['- a', '+ a'],
  ['+ a', '- a'], ['- *.o', '!', '- foo'], ['- *.o', '!'], ['+ a/', '- a/*', '- b'], ['+ **/b.o', '- **.o'], ['- a/**/'],
  ['# comment', '; comment', '- foo'], ['- node_modules/', '- build/', '- .*', '- *.o', '- cache/'], ['- /a/a', '- /b/**/c*'],
  ['- a/a'], ['- */a/*'], ['- *a/a*'], ['- a/a/a'], ['- ab/**/a'], ['- **/a/**'], ['- **a'], ['- a*/'], ['- a\\**'], ['- \\**'],
  ['- *\\*'], ['- [*?]*'], ['- *[]]*'], ['- /a[!x]a'], ['- a[^.]**'], ['- **[!b]a'], ['- /a[[:punct:]]a'], ['- **[[:punct:]]b'],
  // Several stars (the compiler takes some chunks' first occurrence at once), and groups of same-kind rules mixing every form.
  ['- *a*b*'], ['- *o*o'], ['- *a*/*b*'], ['- **a**b'], ['- **a*b'], ['- *a**b*'], ['- f*o*'], ['- *.*.*'], ['- *a*a*'],
  ['- a*b*c'], ['- **/*a*/**b*'], ['- *[ab]*[ab]*'], ['- ?*?*?*'], ['- **?/*'],
  ['- *.o', '- a/', '- /b', '- **/c*/', '- foo/***', '- /x1/**', '+ a*', '- *b*', '- ab/', '+ */', '- *'],
  ['+ *.o', '+ foo/', '- /a*/**', '- b', '+ /**/a/', '- **/a/*', '- a'],
];

// Pieces the generated patterns are made of: names of the tree, parts of names, and every kind of wildcard.
const PIECES = [
  ...NAMES, 'a', 'b', 'o', 'foo', '.o', 'ca', '\xe9', '\xff', '*', '*', '?', '**', '[a-f]', '[!a-z]', '[^.]', '[[:alpha:]]',
  '[[:digit:]]', '[\xe9\xff]', '[]a]', '[*?]', '\\*', '\\?', '\\[', '\\a', 'a*', '*.o', '.*', 'f*o', '?o*', '*b',
];
// Pieces of patterns rsync accepts but never matches (refused here), used sparingly.
const NEVER_MATCHING = ['[z-a]', '[/]', '[', '\\', '.', '[[:alhpa:]]'];

/** A rule list from a seed: patterns made of pieces, or made from a path of the tree with some names turned into wildcards. */
function generatedList(seed: number, treePaths: string[]): string[] {
  const random = generator(seed);
  const choose = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const escaped = (name: string) => name.replace(/[\\*?[]/g, '\\$&');
  const wildName = (name: string): string => {
    const cut = Math.floor(random() * name.length);
    const forms = [
      () => name,
      () => escaped(name.slice(0, cut)) + '?' + escaped(name.slice(cut + 1)),
      () => escaped(name.slice(0, cut)) + '*',
      () => '*' + escaped(name.slice(cut)),
      () => '*',
      () => `[${escaped(name[0]!)}q]` + escaped(name.slice(1)),
    ];
    return choose(forms)();
  };
  const fromPieces = (): string[] => {
    const names: string[] = [];
    const count = 1 + Math.floor(random() * random() * 4);
    for (let i = 0; i < count; i++) {
      let name = random() < 0.02 ? choose(NEVER_MATCHING) : choose(PIECES);
      if (random() < 0.3) name += choose(PIECES);
      names.push(name);
    }
    return names;
  };
  const fromTree = (): string[] => {
    const names = choose(treePaths).replace(/\/$/, '').split('/');
    const kept = names.slice(Math.floor(random() * names.length)).map((name) => (random() < 0.5 ? wildName(name) : name));
    if (kept.length > 2 && random() < 0.3) kept.splice(1, kept.length - 2, '**');
    return kept;
  };
  const pattern = (): string => {
    let text = (random() < 0.5 ? fromTree() : fromPieces()).join('/');
    const start = random();
    if (start < 0.25) text = '/' + text;
    else if (start < 0.35) text = '**/' + text;
    const end = random();
    if (end < 0.2) text += '/';
    else if (end < 0.3) text += '/***';
    return text.replace(/[\n\r]/g, '_');
  };
  const lines: string[] = [];
  const count = 1 + Math.floor(random() * 4);
  for (let i = 0; i < count; i++) lines.push(random() < 0.05 ? '!' : `${random() < 0.3 ? '+' : '-'} ${pattern()}`);
  return lines;
}

// Patterns refused as typos: rsync accepts each of them and never matches anything with it.
const REFUSED = [
  'foo[', 'a[b', '[!', '[]', '[z-a]', 'b[c-a]*', 'a*\\', '[[:alhpa:]]*', '/', '//', 'a//b', 'foo//', './a', '/./a', 'a/../b', '.', '..',
  '*/..', '*/[/]a', 'a/[^/]*', 'x*/b[/]', '[!/]', '[^/]*', '**/[/]', '/a[\\/]*',
];

describe('FilterRules against rsync 3', () => {
  it('refuses a pattern rsync would never match, with one line naming it', () => {
    const root = join(tempDir(), 'src');
    mkdirSync(root);
    buildTree(root);
    const scratch = tempDir();
    const everything = rsyncKeeps(root, '/dev/null');
    for (const pattern of REFUSED) {
      expect(() => FilterRules.compile([{ kind: 'exclude', pattern: bytes(pattern) }])).toThrow(PatternError);
      expect(() => FilterRules.compile([{ kind: 'exclude', pattern: bytes(pattern) }])).toThrow(/^invalid pattern "[^\n]*$/);
      writeFileSync(join(scratch, 'rules'), bytes(`- ${pattern}\n`));
      expect([...rsyncKeeps(root, join(scratch, 'rules'))], pattern).toEqual([...everything]);
    }
  });

  it('hand-picked rule lists keep exactly what rsync keeps', () => {
    const root = join(tempDir(), 'src');
    mkdirSync(root);
    buildTree(root);
    const result = compare(root, tempDir(), HAND_PICKED);
    expect(result.mismatches).toEqual([]);
    expect(result.checked).toBe(HAND_PICKED.length - result.refused);
    expect(result.refused).toBeLessThanOrEqual(1);
  });

  it('200 generated rule lists keep exactly what rsync keeps (seeds 1..200)', () => {
    const root = join(tempDir(), 'src');
    mkdirSync(root);
    buildTree(root);
    const treePaths = [...kept(root, FilterRules.compile([]))];
    const lists = Array.from({ length: 200 }, (_, i) => generatedList(i + 1, treePaths));
    const result = compare(root, tempDir(), lists);
    expect(result.mismatches).toEqual([]);
    // Most generated lists compile; the refused ones were checked to be lists rsync never matches with.
    expect(result.checked).toBeGreaterThan(140);
  });
});
