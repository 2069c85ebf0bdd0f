// lb dedupe on real trees: identical files end as one inode, near-identical
// ones never do, nothing's content or metadata changes, a dry run changes no
// inode, a concurrent reader never misses a path, a file changed mid-run is
// left alone, and a second run over an unchanged tree reads no file (strace).
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LB, ROOT, lb, mountExt4OrSkip, openedPaths, settle, tempDir, umount } from './helpers.js';

interface Facts {
  ino: number;
  sha256: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtimeMs: number;
}

/** Every regular file's content and metadata, by path relative to `root`. */
function facts(root: string, dir = ''): Map<string, Facts> {
  const out = new Map<string, Facts>();
  for (const name of readdirSync(join(root, dir)).sort()) {
    const rel = dir ? `${dir}/${name}` : name;
    const stat = lstatSync(join(root, rel));
    if (stat.isDirectory()) for (const [k, v] of facts(root, rel)) out.set(k, v);
    else if (stat.isFile()) {
      out.set(rel, {
        ino: stat.ino,
        sha256: createHash('sha256').update(readFileSync(join(root, rel))).digest('hex'),
        size: stat.size,
        mode: stat.mode,
        uid: stat.uid,
        gid: stat.gid,
        mtimeMs: stat.mtimeMs,
      });
    }
  }
  return out;
}

const withoutInode = (f: Facts) => ({ ...f, ino: 0 });

const OLD = 1_500_000_000; // seconds: a fixed, long-past mtime

/**
 * A tree of photo-like files: `a/` originals, `b/` exact copies (same metadata),
 * `c/` copies with another mtime, `d/` same size but one byte different, `e/`
 * copies with another mode, `g/` same size and metadata but other bytes from the
 * start; plus an empty pair and a symlink.
 */
function makeTree(root: string): void {
  for (const d of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) mkdirSync(join(root, d), { recursive: true });
  for (let i = 0; i < 12; i++) {
    const content = randomBytes(20_000 + i * 1000);
    const name = `img-${i}.jpg`;
    writeFileSync(join(root, 'a', name), content);
    writeFileSync(join(root, 'b', name), content);
    writeFileSync(join(root, 'c', name), content);
    const near = Buffer.from(content);
    near[near.length - 1] = near[near.length - 1]! ^ 1;
    writeFileSync(join(root, 'd', name), near);
    writeFileSync(join(root, 'e', name), content);
    chmodSync(join(root, 'e', name), 0o600);
    writeFileSync(join(root, 'g', name), randomBytes(content.length));
    for (const d of ['a', 'b', 'd', 'e', 'g']) utimesSync(join(root, d, name), OLD, OLD);
    utimesSync(join(root, 'c', name), OLD + 3600, OLD + 3600);
  }
  writeFileSync(join(root, 'f', 'empty-1'), '');
  writeFileSync(join(root, 'f', 'empty-2'), '');
  symlinkSync('../a/img-0.jpg', join(root, 'f', 'link'));
}

