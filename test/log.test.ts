// lb log on a repository made by the real lb from a source where one file is created,
// edited, chmod'ed, touched, moved to another directory and deleted, another goes and
// comes back, and a directory changes: lb's events checked against the facts Python
// reads from the snapshot trees on disk (lstat and SHA-256, no lb code).
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, copyFileSync, mkdirSync, renameSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, lb, settle, tempDir } from './helpers.js';

const CAFE = Buffer.from('caf\xe9.txt', 'latin1');

function historyRepository(): { work: string; repo: string; source: string; names: string[] } {
  const work = tempDir();
  const source = join(work, 'src');
  const repo = join(work, 'repo');
  const catalog = join(work, 'catalog.sqlite');
  const at = (path: string) => join(source, path);
  const names: string[] = [];
  const snap = () => {
    settle();
    names.push(backup(source, repo, catalog).snapshot!);
  };
  mkdirSync(at('docs'), { recursive: true });
  mkdirSync(at('albums'));
  writeFileSync(at('docs/report.txt'), 'draft\n');
  writeFileSync(at('notes.txt'), 'notes\n');
  writeFileSync(at('albums/a.jpg'), 'jpeg');
  writeFileSync(Buffer.concat([Buffer.from(at('albums') + '/'), CAFE]), 'latin-1 name');
  snap(); // 1: created
  writeFileSync(at('docs/report.txt'), 'the final report\n');
  unlinkSync(at('notes.txt'));
  snap(); // 2: edited; notes gone
  chmodSync(at('docs/report.txt'), 0o600);
  writeFileSync(at('notes.txt'), 'notes\n');
  snap(); // 3: chmod'ed; notes back
  utimesSync(at('docs/report.txt'), 1_700_000_000, 1_700_000_000);
  mkdirSync(at('album-copies'));
  copyFileSync(at('docs/report.txt'), at('album-copies/report.txt')); // the same content, there before the move
  snap(); // 4: touched
  mkdirSync(at('archive/2026'), { recursive: true });
  renameSync(at('docs/report.txt'), at('archive/2026/report.txt'));
  snap(); // 5: moved to another directory
  unlinkSync(at('archive/2026/report.txt'));
  chmodSync(at('docs'), 0o700);
  snap(); // 6: deleted; docs chmod'ed
  return { work, repo, source, names };
}

interface Fact {
  type: string;
  size: number;
  hash: string;
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: string;
}

/** Per snapshot, every entry of its tree as Python sees it, keyed by hex of the path's bytes. */
const FACTS = `
import hashlib, json, os, stat, sys
out = []
for tree in sys.argv[1:]:
    root = os.fsencode(tree)
    facts = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(top, name)
            st = os.lstat(full)
            kind = 'dir' if stat.S_ISDIR(st.st_mode) else 'symlink' if stat.S_ISLNK(st.st_mode) else 'file'
            digest = hashlib.sha256(open(full, 'rb').read()).hexdigest() if kind == 'file' else ''
            facts[os.path.relpath(full, root).hex()] = dict(type=kind, size=st.st_size if kind == 'file' else 0, hash=digest,
                mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, mtimeNs=str(st.st_mtime_ns))
    out.append(facts)
print(json.dumps(out))
`;

