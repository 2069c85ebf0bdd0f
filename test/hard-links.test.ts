// Source hard links (issue 12, "Fidelity"): recorded in the manifest (format 2),
// recreated by lb restore, and no others. Oracles independent of lb: rsync -aH
// (which compares hard links) and a Python grouping of files by (dev, ino).
import { spawn, spawnSync } from 'node:child_process';
import { linkSync, lstatSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameDecoder, FrameWriter } from '../src/protocol/frames.js';
import { PROTOCOL_VERSION, decodeAgentMessage } from '../src/protocol/messages.js';
import { ROOT, backup, lb, rsyncDifferences, settle, snapshots, tempDir } from './helpers.js';
import { startSshd, type Sshd } from './sshd.js';

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(() => sshd?.stop());

const MTIME = 1_700_000_000;

/**
 * Groups of 2 and 3 members across directories; a group whose content and metadata are also
 * those of an unlinked file (so all three share one object in the repository); a file whose
 * second link lies outside the source; and plain files.
 */
function linkedSource(work: string): string {
  const source = join(work, 'src');
  for (const dir of ['a', 'b', 'x', 'y', 'z/deep', 'c']) mkdirSync(join(source, dir), { recursive: true });
  writeFileSync(join(source, 'a', 'one'), 'group of two');
  linkSync(join(source, 'a', 'one'), join(source, 'b', 'one-again'));
  writeFileSync(join(source, 'x', 'three'), 'group of three');
  linkSync(join(source, 'x', 'three'), join(source, 'y', 'three-b'));
  linkSync(join(source, 'x', 'three'), join(source, 'z', 'deep', 'three-c'));
  writeFileSync(join(source, 'c', 'dup1'), 'same content');
  linkSync(join(source, 'c', 'dup1'), join(source, 'c', 'dup2'));
  writeFileSync(join(source, 'c', 'alone'), 'same content');
  writeFileSync(join(source, 'outside-linked'), 'its other link is not in the source');
  linkSync(join(source, 'outside-linked'), join(work, 'elsewhere'));
  writeFileSync(join(source, 'plain'), 'plain');
  for (const file of ['c/dup1', 'c/alone']) utimesSync(join(source, file), MTIME, MTIME);
  return source;
}

