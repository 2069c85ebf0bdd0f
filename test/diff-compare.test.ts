// The comparison behind `lb diff` on hand-made record lists: fast, no repository.
import { describe, expect, it } from 'vitest';
import type { Change, DiffRecord } from '../src/diff/change.js';
import { compareSnapshots } from '../src/diff/compare.js';
import { comparePaths } from '../src/diff/order.js';

const base = { hash: '', size: 0, mtimeNs: 1_000n, mode: 0o644, uid: 0, gid: 0, target: null };
const dir = (path: string, extra: Partial<DiffRecord> = {}): DiffRecord => ({ ...base, mode: 0o755, type: 'dir', path: Buffer.from(path, 'latin1'), ...extra });
const file = (path: string, content: string, extra: Partial<DiffRecord> = {}): DiffRecord => ({
  ...base,
  type: 'file',
  path: Buffer.from(path, 'latin1'),
  hash: `sha-of-${content}`,
  size: content.length,
  ...extra,
});
const link = (path: string, target: string): DiffRecord => ({ ...base, mode: 0o777, type: 'symlink', path: Buffer.from(path), target: Buffer.from(target) });

/** A snapshot: the root and the given entries, in canonical order. */
function tree(...records: DiffRecord[]): DiffRecord[] {
  return [dir(''), ...records].sort((a, b) => comparePaths(a.path, b.path));
}

function shown(change: Change): string {
  const name = (path: Buffer, type: string) => path.toString('latin1') + (type === 'dir' ? '/' : '');
  const op = { added: '+', removed: '-', changed: 'M', metadata: 'm', typeChanged: 'T', moved: 'R' }[change.op];
  return `${op} ${name(change.path, change.type)}${change.to ? ` -> ${name(change.to, change.type)}` : ''}${change.metadataChanged ? ' +meta' : ''}`;
}

function diff(older: DiffRecord[], newer: DiffRecord[]): string[] {
  return compareSnapshots(older, newer).changes.map(shown);
}