function treeFacts(repo: string, names: string[]): Map<string, Fact>[] {
  const r = spawnSync('python3', ['-c', FACTS, ...names.map((name) => join(repo, name, 'tree'))], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return (JSON.parse(r.stdout) as Record<string, Fact>[]).map((facts) => new Map(Object.entries(facts)));
}

interface LogEvent extends Omit<Fact, 'type'> {
  snapshot: string;
  event: string;
  type: string;
  target: string | null;
  changes?: string[];
  to?: string;
}

interface LogJson {
  path: string;
  pathBase64?: string;
  snapshots: number;
  versions: number;
  events: LogEvent[];
}

const hex = (path: string | Buffer) => Buffer.from(path).toString('hex');

/** lb's mtimes may differ from a tree file's by under 2 µs (docs/FORMAT.md). */
const sameTime = (a: string, b: string) => (BigInt(a) - BigInt(b) < 0n ? BigInt(b) - BigInt(a) : BigInt(a) - BigInt(b)) < 2000n;

/** What differs between two facts, named as lb names it. */
function differences(a: Fact, b: Fact): string[] {
  const fields: string[] = [];
  if (a.type !== b.type) fields.push('type');
  if (a.type === 'file' && b.type === 'file' && a.size !== b.size) fields.push('size');
  if (a.hash !== b.hash) fields.push('content');
  if (a.mode !== b.mode) fields.push('mode');
  if (!sameTime(a.mtimeNs, b.mtimeNs)) fields.push('mtime');
  if (a.uid !== b.uid || a.gid !== b.gid) fields.push('owner');
  return fields;
}

/** Each event's version against the tree: the snapshot's own, or for `gone` the snapshot before's; the changes against the facts. */
function checkAgainstTrees(log: LogJson, path: Buffer, names: string[], facts: Map<string, Fact>[]): void {
  for (const event of log.events) {
    const i = names.indexOf(event.snapshot);
    const gone = event.event === 'gone';
    expect(facts[i]!.has(hex(path)), `${event.event} in ${event.snapshot}`).toBe(!gone);
    const fact = facts[gone ? i - 1 : i]!.get(hex(path))!;
    expect({ type: event.type, size: event.type === 'file' ? event.size : 0, hash: event.hash, mode: event.mode, uid: event.uid, gid: event.gid }).toEqual({
      type: fact.type,
      size: fact.size,
      hash: fact.hash,
      mode: fact.mode,
      uid: fact.uid,
      gid: fact.gid,
    });
    expect(sameTime(event.mtimeNs, fact.mtimeNs)).toBe(true);
    if (event.event === 'changed' || event.event === 'metadata') expect(event.changes).toEqual(differences(facts[i - 1]!.get(hex(path))!, fact));
    if (event.to !== undefined) {
      expect(facts[i]!.get(hex(event.to))?.hash).toBe(fact.hash); // the content is there
      expect(facts[i - 1]!.get(hex(event.to))).toBeUndefined(); // and that path is new
    }
  }
}

function logJson(repo: string, args: string[]): LogJson {
  const r = lb(['log', repo, ...args, '--json']);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout) as LogJson;
}