/** The hard-link groups of a tree, found by Python from (st_dev, st_ino): sorted lists of relative paths. */
function linkGroups(tree: string): string[][] {
  const script = `
import json, os, stat, sys
root = sys.argv[1]
groups = {}
for d, dirs, files in os.walk(root):
    for f in files:
        p = os.path.join(d, f)
        st = os.lstat(p)
        if stat.S_ISREG(st.st_mode):
            groups.setdefault((st.st_dev, st.st_ino), []).append(os.path.relpath(p, root))
print(json.dumps(sorted(sorted(g) for g in groups.values() if len(g) > 1)))
`;
  const r = spawnSync('python3', ['-c', script, tree], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as string[][];
}

const SOURCE_GROUPS = [['a/one', 'b/one-again'], ['c/dup1', 'c/dup2'], ['x/three', 'y/three-b', 'z/deep/three-c']];

function restoreAndCompare(source: string, repo: string, target: string): void {
  const r = lb(['restore', repo, target]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(rsyncDifferences(source, target)).toEqual([]);
  expect(linkGroups(target)).toEqual(linkGroups(source));
}

function manifestLines(repo: string, snapshot = 'latest'): string[] {
  return readFileSync(join(repo, snapshot, 'manifest'), 'utf8').trimEnd().split('\n');
}

describe('source hard links', () => {
  it('are recorded on a local backup, shown by ls, verified, and restored exactly, no others; an unchanged run writes nothing', () => {
    const work = tempDir();
    const source = linkedSource(work);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    expect(linkGroups(source)).toEqual(SOURCE_GROUPS);
    settle();
    backup(source, repo, catalog);
    expect(readFileSync(join(repo, '.lb', 'format'), 'utf8')).toBe('lb repository\nformat 2\nhash sha256\n');
    const manifest = manifestLines(repo);
    expect(manifest[0]).toBe('# lb manifest 2');
    const links = manifest.slice(1).map((line) => line.split('\t')).filter((f) => f[10] !== '-').map((f) => [f[2], f[10]]);
    expect(links).toEqual([['b/one-again', 'a/one'], ['c/dup2', 'c/dup1'], ['y/three-b', 'x/three'], ['z/deep/three-c', 'x/three']]);
    // In the repository the unlinked copy shares the group's object: cp -a of the tree would link it.
    expect(lstatSync(join(repo, 'latest', 'tree', 'c', 'alone')).ino).toBe(lstatSync(join(repo, 'latest', 'tree', 'c', 'dup1')).ino);

    const long = lb(['ls', '-l', repo, 'c']);
    expect(long.stdout).toMatch(/ c\/dup2 => c\/dup1\n/);
    expect(long.stdout).toMatch(/ c\/alone\n/);
    const json = JSON.parse(lb(['ls', '--json', '-R', repo]).stdout) as { path: string; linkTo?: string }[];
    expect(json.filter((e) => e.linkTo).map((e) => [e.path, e.linkTo])).toEqual(links);
    expect(lb(['verify', repo]).status).toBe(0);

    restoreAndCompare(source, repo, join(work, 'restored'));

    settle();
    const again = backup(source, repo, catalog);
    expect(again.created).toBe(false);
    expect(snapshots(repo)).toHaveLength(1);
  });

  it('make a snapshot when a link is broken or made, though no content or metadata changed', () => {
    const work = tempDir();
    const source = linkedSource(work);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    settle();
    backup(source, repo, catalog);
    // cp -p: the same content and metadata in an inode of its own.
    expect(spawnSync('cp', ['-p', join(source, 'y', 'three-b'), join(source, 'y', 'copy')]).status).toBe(0);
    expect(spawnSync('mv', [join(source, 'y', 'copy'), join(source, 'y', 'three-b')]).status).toBe(0);
    settle();
    const broken = backup(source, repo, catalog);
    expect(broken.created).toBe(true);
    expect(manifestLines(repo).filter((line) => line.includes('\ty/three-b\t'))[0]!.split('\t')[10]).toBe('-');
    restoreAndCompare(source, repo, join(work, 'restored-broken'));

    linkSync(join(source, 'plain'), join(source, 'plain-too'));
    settle();
    const made = backup(source, repo, catalog);
    expect(made.created).toBe(true);
    restoreAndCompare(source, repo, join(work, 'restored-made'));
  });

  it('are pulled from a remote source over SSH and restored exactly', () => {
    const work = tempDir();
    const source = linkedSource(work);
    const repo = join(work, 'pulled');
    const pull = () => lb(['backup', `root@127.0.0.1:${source}`, repo, '--json', '--ssh-p', String(sshd.port)], sshd.env);
    settle();
    const first = pull();
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    restoreAndCompare(source, repo, join(work, 'restored'));
    expect(JSON.parse(pull().stdout).created).toBe(false);
  });

  it('restore --path: a member whose first is not selected is a copy, and its group\'s next members link to it', () => {
    const work = tempDir();
    const source = linkedSource(work);
    const repo = join(work, 'repo');
    backup(source, repo, join(work, 'catalog.sqlite'));
    const target = join(work, 'restored');
    const r = lb(['restore', repo, target, '--path', 'b', '--path', 'y', '--path', 'z']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(linkGroups(target)).toEqual([['y/three-b', 'z/deep/three-c']]);
    expect(lstatSync(join(target, 'b', 'one-again')).nlink).toBe(1);
    expect(readFileSync(join(target, 'z', 'deep', 'three-c'), 'utf8')).toBe('group of three');
  });

  it('lb verify finds a member whose named first is missing or another inode, and a link to a later path', () => {
    const work = tempDir();
    const source = linkedSource(work);
    const repo = join(work, 'repo');
    backup(source, repo, join(work, 'catalog.sqlite'));
    const manifest = join(repo, snapshots(repo)[0]!, 'manifest');
    const original = readFileSync(manifest, 'utf8');
    const relink = (member: string, first: string) =>
      writeFileSync(manifest, original.replace(new RegExp(`(\\t${member}\\t.*\\t)[^\\t]*\\n`), `$1${first}\n`));
    const problems = () => JSON.parse(lb(['verify', repo, '--json']).stdout).problems as { kind: string; path?: string; detail: string }[];

    relink('b/one-again', 'a/none');
    expect(problems()).toEqual([expect.objectContaining({ kind: 'link', path: 'b/one-again', detail: expect.stringMatching(/"a\/none" as its hard-link group's first, which is not in the tree/) })]);
    relink('c/dup2', 'a/one');
    expect(problems()).toEqual([expect.objectContaining({ kind: 'link', path: 'c/dup2', detail: expect.stringMatching(/not the same inode as "a\/one"/) })]);
    relink('b/one-again', 'c/dup1');
    expect(problems()).toEqual([expect.objectContaining({ kind: 'manifest', detail: expect.stringMatching(/hard link that is not to an earlier path/) })]);
    writeFileSync(manifest, original);
    expect(lb(['verify', repo]).status).toBe(0);
  });
});

/** A format 1 repository, as FORMAT.md's format 1 section spells it: format file, manifest header, ten fields. */
function toFormat1(repo: string): void {
  writeFileSync(join(repo, '.lb', 'format'), 'lb repository\nformat 1\nhash sha256\n');
  for (const name of snapshots(repo)) {
    const lines = manifestLines(repo, name);
    const records = lines.slice(1).map((line) => line.split('\t').slice(0, 10).join('\t'));
    writeFileSync(join(repo, name, 'manifest'), ['# lb manifest 1', ...records].join('\n') + '\n');
  }
}

describe('a format 1 repository', () => {
  it('stays readable and restorable; the next backup with a new snapshot upgrades it to format 2, its old snapshot still read', () => {
    const work = tempDir();
    const source = linkedSource(work);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    settle();
    backup(source, repo, catalog);
    toFormat1(repo);
    const [old] = snapshots(repo);
    expect(lb(['list', repo]).status).toBe(0);
    expect(lb(['ls', '-l', repo, 'c']).stdout).not.toMatch(/=>/);
    expect(lb(['verify', repo]).status).toBe(0);
    expect(lb(['du', repo]).status).toBe(0);
    expect(lb(['log', repo, 'plain']).status).toBe(0);
    const target = join(work, 'restored-old');
    expect(lb(['restore', repo, target]).status).toBe(0);
    // Format 1 records no groups: every file comes back on its own.
    expect(rsyncDifferences(source, target, { hardLinks: false })).toEqual([]);
    expect(linkGroups(target)).toEqual([]);

    settle();
    const upgraded = backup(source, repo, catalog);
    expect(upgraded.created).toBe(true); // the groups are recorded now: a change
    expect(readFileSync(join(repo, '.lb', 'format'), 'utf8')).toBe('lb repository\nformat 2\nhash sha256\n');
    expect(manifestLines(repo, old!)[0]).toBe('# lb manifest 1');
    expect(lb(['diff', repo]).status).toBe(0);
    expect(lb(['verify', repo]).status).toBe(0);
    restoreAndCompare(source, repo, join(work, 'restored-new'));
    expect(lb(['restore', repo, old!, join(work, 'restored-old-again')]).status).toBe(0);
  });

  it('is left untouched, still format 1, by an unchanged run', () => {
    const work = tempDir();
    const source = join(work, 'src');
    mkdirSync(join(source, 'd'), { recursive: true });
    writeFileSync(join(source, 'd', 'f'), 'no links here');
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog.sqlite');
    settle();
    backup(source, repo, catalog);
    toFormat1(repo);
    const manifest = readFileSync(join(repo, snapshots(repo)[0]!, 'manifest'));
    settle();
    expect(backup(source, repo, catalog).created).toBe(false);
    expect(snapshots(repo)).toHaveLength(1);
    expect(readFileSync(join(repo, '.lb', 'format'), 'utf8')).toBe('lb repository\nformat 1\nhash sha256\n');
    expect(readFileSync(join(repo, snapshots(repo)[0]!, 'manifest'))).toEqual(manifest);
  });
});

// ---- a malicious source naming hard links it has no right to ----

const fileEntry = (path: string, link?: unknown) => ({ p: path, k: 'f', s: 1, m: '0', mo: 0o644, u: 0, g: 0, h: 'a'.repeat(64), ...(link === undefined ? {} : { ln: link }) });
const dirEntry = (path: string) => ({ p: path, k: 'd', s: 0, m: '0', mo: 0o755, u: 0, g: 0 });

/** Sends raw (already encoded) entries to a fresh agent, as test/hostile-peer.test.ts does; its last reply and exit code. */
async function talk(repository: string, entries: object[]): Promise<{ last?: { t: string; message?: string }; code: number }> {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'agent.cjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const writer = new FrameWriter(child.stdin);
  const decoder = new FrameDecoder();
  const replies: { t: string; message?: string }[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    for (const f of decoder.push(chunk)) if (f.type === 1) replies.push(decodeAgentMessage(f.message) as { t: string });
  });
  const options = { snapshotName: '2026.01.01-00.00.00', always: false, numericIds: false, verbose: false, quickCheck: false, sourceLabel: 'evil', purpose: 'backup' };
  for (const m of [{ t: 'hello', version: PROTOCOL_VERSION, repository, options }, { t: 'entries', first: 0, entries }, { t: 'end', incomplete: false }]) {
    await writer.send(m);
  }
  writer.end();
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  return { last: replies.at(-1), code };
}

describe('the agent against a source naming hard links it may not', () => {
  const attacks: [string, object[], RegExp][] = [
    ['a later entry', [dirEntry(''), fileEntry('a', 2), fileEntry('b', 'first')], /hard link to a later entry or to itself/],
    ['itself', [dirEntry(''), fileEntry('a', 1)], /hard link to a later entry or to itself/],
    ['a directory', [dirEntry(''), dirEntry('d'), fileEntry('e', 1)], /entry 1, which begins no hard-link group/],
    ['a file that begins no group', [dirEntry(''), fileEntry('a'), fileEntry('b', 1)], /entry 1, which begins no hard-link group/],
    ['a group from a directory', [dirEntry(''), { ...dirEntry('d'), ln: 'first' }], /hard link on a non-file/],
    ['a negative index', [dirEntry(''), fileEntry('a', 'first'), fileEntry('b', -1)], /invalid hard link/],
  ];
  for (const [name, entries, refusal] of attacks) {
    it(`refuses a link to ${name}, and writes no snapshot`, async () => {
      const work = tempDir();
      const repo = join(work, 'repo');
      const { last, code } = await talk(repo, entries);
      expect(code).toBe(1);
      expect(last?.t).toBe('error');
      expect(last?.message).toMatch(refusal);
      expect(snapshots(repo)).toEqual([]);
      expect(readdirSync(join(repo, '.lb', 'tmp'))).toEqual([]);
    });
  }
});