describe('lb dedupe', () => {
  it('links identical files with equal metadata into one inode and leaves everything else as it was', () => {
    const work = tempDir();
    const root = join(work, 'tree');
    makeTree(root);
    const before = facts(root);
    const r = lb(['dedupe', root, '--json', '--catalog', join(work, 'c.sqlite')]);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    const after = facts(root);

    // Contents and metadata of every path are unchanged.
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [path, f] of before) expect(withoutInode(after.get(path)!), path).toEqual(withoutInode(f));
    for (let i = 0; i < 12; i++) {
      const name = `img-${i}.jpg`;
      const [a, b, c, d, e, g] = ['a', 'b', 'c', 'd', 'e', 'g'].map((dir) => after.get(`${dir}/${name}`)!.ino);
      expect(b).toBe(a); // same content, same metadata: one inode
      expect(g).not.toBe(a); // other bytes
      expect(c).not.toBe(a); // another mtime
      expect(d).not.toBe(a); // one byte differs
      expect(e).not.toBe(a); // another mode
    }
    expect(after.get('f/empty-1')!.ino).not.toBe(after.get('f/empty-2')!.ino);
    expect(readlinkSync(join(root, 'f', 'link'))).toBe('../a/img-0.jpg');
    expect(report.files.linked).toBe(12);
    expect(report.groups).toBe(12);
    let sizes = 0;
    for (let i = 0; i < 12; i++) sizes += 20_000 + i * 1000;
    expect(report.bytes.reclaimed).toBe(sizes);
    // No temporary names left behind.
    for (const d of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) expect(readdirSync(join(root, d)).filter((n) => n.startsWith('.lb-dedupe'))).toEqual([]);
  });

  it('with --content-only, links equal contents whatever their metadata, all showing the kept file\'s', () => {
    const work = tempDir();
    const root = join(work, 'tree');
    makeTree(root);
    const r = lb(['dedupe', root, '--content-only', '--json', '--catalog', join(work, 'c.sqlite')]);
    expect(r.status, r.stderr).toBe(0);
    const after = facts(root);
    for (let i = 0; i < 12; i++) {
      const name = `img-${i}.jpg`;
      const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((dir) => after.get(`${dir}/${name}`)!);
      expect(new Set([a!.ino, b!.ino, c!.ino, e!.ino]).size).toBe(1);
      expect(d!.ino).not.toBe(a!.ino);
      // The kept file is the first path in byte order among equals (a/): its metadata is what all now show.
      expect(c!.mtimeMs).toBe(OLD * 1000);
      expect(e!.mode & 0o777).toBe(0o644);
    }
  });

  it('changes no inode in a dry run, and reports what a real run then does', () => {
    const work = tempDir();
    const root = join(work, 'tree');
    makeTree(root);
    const before = facts(root);
    const dry = lb(['dedupe', root, '--dry-run', '--json', '--catalog', join(work, 'c.sqlite')]);
    expect(dry.status, dry.stderr).toBe(0);
    expect(facts(root)).toEqual(before);
    const real = lb(['dedupe', root, '--json', '--catalog', join(work, 'c.sqlite')]);
    const [d, rr] = [JSON.parse(dry.stdout), JSON.parse(real.stdout)];
    expect([d.files.linked, d.groups, d.bytes.reclaimed]).toEqual([rr.files.linked, rr.groups, rr.bytes.reclaimed]);
  });

  it('reads no file contents when run again over the unchanged tree (strace)', () => {
    const work = tempDir();
    const root = join(work, 'tree');
    makeTree(root);
    settle();
    const catalog = join(work, 'c.sqlite');
    expect(lb(['dedupe', root, '--catalog', catalog]).status).toBe(0);
    const { run, opened } = openedPaths(['dedupe', root, '--json', '--catalog', catalog]);
    expect(run.status, run.stderr).toBe(0);
    const files = opened.filter((p) => p.startsWith(root + '/') && lstatSync(p, { throwIfNoEntry: false })?.isFile());
    expect(files).toEqual([]);
    const report = JSON.parse(run.stdout);
    expect([report.bytes.read, report.files.linked]).toEqual([0, 0]);
  });

  it('tells a pair of same-size files apart by their first bytes without reading them whole, and reads neither again', () => {
    const work = tempDir();
    const root = join(work, 'tree');
    mkdirSync(root);
    const size = 3 * 1024 * 1024; // more than one chunk of reading
    const pairs: [string, Buffer, Buffer][] = [
      ['apart', randomBytes(size), randomBytes(size)],
      ['same', ...(() => {
        const b = randomBytes(size + 1);
        return [b, b] as [Buffer, Buffer];
      })()],
    ];
    const near = randomBytes(size + 2);
    const nearCopy = Buffer.from(near);
    nearCopy[size] = nearCopy[size]! ^ 1;
    pairs.push(['near', near, nearCopy]);
    for (const [name, one, two] of pairs) {
      writeFileSync(join(root, `${name}-1`), one);
      writeFileSync(join(root, `${name}-2`), two);
      utimesSync(join(root, `${name}-1`), OLD, OLD);
      utimesSync(join(root, `${name}-2`), OLD, OLD);
    }
    settle();
    const catalog = join(work, 'c.sqlite');
    const first = lb(['dedupe', root, '--json', '--catalog', catalog]);
    expect(first.status, first.stderr).toBe(0);
    const report = JSON.parse(first.stdout);
    expect([report.files.linked, report.collisions, report.files.hashed]).toEqual([1, 0, 6]);
    // `apart`: one chunk of each; `same` and `near`: all of both.
    expect(report.bytes.read).toBe(2 * 1024 * 1024 + 2 * (size + 1) + 2 * (size + 2));
    expect(lstatSync(join(root, 'same-1')).ino).toBe(lstatSync(join(root, 'same-2')).ino);
    expect(lstatSync(join(root, 'near-1')).ino).not.toBe(lstatSync(join(root, 'near-2')).ino);
    const { run, opened } = openedPaths(['dedupe', root, '--json', '--catalog', catalog]);
    expect(run.status, run.stderr).toBe(0);
    expect(opened.filter((p) => p.startsWith(root + '/'))).toEqual([]);
    const again = JSON.parse(run.stdout);
    expect([again.bytes.read, again.files.linked, again.collisions]).toEqual([0, 0, 0]);
  });

  it('never lets a concurrent reader see a missing path', async () => {
    const work = tempDir();
    const root = join(work, 'tree');
    mkdirSync(join(root, 'x'), { recursive: true });
    mkdirSync(join(root, 'y'));
    const paths: string[] = [];
    for (let i = 0; i < 1500; i++) {
      const content = randomBytes(2000);
      for (const d of ['x', 'y']) {
        const p = join(root, d, `f${i}`);
        writeFileSync(p, content);
        utimesSync(p, OLD, OLD);
        paths.push(p);
      }
    }
    const list = join(work, 'paths.json');
    writeFileSync(list, JSON.stringify(paths));
    // The reader opens every path over and over until told to stop, counting failures.
    const reader = spawn(
      process.execPath,
      [
        '-e',
        `const fs=require('fs');const paths=JSON.parse(fs.readFileSync(process.argv[1],'utf8'));let missing=0,rounds=0,stop=false;
         process.stdin.on('data',()=>stop=true);
         (function loop(){for(const p of paths){try{fs.readFileSync(p)}catch(e){missing++}}rounds++;if(stop){console.log(JSON.stringify({missing,rounds}));process.exit(0)}setImmediate(loop)})();`,
        list,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    let out = '';
    reader.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<void>((resolve) => reader.on('close', () => resolve()));
    const r = lb(['dedupe', root, '--json', '--catalog', join(work, 'c.sqlite')]);
    reader.stdin.write('stop\n');
    await exited;
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).files.linked).toBe(1500);
    const seen = JSON.parse(out) as { missing: number; rounds: number };
    expect(seen.rounds).toBeGreaterThan(1);
    expect(seen.missing).toBe(0);
  });

  it('leaves alone a file that changes while it is being read', async () => {
    const work = tempDir();
    const root = join(work, 'tree');
    mkdirSync(root);
    const content = randomBytes(3 * 1024 * 1024);
    for (const name of ['one', 'two']) {
      writeFileSync(join(root, name), content);
      utimesSync(join(root, name), OLD, OLD);
    }
    const target = join(root, 'two');
    // Every read of `two` takes half a second: time for the test to change it once lb has it open.
    const child = spawn(
      'strace',
      ['-f', '-qq', '-o', '/dev/null', '-P', target, '-e', 'trace=read,pread64', '-e', 'inject=read,pread64:delay_exit=500000', process.execPath, LB, 'dedupe', root, '--json', '--catalog', join(work, 'c.sqlite')],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    let finished = false;
    const exited = new Promise<number>((resolve) =>
      child.on('close', (code) => {
        finished = true;
        resolve(code ?? -1);
      }),
    );
    const lbPid = () => spawnSync('pgrep', ['-f', `${LB} dedupe ${root}`], { encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean).map(Number);
    const hasOpen = () =>
      lbPid().some((pid) => {
        try {
          return readdirSync(`/proc/${pid}/fd`).some((fd) => {
            try {
              return readlinkSync(`/proc/${pid}/fd/${fd}`) === target;
            } catch {
              return false;
            }
          });
        } catch {
          return false;
        }
      });
    while (!hasOpen() && !finished) await new Promise((r) => setTimeout(r, 10));
    expect(finished, 'lb finished before the test saw it open the file').toBe(false);
    appendFileSync(target, 'more');
    expect(await exited).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.files.linked).toBe(0);
    expect(report.files.changed).toBe(1);
    expect(lstatSync(join(root, 'one')).ino).not.toBe(lstatSync(target).ino);
    expect(readFileSync(target).subarray(-4).toString()).toBe('more');
  });

  it('leaves alone a file gone when it is opened, and reports one that cannot be read (injected ENOENT, EIO)', () => {
    for (const [errno, changed, status] of [
      ['ENOENT', 1, 0],
      ['EIO', 0, 3],
    ] as const) {
      const work = tempDir();
      const root = join(work, 'tree');
      mkdirSync(root);
      const content = randomBytes(50_000);
      for (const name of ['one', 'two', 'three']) {
        writeFileSync(join(root, name), content);
        utimesSync(join(root, name), OLD, OLD);
      }
      const failing = join(root, 'two');
      const r = spawnSync(
        'strace',
        ['-f', '-qq', '-o', '/dev/null', '-P', failing, '-e', 'trace=openat', '-e', `inject=openat:error=${errno}`, process.execPath, LB, 'dedupe', root, '--json', '--catalog', join(work, 'c.sqlite')],
        { encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(status);
      const report = JSON.parse(r.stdout);
      expect(report.files.changed, errno).toBe(changed);
      expect(report.skipped.length, errno).toBe(1 - changed);
      if (errno === 'EIO') expect(r.stderr).toMatch(/two.*cannot read/);
      // The two that could be read are linked; the third is left as it was.
      expect(report.files.linked, errno).toBe(1);
      expect(lstatSync(join(root, 'one')).ino).toBe(lstatSync(join(root, 'three')).ino);
      expect(lstatSync(failing).ino).not.toBe(lstatSync(join(root, 'one')).ino);
      expect(readFileSync(failing).equals(content)).toBe(true);
    }
  });

  it('starts a new group at the hard-link limit (real EMLINK on ext4)', (ctx) => {
    const work = tempDir();
    const mnt = join(work, 'mnt');
    mountExt4OrSkip(ctx, join(work, 'ext4.img'), 128, mnt, 70_000);
    try {
      const copies = 65_010;
      for (let i = 0; i < copies; i++) {
        const dir = join(mnt, `d${Math.floor(i / 5000)}`);
        if (i % 5000 === 0) mkdirSync(dir);
        writeFileSync(join(dir, `f${i}`), 'same\n');
        utimesSync(join(dir, `f${i}`), OLD, OLD);
      }
      const r = lb(['dedupe', mnt, '--json', '--catalog', join(work, 'c.sqlite')]);
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout);
      // 65,000 paths share the first inode; the ten left over become a second group.
      expect(report.files.linked).toBe(copies - 2);
      const links = new Map<number, number>();
      for (let i = 0; i < copies; i++) {
        const stat = lstatSync(join(mnt, `d${Math.floor(i / 5000)}`, `f${i}`));
        links.set(stat.ino, stat.nlink);
        expect(stat.size).toBe(5);
      }
      expect([...links.values()].sort((a, b) => b - a)).toEqual([65_000, 10]);
    } finally {
      umount(mnt);
    }
  });

  it('says in one line when the directory is missing or not a directory', () => {
    const work = tempDir();
    const missing = lb(['dedupe', join(work, 'nope')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe(`lb: ${join(work, 'nope')} does not exist\n`);
    writeFileSync(join(work, 'file'), 'x');
    const file = lb(['dedupe', join(work, 'file')]);
    expect(file.status).toBe(2);
    expect(file.stderr).toBe(`lb: ${join(work, 'file')} is not a directory\n`);
    expect(existsSync(join(ROOT, 'nope'))).toBe(false);
  });
});
