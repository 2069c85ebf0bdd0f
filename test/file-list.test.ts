// `--filelist`'s list (src/scan/file-list.ts) on its own: parsing bytes into
// normalized paths, refusing paths that leave the source, what the walk is told
// about each name, the form it travels in, and the check against a real tree.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileList, FileListError } from '../src/scan/file-list.js';
import { tempDir } from './helpers.js';

const ORIGIN = 'the file list L';

function parse(list: string | Buffer, nul = false): FileList {
  return FileList.parse(Buffer.isBuffer(list) ? list : Buffer.from(list), nul, ORIGIN);
}

/** The normalized paths, as the wire carries them. */
function paths(list: FileList): Buffer[] {
  const joined = list.toWire();
  if (joined.length === 0) return [];
  const out: Buffer[] = [];
  let start = 0;
  for (let end = joined.indexOf(0); end >= 0; end = joined.indexOf(0, start)) {
    out.push(joined.subarray(start, end));
    start = end + 1;
  }
  out.push(joined.subarray(start));
  return out;
}

function texts(list: FileList): string[] {
  return paths(list).map((p) => p.toString());
}

/** The one-line message `parse` refuses `list` with. */
function refusal(list: string | Buffer, nul = false): string {
  try {
    parse(list, nul);
  } catch (error) {
    expect(error).toBeInstanceOf(FileListError);
    return (error as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(list.toString())}`);
}

describe('parsing a file list', () => {
  it('normalizes ./a//b/ to a/b, ignores empty lines, and keeps each path once', () => {
    const list = parse('./a//b/\n\n\nc\n./c/\nd/./e\n');
    expect(texts(list)).toEqual(['a/b', 'c', 'd/e']);
    expect(list.everything).toBe(false);
  });

  it('takes `.` (or `./`) as the whole source, and an empty list as nothing at all', () => {
    for (const root of ['.', './', './/.', '.\nsub/file']) {
      const list = parse(root);
      expect(list.everything).toBe(true);
      expect(paths(list)[0]!.toString()).toBe('.');
    }
    const empty = parse('\n\n');
    expect(empty.everything).toBe(false);
    expect(empty.toWire().length).toBe(0);
    expect(empty.wanted('', Buffer.from('anything'))).toBeUndefined();
  });

  it('tells the walk which names come whole and which only lead to listed paths', () => {
    const list = parse('photos/2024/summer\nnotes.txt\n');
    expect(list.wanted('', Buffer.from('photos'))).toBe('through');
    expect(list.wanted('photos', Buffer.from('2024'))).toBe('through');
    expect(list.wanted('photos/2024', Buffer.from('summer'))).toBe('whole');
    expect(list.wanted('', Buffer.from('notes.txt'))).toBe('whole');
    expect(list.wanted('', Buffer.from('other'))).toBeUndefined();
    expect(list.wanted('photos', Buffer.from('2023'))).toBeUndefined();
  });

  it('keeps a directory listed whole whole, whether a path below it is listed before or after it', () => {
    for (const text of ['a\na/b/c\n', 'a/b/c\na\n']) {
      const list = parse(text);
      expect(list.wanted('', Buffer.from('a'))).toBe('whole');
      expect(texts(list)).toEqual(['a', 'a/b/c']);
    }
  });

  it('with -0, carries any name byte for byte: newlines, 0xff, spaces, a leading dash', () => {
    const names = [Buffer.from('new\nline'), Buffer.from([0xff, 0xfe]), Buffer.from(' spaced name '), Buffer.from('-leading'), Buffer.from('dir\nx/caf\xe9', 'latin1')];
    const list = parse(Buffer.concat(names.flatMap((n) => [n, Buffer.from([0])])), true);
    expect(paths(list)).toEqual(names);
    expect(list.wanted('', Buffer.from([0xff, 0xfe]))).toBe('whole');
    expect(list.wanted('dir\nx', Buffer.from('caf\xe9', 'latin1'))).toBe('whole');
    // As it travels to a remote source and is read back there.
    expect(paths(FileList.fromWire(list.toWire()))).toEqual(names);
  });

  it('without -0, a line is a path: spaces and a trailing carriage return are part of the name', () => {
    expect(texts(parse(' a \nb\r\n'))).toEqual([' a ', 'b\r']);
  });

  it('refuses an absolute path, any `..`, and a NUL byte, each in one line naming the list', () => {
    const cases: [string | Buffer, RegExp][] = [
      ['/etc/passwd\n', /^the file list L names "\/etc\/passwd", an absolute path: list paths relative to the source$/],
      ['ok\n../outside\n', /^the file list L names "\.\.\/outside", with a '\.\.' in it: list paths inside the source, without '\.\.'$/],
      ['a/../../b\n', /^the file list L names "a\/\.\.\/\.\.\/b", .*'\.\.'$/],
      ['a/..\n', /'\.\.'$/],
      [Buffer.from('a\0b\n'), /^the file list L names a path with a NUL byte$/],
    ];
    for (const [list, message] of cases) expect(refusal(list)).toMatch(message);
    expect(refusal(Buffer.from('ok\0/abs\0'), true)).toMatch(/an absolute path/);
  });
});

describe('checking a file list against the source', () => {
  function tree(): string {
    const root = tempDir();
    mkdirSync(join(root, 'dir', 'sub'), { recursive: true });
    writeFileSync(join(root, 'dir', 'sub', 'file'), 'f');
    writeFileSync(join(root, 'plain'), 'p');
    symlinkSync('dir', join(root, 'link-to-dir'));
    symlinkSync('plain', join(root, 'link-to-file'));
    return root;
  }

  function checkRefusal(root: string, text: string): string {
    try {
      parse(text).check(root, ORIGIN);
    } catch (error) {
      expect(error).toBeInstanceOf(FileListError);
      return (error as Error).message;
    }
    throw new Error(`accepted ${JSON.stringify(text)}`);
  }

  it('accepts paths that are there, symlinks listed themselves included', () => {
    const root = tree();
    expect(() => parse('dir/sub/file\nplain\nlink-to-dir\nlink-to-file\ndir\n.\n').check(root, ORIGIN)).not.toThrow();
  });

  it('refuses a missing path, and a path through a file or a symlink, in one line each', () => {
    const root = tree();
    expect(checkRefusal(root, 'dir/nope\n')).toBe('the file list L names "dir/nope", which is not in the source');
    expect(checkRefusal(root, 'plain/x\n')).toBe('the file list L names paths inside "plain", which is not a directory');
    expect(checkRefusal(root, 'link-to-dir/sub/file\n')).toMatch(/^the file list L names paths inside "link-to-dir", which is a symlink/);
  });

  it('refuses a path through a symlink even when the symlink itself is listed too', () => {
    // The walk keeps `link-to-dir` as a symlink and never follows it: `link-to-dir/sub` would silently be missing.
    const root = tree();
    for (const text of ['link-to-dir\nlink-to-dir/sub\n', 'link-to-dir/sub\nlink-to-dir\n']) {
      expect(checkRefusal(root, text)).toMatch(/^the file list L names paths inside "link-to-dir", which is a symlink/);
    }
    expect(checkRefusal(root, 'plain\nplain/x\n')).toMatch(/^the file list L names (paths inside "plain", which is not a directory|"plain\/x", which is not in the source)$/);
  });
});