describe('comparing two snapshots', () => {
  it('tells additions, removals, content, metadata and type changes apart, with totals', () => {
    const older = tree(file('a', 'A'), file('b', 'B'), file('c', 'C'), file('d', 'D'), link('e', 'a'), file('f', 'F'), dir('g'));
    const newer = tree(
      file('a', 'A'), // unchanged
      file('b', 'B2'), // content
      file('c', 'C', { mode: 0o600 }), // chmod
      file('d', 'D', { mtimeNs: 2_000n }), // touch
      file('e', 'E'), // was a symlink
      link('g', 'a'), // was a directory
      file('h', 'HHHH'), // new
    );
    const result = compareSnapshots(older, newer);
    expect(result.changes.map(shown)).toEqual(['M b', 'm c', 'm d', 'T e', '- f', 'T g', '+ h']);
    expect(result.changes.find((c) => c.op === 'typeChanged' && c.path.toString() === 'e')).toMatchObject({ type: 'file', oldType: 'symlink' });
    expect(result.totals).toEqual({ added: 1, removed: 1, changed: 1, metadata: 2, typeChanged: 2, moved: 0, bytesAdded: 4, bytesRemoved: 1 });
  });

  it('reports a source hard link made or broken at the same path as a metadata change', () => {
    const older = tree(file('a', 'A'), file('b', 'A'), file('c', 'A', { link: Buffer.from('a') }));
    const newer = tree(file('a', 'A'), file('b', 'A', { link: Buffer.from('a') }), file('c', 'A'));
    expect(diff(older, newer)).toEqual(['m b', 'm c']);
    expect(diff(newer, newer)).toEqual([]);
  });

  it('reports a changed symlink target as a content change and a directory only by its metadata', () => {
    expect(diff(tree(link('l', 'x'), dir('d')), tree(link('l', 'y'), dir('d', { mtimeNs: 5n })))).toEqual(['m d/', 'M l']);
  });

  it('shows a moved file and a renamed one as moves, flagging metadata that changed on the way', () => {
    const older = tree(dir('a'), file('a/one', '1'), file('a/two', '2'), dir('b'));
    const newer = tree(dir('a'), file('a/uno', '1'), dir('b'), file('b/two', '2', { mode: 0o600 }));
    const result = compareSnapshots(older, newer);
    expect(result.changes.map(shown)).toEqual(['R a/one -> a/uno', 'R a/two -> b/two +meta']);
    expect(result.totals).toMatchObject({ moved: 2, added: 0, removed: 0, bytesAdded: 0, bytesRemoved: 0 });
  });

  it('folds a directory moved whole, subdirectories and symlinks included, into one line', () => {
    const album = (root: string) => [dir(root), file(`${root}/1.jpg`, 'one'), dir(`${root}/raw`), file(`${root}/raw/1.cr2`, 'raw'), link(`${root}/cover`, '1.jpg')];
    const result = compareSnapshots(tree(dir('albums'), ...album('albums/summer')), tree(dir('albums'), ...album('albums/2026 summer')));
    expect(result.changes.map(shown)).toEqual(['R albums/summer/ -> albums/2026 summer/']);
    expect(result.changes[0]).toMatchObject({ entries: 4 });
    expect(result.totals.moved).toBe(1);
  });

  it('lists the entries of a directory moved only in part, or changed on the way, one by one', () => {
    const older = tree(dir('old'), file('old/a', 'A'), file('old/b', 'B'), file('old/c', 'C'));
    // b stayed behind, c was edited, a moved: old/ did not move whole.
    const newer = tree(dir('new'), file('new/a', 'A'), file('new/c', 'C2'), dir('old'), file('old/b', 'B'));
    expect(diff(older, newer)).toEqual(['+ new/', '+ new/c', 'R old/a -> new/a', '- old/c']);
    // Everything moved, but one file was touched: the others are moves, it a move with its metadata.
    const touched = tree(dir('new'), file('new/a', 'A'), file('new/b', 'B', { mtimeNs: 9n }), file('new/c', 'C'));
    expect(diff(older, touched)).toEqual(['+ new/', '- old/', 'R old/a -> new/a', 'R old/b -> new/b +meta', 'R old/c -> new/c']);
    // Everything moved, and something else arrived there: not a whole move either.
    const grown = tree(dir('new'), file('new/a', 'A'), file('new/b', 'B'), file('new/c', 'C'), file('new/d', 'D'));
    expect(diff(older, grown)).toEqual(['+ new/', '+ new/d', '- old/', 'R old/a -> new/a', 'R old/b -> new/b', 'R old/c -> new/c']);
  });

  it('folds only the subdirectory that moved whole out of a directory that did not', () => {
    const older = tree(dir('x'), file('x/keep', 'K'), dir('x/sub'), file('x/sub/f', 'F'));
    const newer = tree(dir('x'), file('x/keep', 'K'), dir('y'), file('y/f', 'F'));
    expect(diff(older, newer)).toEqual(['R x/sub/ -> y/']);
  });

  it('pairs files sharing a content by name first, then in canonical order, leaving the rest as additions or removals', () => {
    const older = tree(file('a1', 'same'), file('b/copy', 'same'), dir('b'), file('z', 'same'));
    const newer = tree(dir('b'), file('b/x', 'same'), file('b/y', 'same'), file('copy', 'same'));
    // b/copy keeps its name (-> copy); a1 and z pair with b/x and b/y in order.
    expect(diff(older, newer)).toEqual(['R a1 -> b/x', 'R b/copy -> copy', 'R z -> b/y']);
    const fewer = tree(dir('b'), file('q', 'same'));
    expect(diff(older, fewer)).toEqual(['R a1 -> q', '- b/copy', '- z']);
  });

  it('keeps names that are not UTF-8 exact', () => {
    const latin = Buffer.from('caf\xe9', 'latin1');
    const older = tree(file('plain', 'P'));
    const newer = tree(file('caf\xe9', 'P'), file('caf\xe9-2', 'new'));
    const result = compareSnapshots(older, newer);
    expect(result.changes.map(shown)).toEqual(['+ caf\xe9-2', 'R plain -> caf\xe9']);
    expect(result.changes[0]!.path).toEqual(Buffer.concat([latin, Buffer.from('-2')]));
    expect(result.changes[1]!.to).toEqual(latin);
  });

  it('finds nothing between a snapshot and itself, and refuses records out of canonical order', () => {
    const same = tree(dir('a'), file('a/b', 'B'), link('c', 'a'));
    expect(compareSnapshots(same, same).changes).toEqual([]);
    expect(() => compareSnapshots([dir(''), file('b', 'B'), file('a', 'A')], same)).toThrow(/older manifest is not in canonical order at "a"/);
  });
});
