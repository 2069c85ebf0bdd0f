// lb diff on a repository made by the real lb from a source that went through a
// week of churn, checked against an independent comparison: Python walks the two
// snapshot trees on disk (lstat and SHA-256, no lb code) and classifies what it finds.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, renameSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backup, lb, tempDir } from './helpers.js';

const CAFE = Buffer.from('caf\xe9.jpg', 'latin1');

/** Two snapshots of a source between which an album moved, files were renamed, edited, chmod'ed, touched, deleted, added and retyped. */
function churnedRepository(): { work: string; repo: string; names: string[] } {
  const work = tempDir();
  const source = join(work, 'src');
  const repo = join(work, 'repo');
  const catalog = join(work, 'catalog.sqlite');
  const put = (path: string, content: string) => {
    mkdirSync(join(source, path, '..'), { recursive: true });
    writeFileSync(join(source, path), content);
  };
  put('albums/summer/IMG_1.jpg', 'sun'.repeat(700));
  put('albums/summer/IMG_2.jpg', 'sea'.repeat(900));
  put('albums/summer/raw/IMG_1.cr2', 'raw'.repeat(1500));
  put('albums/winter/a.jpg', 'snow'.repeat(300));
  put('docs/report.txt', 'draft report');
  put('docs/todo.txt', 'buy milk');
  put('scripts/run.sh', '#!/bin/sh\necho run\n');
  put('notes.txt', 'notes');
  put('old.log', 'log line\n'.repeat(50));
  symlinkSync('albums/winter/a.jpg', join(source, 'favourite'));
  utimesSync(join(source, 'notes.txt'), 1_700_000_000, 1_700_000_000);
  const names = [backup(source, repo, catalog).snapshot!];

  renameSync(join(source, 'albums/summer'), join(source, 'albums/summer-2026'));
  renameSync(join(source, 'docs/report.txt'), join(source, 'docs/report-final.txt'));
  writeFileSync(join(source, 'docs/todo.txt'), 'buy milk and bread');
  chmodSync(join(source, 'scripts/run.sh'), 0o755);
  utimesSync(join(source, 'notes.txt'), 1_700_086_400, 1_700_086_400);
  unlinkSync(join(source, 'old.log'));
  put('new.txt', 'n'.repeat(100));
  unlinkSync(join(source, 'favourite'));
  put('favourite', 'a copy now, not a link');
  writeFileSync(Buffer.concat([Buffer.from(join(source, 'albums/winter') + '/'), CAFE]), 'latin-1 name');
  names.push(backup(source, repo, catalog).snapshot!);
  return { work, repo, names };
}

/**
 * The oracle: what changed between two trees, as Python sees them on disk. Moves pair
 * files and symlinks by content (hash or target), a same-named partner first, then
 * in path order. The rule for directories, the same as lb's README states: a removed
 * directory moved whole into an added one, and prints as one move, when the entries
 * beneath both, by relative path, have the same types, contents and metadata, and
 * at least one of them is a file or symlink (outermost directory first).
 */
const ORACLE = `
import base64, hashlib, json, os, stat, sys

def info(path):
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode): kind, content = 'dir', ''
    elif stat.S_ISLNK(st.st_mode): kind, content = 'symlink', os.readlink(path).hex()
    else:
        kind = 'file'
        with open(path, 'rb') as f: content = hashlib.sha256(f.read()).hexdigest()
    return dict(type=kind, content=content, size=st.st_size if kind == 'file' else 0,
                meta=(stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns))

def walk(root):
    entries = {b'': info(root)}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            full = os.path.join(top, name)
            entries[os.path.relpath(full, root)] = info(full)
    return entries

canon = lambda p: p.replace(b'/', b'\\0')
old, new = walk(os.fsencode(sys.argv[1])), walk(os.fsencode(sys.argv[2]))
changes = []
def change(op, path, e, **more):
    changes.append(dict(op=op, type=e['type'], path=path, **more))
for p in old.keys() & new.keys():
    a, b = old[p], new[p]
    if a['type'] != b['type']: change('typeChanged', p, b, oldType=a['type'])
    elif a['content'] != b['content']: change('changed', p, b)
    elif a['meta'] != b['meta']: change('metadata', p, b)
removed = sorted((p for p in old if p not in new), key=canon)
added = sorted((p for p in new if p not in old), key=canon)

def beneath(tree, d):
    return {p[len(d):]: (e['type'], e['content'], e['meta']) for p, e in tree.items() if p.startswith(d + b'/')}
gone, came = set(), set()
for d in (p for p in removed if old[p]['type'] == 'dir'):
    if d in gone: continue
    inside = beneath(old, d)
    if not any(t != 'dir' for t, _, _ in inside.values()): continue
    for e in (p for p in added if new[p]['type'] == 'dir' and p not in came):
        if beneath(new, e) == inside:
            gone |= {d} | {d + r for r in inside}
            came |= {e} | {e + r for r in inside}
            change('moved', d, old[d], to=e, entries=len(inside), metadataChanged=old[d]['meta'] != new[e]['meta'])
            break

for same_name in (True, False):
    key = lambda p, t: (t[p]['type'], t[p]['content'], os.path.basename(p) if same_name else b'')
    for r in (p for p in removed if p not in gone and old[p]['type'] != 'dir'):
        partner = next((a for a in added if a not in came and new[a]['type'] != 'dir' and key(a, new) == key(r, old)), None)
        if partner is not None:
            gone.add(r); came.add(partner)
            change('moved', r, old[r], to=partner, metadataChanged=old[r]['meta'] != new[partner]['meta'])
for p in removed:
    if p not in gone: change('removed', p, old[p], **({'size': old[p]['size']} if old[p]['type'] == 'file' else {}))
for p in added:
    if p not in came: change('added', p, new[p], **({'size': new[p]['size']} if new[p]['type'] == 'file' else {}))
changes.sort(key=lambda c: canon(c['path']))
for c in changes:
    for k in ('path', 'to'):
        if k in c: c[k] = base64.b64encode(c[k] or b'.').decode()
    if not c.get('metadataChanged', True): del c['metadataChanged']
print(json.dumps(changes))
`;

