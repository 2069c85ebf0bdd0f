// Unit tests of the pure history logic (src/diff/history.ts) on hand-made records.
import { describe, expect, it } from 'vitest';
import { movedTo, pathHistory, type SnapshotState } from '../src/diff/history.js';
import type { ManifestRecord } from '../src/repo/manifest.js';

function file(overrides: Partial<ManifestRecord> = {}): ManifestRecord {
  return { how: 'new', type: 'file', path: Buffer.from('a/x.txt'), hash: 'aa'.repeat(32), size: 10, mtimeNs: 1000n, mode: 0o644, uid: 0, gid: 0, target: null, ...overrides };
}

const states = (...records: (ManifestRecord | null)[]): SnapshotState[] => records.map((record, i) => ({ snapshot: `s${i + 1}`, record }));
const summary = (h: ReturnType<typeof pathHistory>) => h.events.map((e) => `${e.snapshot} ${e.event}${e.changes ? ' ' + e.changes.join(',') : ''}`);

describe('pathHistory', () => {
  it('says nothing for unchanged snapshots, classes content and metadata changes, and counts versions', () => {
    const v1 = file();
    const v2 = file({ size: 12, hash: 'bb'.repeat(32), mtimeNs: 2000n });
    const v3 = file({ ...v2, mode: 0o600 });
    const v4 = file({ ...v3, mtimeNs: 3000n, how: 'linked' });
    const h = pathHistory(states(v1, { ...v1, how: 'linked' }, v2, v3, v4, v4, null));
    expect(summary(h)).toEqual(['s1 appeared', 's3 changed size,content,mtime', 's4 metadata mode', 's5 metadata mtime', 's7 gone']);
    expect(h.events[1]!.previous).toEqual({ ...v1, how: 'linked' });
    expect(h.events[4]!.record).toBe(v4); // what went
    expect([h.present, h.versions]).toEqual([6, 4]);
  });

  it('a same-size edit is a content change; an owner change is metadata', () => {
    const h = pathHistory(states(file(), file({ hash: 'cc'.repeat(32) }), file({ hash: 'cc'.repeat(32), gid: 100 })));
    expect(summary(h)).toEqual(['s1 appeared', 's2 changed content', 's3 metadata owner']);
  });

  it('a path that goes and comes back: a new version only when it came back different', () => {
    const same = pathHistory(states(null, file(), null, file(), null));
    expect(summary(same)).toEqual(['s2 appeared', 's3 gone', 's4 reappeared', 's5 gone']);
    expect([same.present, same.versions]).toEqual([2, 1]);
    const different = pathHistory(states(file(), null, file({ mode: 0o600 })));
    expect(summary(different)).toEqual(['s1 appeared', 's2 gone', 's3 reappeared']);
    expect(different.versions).toBe(2);
  });

  it('a type change and a symlink retargeted change what the path holds; a directory has no size or content', () => {
    const link = file({ type: 'symlink', hash: '', size: 0, target: Buffer.from('one') });
    const h = pathHistory(states(file(), link, { ...link, target: Buffer.from('two') }));
    expect(summary(h)).toEqual(['s1 appeared', 's2 changed type', 's3 changed target']);
    const dir = file({ type: 'dir', hash: '', size: 4096 });
    expect(summary(pathHistory(states(dir, { ...dir, size: 8192 }, { ...dir, size: 8192, mode: 0o700 })))).toEqual(['s1 appeared', 's3 metadata mode']);
  });

  it('a path in no snapshot has no history', () => {
    expect(pathHistory(states(null, null))).toEqual({ events: [], present: 0, versions: 0 });
  });
});

describe('movedTo', () => {
  const b = (s: string) => Buffer.from(s);
  const none = () => false;
  it('prefers a path with the same name, else the first in canonical order, and skips paths that were there before', () => {
    expect(movedTo(b('a/x.txt'), [b('z/x.txt'), b('b/other.txt')], none)).toEqual(b('z/x.txt'));
    expect(movedTo(b('a/x.txt'), [b('c/q'), b('b/r'), b('b/r/deeper')], none)).toEqual(b('b/r'));
    expect(movedTo(b('a/x.txt'), [b('b-c/x.txt'), b('b/x.txt')], none)).toEqual(b('b/x.txt')); // '/' sorts first
    expect(movedTo(b('a/x.txt'), [b('old/x.txt'), b('new/y')], (p) => p.equals(b('old/x.txt')))).toEqual(b('new/y'));
    expect(movedTo(b('a/x.txt'), [b('old/x.txt')], () => true)).toBeNull();
  });
});
