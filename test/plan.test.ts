// The backup planner's rules (src/diff/plan.ts), without any I/O.
import { describe, expect, it } from 'vitest';
import { IdenticalTree, arrival, fileAction, knownHash, ownerFor, type OwnerRule } from '../src/diff/plan.js';

const H1 = '1'.repeat(64);
const H2 = '2'.repeat(64);

describe('link, copy or transfer', () => {
  it('links an exact object, copies one of the same content, asks the source for the rest', () => {
    expect(fileAction({ kind: 'exact', object: H1 })).toBe('link');
    expect(fileAction({ kind: 'content', object: H1 })).toBe('copy');
    expect(fileAction({ kind: 'absent' })).toBe('transfer');
  });

  it('reports a file brought by its own transfer as new, whatever it links to', () => {
    expect(arrival('link', false)).toBe('linked');
    expect(arrival('copy', false)).toBe('copied');
    expect(arrival('link', true)).toBe('new');
    expect(arrival('copy', true)).toBe('new');
  });
});

describe('the hash of a file without reading it', () => {
  const entry = { type: 'file', size: 10, mtimeNs: 5n };
  const previous = { type: 'file', size: 10, mtimeNs: 5n, hash: H1 };

  it("takes the source's own hash first, even when the quick check would say otherwise", () => {
    expect(knownHash({ ...entry, hash: H2 }, previous, true)).toBe(H2);
  });

  it("trusts the previous record only with the quick check, and only when size and mtime match", () => {
    expect(knownHash(entry, previous, true)).toBe(H1);
    expect(knownHash(entry, previous, false)).toBeUndefined();
    expect(knownHash({ ...entry, size: 11 }, previous, true)).toBeUndefined();
    expect(knownHash({ ...entry, mtimeNs: 6n }, previous, true)).toBeUndefined();
    expect(knownHash(entry, { ...previous, type: 'symlink' }, true)).toBeUndefined();
    expect(knownHash(entry, undefined, true)).toBeUndefined();
  });
});

describe('owners', () => {
  const accounts = { uidFor: (uid: number, name?: string) => (name === 'alice' ? 1500 : uid), gidFor: (gid: number, name?: string) => (name === 'staff' ? 1600 : gid) };
  const entry = { uid: 1000, gid: 1001, user: 'alice', group: 'staff' };
  const rule: OwnerRule = { asRoot: true, numericIds: false, ownUid: 42, ownGid: 43 };

  it('maps names to this machine when root, keeps numbers with --numeric-ids, and gives everything to a non-root runner', () => {
    expect(ownerFor(entry, rule, accounts)).toEqual({ uid: 1500, gid: 1600 });
    expect(ownerFor(entry, { ...rule, numericIds: true }, accounts)).toEqual({ uid: 1000, gid: 1001 });
    expect(ownerFor({ uid: 7, gid: 8 }, rule, accounts)).toEqual({ uid: 7, gid: 8 });
    expect(ownerFor(entry, { ...rule, asRoot: false }, accounts)).toEqual({ uid: 42, gid: 43 });
  });
});

describe('the identical-tree rule', () => {
  function tracker(hasPrevious = true, always = false) {
    const replays: number[] = [];
    return { tree: new IdenticalTree(hasPrevious, always, (prefix) => replays.push(prefix)), replays };
  }

  it('builds nothing while entries equal the previous records, and replays the identical prefix once at the first difference', () => {
    const { tree, replays } = tracker();
    expect(tree.same('a', () => 'a')).toBe(true);
    expect(tree.same('b', () => 'b')).toBe(true);
    expect(tree.unchanged).toBe(true);
    expect(tree.same('c', () => 'c changed')).toBe(false);
    expect(replays).toEqual([2]);
    expect(tree.same('d', () => 'd')).toBe(false); // building now: every entry is placed
    tree.differ();
    expect(replays).toEqual([2]);
  });

  it('treats a new path, a passed-over record and a dropped entry as differences', () => {
    const added = tracker();
    expect(added.tree.same(undefined, () => 'x')).toBe(false);
    expect(added.replays).toEqual([0]);
    const passed = tracker();
    passed.tree.same('a', () => 'a');
    passed.tree.differ();
    expect(passed.replays).toEqual([1]);
  });

  it('builds from the start without a previous snapshot or with --always, and replays nothing', () => {
    for (const { tree, replays } of [tracker(false), tracker(true, true)]) {
      expect(tree.unchanged).toBe(false);
      expect(tree.same('a', () => 'a')).toBe(false);
      tree.differ();
      expect(replays).toEqual([]);
    }
  });

  it('compares lazily: no record body is made once the tree differs', () => {
    const { tree } = tracker();
    tree.differ();
    expect(tree.same('a', () => { throw new Error('body made'); })).toBe(false);
  });

  it('after abandon (the time budget ran out) replays nothing', () => {
    const { tree, replays } = tracker();
    tree.same('a', () => 'a');
    tree.abandon();
    tree.differ();
    expect(replays).toEqual([]);
  });
});