interface JsonChange {
  op: string;
  path: string;
  pathBase64?: string;
  to?: string;
  toBase64?: string;
  [key: string]: unknown;
}

function oracle(olderTree: string, newerTree: string): Record<string, unknown>[] {
  const r = spawnSync('python3', ['-c', ORACLE, olderTree, newerTree], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

/** lb's change with its names as exact bytes in base64, as the oracle gives them. */
function asBytes(change: JsonChange): Record<string, unknown> {
  const { pathBase64, toBase64, ...rest } = change;
  const bytes = (text: string, base64?: string) => base64 ?? Buffer.from(text).toString('base64');
  return { ...rest, path: bytes(change.path, pathBase64), ...(change.to !== undefined ? { to: bytes(change.to, toBase64) } : {}) };
}

describe('lb diff', () => {
  it('lists exactly the changes an independent comparison of the two trees finds, moves as moves', () => {
    const { repo, names } = churnedRepository();
    const r = lb(['diff', repo, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { old: string; new: string; changes: JsonChange[]; totals: Record<string, number> };
    expect([result.old, result.new]).toEqual(names);
    const expected = oracle(join(repo, names[0]!, 'tree'), join(repo, names[1]!, 'tree'));
    expect(result.changes.map(asBytes)).toEqual(expected);
    const count = (op: string) => expected.filter((c) => c.op === op).length;
    const bytes = (op: string) => expected.filter((c) => c.op === op).reduce((sum, c) => sum + ((c.size as number) ?? 0), 0);
    expect(result.totals).toEqual({
      added: count('added'),
      removed: count('removed'),
      changed: count('changed'),
      metadata: count('metadata'),
      typeChanged: count('typeChanged'),
      moved: count('moved'),
      bytesAdded: bytes('added'),
      bytesRemoved: bytes('removed'),
    });

    // The churn is all there (so the agreement above is not of two empty lists), as a person reads it.
    const text = lb(['diff', repo]);
    expect(text.status, text.stderr).toBe(0);
    const lines = text.stdout.trim().split('\n');
    for (const line of [
      'R albums/summer/ -> albums/summer-2026/ (4 entries)',
      '+ albums/winter/caf\\xe9.jpg',
      'R docs/report.txt -> docs/report-final.txt',
      'M docs/todo.txt',
      'T favourite (was a symlink)',
      'm notes.txt',
      '+ new.txt',
      '- old.log',
      'm scripts/run.sh',
    ]) {
      expect(lines).toContain(line);
    }
    expect(lines.filter((line) => line.includes('IMG_'))).toEqual([]);
    expect(lines.at(-1)).toBe(`${names[0]} -> ${names[1]}: 2 added (112 B), 1 removed (450 B), 1 changed, ${result.totals.metadata} metadata only, 1 type changed, 2 moved`);
    // OLD alone compares it with latest; both named, in either order.
    expect(lb(['diff', repo, names[0]!]).stdout).toBe(text.stdout);
    expect(lb(['diff', repo, names[0]!, 'latest']).stdout).toBe(text.stdout);
    const backwards = lb(['diff', repo, 'latest', names[0]!]).stdout;
    expect(backwards).toContain('R albums/summer-2026/ -> albums/summer/ (4 entries)\n');
    expect(backwards).toContain('+ old.log\n');
  });

  it('refuses an unknown snapshot, a repository with nothing to compare, and a directory that is not a repository, in one line each', () => {
    const { work, repo, names } = churnedRepository();
    const unknown = lb(['diff', repo, '1999.01']);
    expect(unknown).toMatchObject({ status: 2, stdout: '' });
    expect(unknown.stderr).toBe(`lb: no snapshot 1999.01 in ${repo}; the nearest are ${names[0]} and ${names[1]}\n`);
    expect(JSON.parse(lb(['diff', repo, names[0]!, '2999', '--json']).stdout)).toMatchObject({ status: 'error', exit: 2 });

    const single = join(work, 'single');
    mkdirSync(join(work, 'one'));
    writeFileSync(join(work, 'one', 'f'), 'f');
    const only = backup(join(work, 'one'), single, join(work, 'catalog.sqlite')).snapshot!;
    expect(lb(['diff', single])).toMatchObject({
      status: 2,
      stdout: '',
      stderr: `lb: nothing to compare: the repository ${single} holds one snapshot only (${only})\n`,
    });

    const notRepository = lb(['diff', join(work, 'one')]);
    expect(notRepository).toMatchObject({ status: 2, stdout: '', stderr: `lb: ${join(work, 'one')} is not an lb repository (it has no .lb/format)\n` });
  });
});
