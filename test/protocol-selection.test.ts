// The selection as it travels to a pulled source: what lb sends decodes to the
// same rules, tags and list, and what a hostile peer could send is refused
// before the walk sees it.
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../src/protocol/frames.js';
import { decodePullRequest, encodePullRequest, PROTOCOL_VERSION, type PullRequest } from '../src/protocol/messages.js';
import { decodeSelection, encodeSelection } from '../src/protocol/selection.js';
import { FileList } from '../src/scan/file-list.js';
import type { SelectionSpec } from '../src/scan/selection.js';

const spec: SelectionSpec = {
  rules: [
    { kind: 'include', pattern: Buffer.from('keep.tmp') },
    { kind: 'exclude', pattern: Buffer.from('*.tmp') },
    { kind: 'exclude', pattern: Buffer.from([0xff, 0x2a]) },
  ],
  excludeCaches: true,
  excludeIfPresent: [Buffer.from('.nobackup'), Buffer.from([0xe9])],
  oneFileSystem: true,
  listed: FileList.parse(Buffer.from('a/b\0./c//d/\0\xff\0', 'latin1'), true, 'test').toWire(),
};

function wire(value: object): unknown {
  return JSON.parse(JSON.stringify(value));
}

describe('selection on the wire', () => {
  it('round-trips rules, tags, the file list and -x, bytes that are not UTF-8 included', () => {
    const decoded = decodeSelection(wire(encodeSelection(spec)));
    expect(decoded).toEqual(spec);
    expect(FileList.fromWire(decoded.listed!).wanted('c', Buffer.from('d'))).toBe('whole');
    expect(FileList.fromWire(decoded.listed!).wanted('', Buffer.from('c'))).toBe('through');
  });

  it('travels inside the pull request', () => {
    const request: PullRequest = {
      t: 'pull',
      version: PROTOCOL_VERSION,
      sourceRoot: '/photos',
      repository: '/backup',
      options: { snapshotName: '2026.01.01-00.00.00', always: false, numericIds: false, verbose: false, quickCheck: true, sourceLabel: 'h:/photos', purpose: 'showfiles' },
      selection: spec,
    };
    expect(decodePullRequest(wire(encodePullRequest(request)))).toEqual(request);
  });

  const good = wire(encodeSelection(spec)) as Record<string, unknown>;
  const list = (paths: string[]) => Buffer.from(paths.join('\0'), 'latin1').toString('base64');
  const hostile: [string, Record<string, unknown>][] = [
    ['a listed path leading out through ..', { ...good, list: list(['a', '../etc/passwd']) }],
    ['an absolute listed path', { ...good, list: list(['/etc/passwd']) }],
    ['an empty listed path inside the list', { ...good, list: list(['a', '', 'b']) }],
    ['a listed path with an empty name', { ...good, list: list(['a//b']) }],
    ['a file list that is not base64', { ...good, list: 'not base64!' }],
    ['a tag that is a path', { ...good, tags: [{ n: 'a/b' }] }],
    ['a tag named ..', { ...good, tags: [{ n: '..' }] }],
    ['a rule of no kind', { ...good, rules: [{ k: '?', p: 'x' }] }],
    ['a pattern over 4096 bytes', { ...good, rules: [{ k: '-', p: 'x'.repeat(4097) }] }],
    ['rules that are no list', { ...good, rules: 'all' }],
    ['too many rules', { ...good, rules: Array.from({ length: 100_001 }, () => ({ k: '-', p: 'x' })) }],
    ['-x that is no boolean', { ...good, oneFs: 'yes' }],
  ];
  for (const [what, selection] of hostile) {
    it(`refuses ${what}`, () => {
      expect(() => decodeSelection(selection)).toThrow(ProtocolError);
    });
  }

  it('refuses a purpose it does not know', () => {
    const request = wire(
      encodePullRequest({
        t: 'pull',
        version: PROTOCOL_VERSION,
        sourceRoot: '/p',
        repository: '/r',
        options: { snapshotName: '2026.01.01-00.00.00', always: false, numericIds: false, verbose: false, quickCheck: true, sourceLabel: 'x', purpose: 'backup' },
      }),
    ) as { options: Record<string, unknown> };
    request.options.purpose = 'delete-everything';
    expect(() => decodePullRequest(request)).toThrow(/invalid run purpose/);
  });
});