describe('lb log', () => {
  it('follows a file through creation, edit, chmod, touch, a move and deletion, as the trees on disk show it', () => {
    const { repo, names } = historyRepository();
    const facts = treeFacts(repo, names);
    const report = logJson(repo, ['docs/report.txt']);
    expect(report.events.map((e) => [e.snapshot, e.event, e.changes])).toEqual([
      [names[0], 'appeared', undefined],
      [names[1], 'changed', ['size', 'content', 'mtime']],
      [names[2], 'metadata', ['mode']],
      [names[3], 'metadata', ['mtime']],
      [names[4], 'gone', undefined],
    ]);
    expect(report.events[4]!.to).toBe('archive/2026/report.txt'); // not album-copies/report.txt (first in order), which was there before
    expect([report.snapshots, report.versions]).toEqual([4, 4]);
    checkAgainstTrees(report, Buffer.from('docs/report.txt'), names, facts);

    const moved = logJson(repo, ['/archive/2026/report.txt']);
    expect(moved.events.map((e) => [e.snapshot, e.event, e.to])).toEqual([
      [names[4], 'appeared', undefined],
      [names[5], 'gone', undefined],
    ]);
    checkAgainstTrees(moved, Buffer.from('archive/2026/report.txt'), names, facts);

    const text = lb(['log', repo, './docs//report.txt']);
    expect(text.status).toBe(0);
    const hash = facts[0]!.get(hex('docs/report.txt'))!.hash.slice(0, 12);
    expect(text.stdout).toMatch(new RegExp(`^${names[0]}  appeared  file  size 6  hash ${hash}  mode 644  owner 0:0  mtime [-0-9: ]+\n`));
    expect(text.stdout).toContain(`\n${names[1]}  changed (size 6 -> 17, content, mtime `);
    expect(text.stdout).toContain(`\n${names[2]}  metadata (mode 644 -> 600)\n`);
    expect(text.stdout).toMatch(new RegExp(`\n${names[3]}  metadata \\(mtime [-0-9: .]+ -> 2023-11-1[45] \\d\\d:\\d\\d:20\\)\n`));
    expect(text.stdout).toContain(`\n${names[4]}  gone (moved to archive/2026/report.txt)\ndocs/report.txt: in 4 of 6 snapshots, 4 versions\n`);
    expect(text.stdout.split('\n')).toHaveLength(7);
  });

  it('shows a file that went and came back, a directory on its own, and a name that is not UTF-8', () => {
    const { repo, names } = historyRepository();
    const facts = treeFacts(repo, names);
    const notes = logJson(repo, ['notes.txt']);
    expect(notes.events.map((e) => [e.snapshot, e.event])).toEqual([
      [names[0], 'appeared'],
      [names[1], 'gone'],
      [names[2], 'reappeared'],
    ]);
    expect([notes.snapshots, notes.versions]).toEqual([5, 2]); // it came back with a new mtime
    checkAgainstTrees(notes, Buffer.from('notes.txt'), names, facts);

    // The directory's own record: its files' changes are not its events.
    const docs = logJson(repo, ['docs']);
    expect(docs.events.map((e) => [e.snapshot, e.event, e.changes])).toEqual([
      [names[0], 'appeared', undefined],
      [names[4], 'metadata', ['mtime']],
      [names[5], 'metadata', ['mode']],
    ]);
    checkAgainstTrees(docs, Buffer.from('docs'), names, facts);

    const cafe = Buffer.concat([Buffer.from('albums/'), CAFE]);
    const named = logJson(repo, ['--path-base64', cafe.toString('base64')]);
    expect([named.path, named.pathBase64, named.events.map((e) => e.event)]).toEqual(['albums/caf\\xe9.txt', cafe.toString('base64'), ['appeared']]);
    checkAgainstTrees(named, cafe, names, facts);
    expect(lb(['log', repo, '--path-base64', cafe.toString('base64')]).stdout).toContain('albums/caf\\xe9.txt: in 6 of 6 snapshots, 1 version\n');
  });

  it('reads each manifest only up to PATH', () => {
    const { repo, names } = historyRepository();
    // A line no manifest reader accepts, at the end of every manifest: only a read past PATH meets it.
    for (const name of names) appendFileSync(join(repo, name, 'manifest'), 'not a manifest line\n');
    expect(lb(['log', repo, 'albums/a.jpg']).stdout).toMatch(/^\S+  appeared  file .*\nalbums\/a\.jpg: in 6 of 6 snapshots, 1 version\n$/);
    expect(lb(['log', repo, 'albums/b.jpg']).status).toBe(2); // not there: the reads stop where it would be
    const past = lb(['log', repo, 'zzz']);
    expect(past.status).toBe(1); // the damage is met (so the test above proves the reads stopped)
  });

  it('refuses in one line a path in no snapshot, a path going up, the root, and a directory that is no repository', () => {
    const { work, repo, source, names } = historyRepository();
    const refused = (args: string[], message: RegExp) => {
      const r = lb(['log', ...args]);
      expect([r.status, r.stdout, r.stderr]).toEqual([2, '', expect.stringMatching(message)]);
      expect(r.stderr.split('\n')).toHaveLength(2);
    };
    refused([repo, 'docs/nothing.txt'], new RegExp(`^lb: no docs/nothing.txt in any of the ${names.length} snapshots of `));
    refused([repo, 'docs/../notes.txt'], /^lb: docs\/\.\.\/notes\.txt: a path inside a snapshot cannot go up with \.\.$/m);
    refused([repo, '/'], /^lb: lb log needs a path inside the snapshots, not their root$/m);
    refused([repo], /^lb: lb log needs one path: PATH or --path-base64 B64$/m);
    refused([repo, '--path-base64', 'not base64!'], /^lb: --path-base64 not base64!: not base64$/m);
    refused([source, 'notes.txt'], /is not an lb repository/);
    refused([join(work, 'missing'), 'notes.txt'], /missing/);
    const json = lb(['log', repo, 'nothing', '--json']);
    expect(json.status).toBe(2);
    expect(JSON.parse(json.stdout)).toMatchObject({ error: expect.stringContaining('no nothing in any') });
  });
});
