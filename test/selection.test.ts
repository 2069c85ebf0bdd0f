// Choosing what is backed up: rsync's filter rules (rsync itself computes the
// expected snapshot from the same rules), cache and tagged directories, mount
// points, what strace shows the walk never touches, and bad input.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LB, lb, rsync, rsyncDifferences, tempDir, umount, mountOrSkip } from './helpers.js';

const SIGNATURE = 'Signature: 8a477f597d28d172789f06886806bc55';

/** Runs a shell command line (so patterns can hold bytes that are not UTF-8, as $'\xff'), as bytes. */
function sh(line: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-c', line], { encoding: 'utf8', env: { ...process.env, LB: `${process.execPath} ${LB}` } });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function put(root: string, path: string, content = path): void {
  const full = join(root, path);
  mkdirSync(join(full, '..'), { recursive: true });
  writeFileSync(full, content);
}

/** A tree with names at several depths, names that are not UTF-8, and names that only a directory rule or an anchor tells apart. */
function messyTree(root: string): void {
  for (const path of [
    'top.log',
    'docs/top.log',
    'docs/a.tmp',
    'docs/keep.tmp',
    'docs/deep/er/b.tmp',
    'build/out.o',
    'src/build',
    'src/build.c',
    'photos/2024/thumbs/t1.jpg',
    'photos/2024/trip/thumbs/t2.jpg',
    'photos/thumbs',
    'photos/2024/img.jpg',
    'Thumbs.db',
    'music/thumbs.db',
    'cache1/x',
    'cache22/y',
    'a/b/c/d',
    'x/a/b/c/e',
    'a/b/cc',
  ]) {
    put(root, path);
  }
  const bytes = (name: string) => Buffer.concat([Buffer.from(root + '/'), Buffer.from(name, 'latin1')]);
  writeFileSync(bytes('\xffodd'), 'latin1 name');
  mkdirSync(bytes('caf\xe9'));
  writeFileSync(bytes('caf\xe9/menu'), 'menu');
  writeFileSync(bytes('caf\xe9/\xff\xfe'), 'two bytes');
}

const RULES = [
  "--include keep.tmp",
  "--exclude '*.tmp'",
  "--exclude build/",
  "--exclude /top.log",
  "--exclude 'photos/**/thumbs'",
  "--exclude $'\\xff*'",
  "--exclude 'cache?'",
  "--exclude '[Tt]humbs.db'",
  "--exclude a/b/c",
  "--exclude $'caf\\xe9/\\xff?'",
].join(' ');

describe('filter rules, with rsync as the oracle', () => {
  it('backs up exactly what rsync copies under the same rules, names that are not UTF-8 included', () => {
    const work = tempDir();
    const src = join(work, 'src');
    messyTree(src);
    const expected = join(work, 'expected');
    expect(sh(`rsync -a ${RULES} '${src}/' '${expected}/'`).status).toBe(0);
    const r = sh(`$LB ${RULES} -q --catalog '${work}/catalog' '${src}' '${work}/repo'`);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const tree = join(work, 'repo', 'latest', 'tree');
    expect(rsyncDifferences(expected, tree)).toEqual([]);
    // The rules did leave things out (the oracle would pass a tree that ignored them only if rsync had too).
    expect(existsSync(join(tree, 'docs', 'a.tmp'))).toBe(false);
    expect(existsSync(join(tree, 'docs', 'keep.tmp'))).toBe(true);
    expect(existsSync(join(tree, 'src', 'build'))).toBe(true); // a file: the directory rule passes it by
    expect(existsSync(join(tree, 'docs', 'top.log'))).toBe(true); // the anchor holds only at the root
    expect(readdirSync(Buffer.from(tree), { encoding: 'buffer' }).some((n) => n[0] === 0xff)).toBe(false);
  });

  it('reads rules from --exclude-from as rsync does: "+ " and "- " prefixes, comments, order kept with the options', () => {
    const work = tempDir();
    const src = join(work, 'src');
    messyTree(src);
    const rules = join(work, 'rules');
    writeFileSync(rules, Buffer.from('# photos\n; also a comment\n\n+ keep.tmp\n*.tmp\n- photos/**/thumbs\n\xff*\n/top.log\n', 'latin1'));
    const expected = join(work, 'expected');
    // The option before the file comes first: cache1 is kept by the include, cache22 excluded by the file's rule.
    const options = `--include cache1 --exclude-from '${rules}' --exclude 'cache*'`;
    expect(sh(`rsync -a ${options} '${src}/' '${expected}/'`).status).toBe(0);
    const r = sh(`$LB ${options} -q --catalog '${work}/catalog' '${src}' '${work}/repo'`);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(rsyncDifferences(expected, join(work, 'repo', 'latest', 'tree'))).toEqual([]);
    expect(existsSync(join(work, 'repo', 'latest', 'tree', 'cache1'))).toBe(true);
  });

  it('first match wins: an --include after the --exclude that matches comes too late', () => {
    const work = tempDir();
    const src = join(work, 'src');
    messyTree(src);
    const expected = join(work, 'expected');
    const options = "--exclude '*.tmp' --include keep.tmp";
    rsync(['-a', '--exclude', '*.tmp', '--include', 'keep.tmp', `${src}/`, `${expected}/`]);
    const r = sh(`$LB ${options} -q --catalog '${work}/catalog' '${src}' '${work}/repo'`);
    expect(r.status).toBe(0);
    expect(rsyncDifferences(expected, join(work, 'repo', 'latest', 'tree'))).toEqual([]);
    expect(existsSync(join(work, 'repo', 'latest', 'tree', 'docs', 'keep.tmp'))).toBe(false);
  });

  it('never lists, opens or stats anything below an excluded directory (strace)', () => {
    const work = tempDir();
    const src = join(work, 'src');
    for (let i = 0; i < 20; i++) put(src, `node_modules/pkg${i}/index.js`);
    put(src, 'node_modules/deep/er/file');
    put(src, 'app/main.js');
    const trace = join(work, 'trace');
    const r = spawnSync(
      'strace',
      ['-f', '-qq', '-e', 'trace=%file,%desc', '-o', trace, process.execPath, LB, '--exclude', 'node_modules/', '-q', '--catalog', join(work, 'catalog'), src, join(work, 'repo')],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(0);
    const lines = spawnSync('cat', [trace], { encoding: 'utf8' }).stdout.split('\n');
    const excluded = join(src, 'node_modules');
    const touched = lines.filter((line) => line.includes(`"${excluded}/`));
    expect(touched).toEqual([]);
    // The directory itself is lstat'ed (to know it is one) but never opened to be listed.
    expect(lines.filter((line) => /open(at)?\(/.test(line) && line.includes(`"${excluded}"`))).toEqual([]);
    // The trace does show the walk: a test that saw nothing would prove nothing.
    expect(lines.some((line) => line.includes(`"${join(src, 'app', 'main.js')}"`))).toBe(true);
    expect(existsSync(join(work, 'repo', 'latest', 'tree', 'node_modules'))).toBe(false);
  });
});

describe('tagged directories', () => {
  it('--exclude-caches keeps a valid CACHEDIR.TAG and drops the rest of its directory; an invalid or linked tag excludes nothing', () => {
    const work = tempDir();
    const src = join(work, 'src');
    put(src, 'valid/CACHEDIR.TAG', `${SIGNATURE}\n# made by a test\n`);
    put(src, 'valid/blob', 'cached');
    put(src, 'valid/sub/more', 'cached');
    put(src, 'invalid/CACHEDIR.TAG', 'Signature: not the right one');
    put(src, 'invalid/blob', 'kept');
    put(src, 'elsewhere/tag', SIGNATURE);
    put(src, 'linked/blob', 'kept');
    symlinkSync('../elsewhere/tag', join(src, 'linked', 'CACHEDIR.TAG'));
    const r = lb(['--exclude-caches', '-q', '--catalog', join(work, 'catalog'), src, join(work, 'repo')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const tree = join(work, 'repo', 'latest', 'tree');
    expect(readdirSync(join(tree, 'valid'))).toEqual(['CACHEDIR.TAG']);
    expect(readdirSync(join(tree, 'invalid')).sort()).toEqual(['CACHEDIR.TAG', 'blob']);
    expect(readdirSync(join(tree, 'linked')).sort()).toEqual(['CACHEDIR.TAG', 'blob']);
  });

  it('--exclude-if-present NAME keeps NAME and drops the rest of its directory, at any depth', () => {
    const work = tempDir();
    const src = join(work, 'src');
    put(src, 'a/b/.nobackup', '');
    put(src, 'a/b/secret', 's');
    put(src, 'a/b/c/deeper', 's');
    put(src, 'a/other', 'kept');
    const r = lb(['--exclude-if-present', '.nobackup', '-q', '--catalog', join(work, 'catalog'), src, join(work, 'repo')]);
    expect(r.status).toBe(0);
    const tree = join(work, 'repo', 'latest', 'tree');
    expect(readdirSync(join(tree, 'a', 'b'))).toEqual(['.nobackup']);
    expect(readdirSync(join(tree, 'a')).sort()).toEqual(['b', 'other']);
  });
});

describe('--one-file-system', () => {
  it('keeps a mount point inside the source as an empty directory, as rsync -x does; without it lb crosses', (ctx) => {
    const work = tempDir();
    const src = join(work, 'src');
    put(src, 'home/file', 'on the root filesystem');
    const mount = join(src, 'mnt');
    mountOrSkip(ctx, ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs'], mount);
    try {
      put(mount, 'inside/file', 'on the tmpfs');
      chmodSync(mount, 0o750);
      const expected = join(work, 'expected');
      rsync(['-a', '-x', `${src}/`, `${expected}/`]);
      const r = lb(['-x', '-q', '--catalog', join(work, 'catalog'), src, join(work, 'repo')]);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const tree = join(work, 'repo', 'latest', 'tree');
      expect(rsyncDifferences(expected, tree)).toEqual([]);
      expect(readdirSync(join(tree, 'mnt'))).toEqual([]);
      const crossing = lb(['-q', '--catalog', join(work, 'catalog'), src, join(work, 'crossing')]);
      expect(crossing.status).toBe(0);
      expect(rsyncDifferences(src, join(work, 'crossing', 'latest', 'tree'))).toEqual([]);
    } finally {
      umount(mount);
    }
  });
});

describe('--verify with a selection', () => {
  it('compares the snapshot with the source walked the same way: excluded paths are no difference', () => {
    const work = tempDir();
    const src = join(work, 'src');
    messyTree(src);
    put(src, 'c/CACHEDIR.TAG', SIGNATURE);
    put(src, 'c/blob', 'cached');
    const r = lb(['--verify', '--exclude', '*.tmp', '--exclude-caches', '--catalog', join(work, 'catalog'), src, join(work, 'repo')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).not.toMatch(/differ/);
  });
});

describe('bad selections: one line, nothing written', () => {
  const cases: [string, string[], RegExp][] = [
    ['an unclosed class', ['--exclude', 'photo[0-9'], /^lb: .*pattern.*photo\[0-9/],
    ['an empty pattern', ['--exclude', ''], /^lb: .*pattern/],
    ['a missing --exclude-from file', ['--exclude-from', '/nonexistent/rules'], /^lb: cannot read the exclude file \/nonexistent\/rules: /],
    ['a path as --exclude-if-present', ['--exclude-if-present', 'a/b'], /^lb: --exclude-if-present wants a file name/],
  ];
  for (const [what, args, message] of cases) {
    it(`refuses ${what}`, () => {
      const work = tempDir();
      const src = join(work, 'src');
      put(src, 'f');
      const r = lb([...args, src, join(work, 'repo')]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(existsSync(join(work, 'repo'))).toBe(false);
    });
  }

  it('refuses an --exclude-from file it may not read', () => {
    const work = tempDir();
    const src = join(work, 'src');
    put(src, 'f');
    const rules = join(work, 'rules');
    writeFileSync(rules, '*.tmp\n');
    chmodSync(rules, 0);
    // Root reads anything: read it as an unprivileged user through setpriv.
    chmodSync(work, 0o755);
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, LB, '--exclude-from', rules, src, join(work, 'repo')], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^lb: cannot read the exclude file .*rules: .*permission denied/i);
    expect(existsSync(join(work, 'repo'))).toBe(false);
  });
});
