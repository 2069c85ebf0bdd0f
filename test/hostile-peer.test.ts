// A malicious source, built from the real protocol code, talking to the real agent
// bundle: whatever it sends, nothing is written outside the repository.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FrameDecoder, FrameWriter } from '../src/protocol/frames.js';
import { PROTOCOL_VERSION, encodeEntry, decodeAgentMessage, type Entry } from '../src/protocol/messages.js';
import { ROOT, tempDir } from './helpers.js';

const dir = (path: string): Entry => ({ path: Buffer.from(path), type: 'dir', size: 0, mtimeNs: 0n, mode: 0o755, uid: 0, gid: 0 });

/** Sends raw (already encoded) messages to a fresh agent and returns what it answered. */
async function talk(repository: string, messages: object[]): Promise<{ replies: { t: string; message?: string }[]; code: number }> {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'agent.cjs')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const writer = new FrameWriter(child.stdin);
  const decoder = new FrameDecoder();
  const replies: { t: string; message?: string }[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    for (const f of decoder.push(chunk)) if (f.type === 1) replies.push(decodeAgentMessage(f.message) as { t: string });
  });
  const hello = {
    t: 'hello',
    version: PROTOCOL_VERSION,
    repository,
    options: { snapshotName: '2026.01.01-00.00.00', always: false, numericIds: false, verbose: false, quickCheck: false, sourceLabel: 'evil', purpose: 'backup' },
  };
  for (const m of [hello, ...messages]) await writer.send(m);
  writer.end();
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
  return { replies, code };
}

describe('the agent against a malicious source', () => {
  const attacks: [string, object][] = [
    ['a dot-dot path', { p: '../escape', k: 'd', s: 0, m: '0', mo: 0o755, u: 0, g: 0 }],
    ['an absolute path', { p: '/tmp/escape', k: 'd', s: 0, m: '0', mo: 0o755, u: 0, g: 0 }],
    ['a dot-dot path in raw bytes', { pb: Buffer.from('a/../../escape').toString('base64'), k: 'd', s: 0, m: '0', mo: 0o755, u: 0, g: 0 }],
  ];
  for (const [name, evil] of attacks) {
    it(`refuses ${name}`, async () => {
      const work = tempDir();
      const repo = join(work, 'repo');
      const { replies, code } = await talk(repo, [{ t: 'entries', first: 0, entries: [encodeEntry(dir('')), evil] }]);
      expect(code).toBe(1);
      expect(replies.at(-1)?.t).toBe('error');
      expect(readdirSync(work)).toEqual(['repo']);
      expect(readdirSync(join(repo, '.lb', 'tmp'))).toEqual([]);
    });
  }

  it('refuses an entry beneath a symlink it sent, so nothing is written through it', async () => {
    const work = tempDir();
    const repo = join(work, 'repo');
    const outside = join(work, 'outside');
    mkdirSync(outside);
    const link: Entry = { ...dir('door'), type: 'symlink', target: Buffer.from(outside) };
    const through: Entry = { ...dir('door/planted'), type: 'dir' };
    const { replies, code } = await talk(repo, [
      { t: 'entries', first: 0, entries: [encodeEntry(dir('')), encodeEntry(link), encodeEntry(through)] },
      { t: 'end', incomplete: false },
    ]);
    expect(code).toBe(1);
    expect(replies.at(-1)?.message).toMatch(/parent is not a directory/);
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(join(repo, 'latest'))).toBe(false);
  });

  it('refuses entries out of order or repeated, and data nobody asked for', async () => {
    const work = tempDir();
    const repo = join(work, 'repo');
    const twice = await talk(repo, [{ t: 'entries', first: 0, entries: [encodeEntry(dir('')), encodeEntry(dir('b')), encodeEntry(dir('a'))] }]);
    expect(twice.code).toBe(1);
    expect(twice.replies.at(-1)?.message).toMatch(/out of order/);
    const unasked = await talk(repo, [{ t: 'entries', first: 0, entries: [encodeEntry(dir(''))] }, { t: 'data-begin', index: 0, from: 0 }]);
    expect(unasked.code).toBe(1);
    expect(unasked.replies.at(-1)?.message).toMatch(/asked nothing/);
    const deferred = await talk(repo, [{ t: 'entries', first: 0, entries: [encodeEntry(dir(''))] }, { t: 'deferred', index: 0 }]);
    expect(deferred.code).toBe(1);
    expect(deferred.replies.at(-1)?.message).toMatch(/asked nothing/);
    expect(readdirSync(join(repo, '.lb', 'tmp'))).toEqual([]);
    expect(existsSync(join(repo, '.lb', 'lock'))).toBe(false);
  });

  describe('zero runs (protocol 6)', () => {
    const SIZE = 64 * 1024;
    const zerosHash = createHash('sha256').update(Buffer.alloc(SIZE)).digest('hex');
    const file: Entry = { ...dir('disk.img'), type: 'file', size: SIZE, mode: 0o644 };
    const facts = { h: zerosHash, s: SIZE, m: '0' };
    /** The file listed, hashed on request, then asked for (the repository lacks its content): its data is due. */
    const asked = [{ t: 'entries', first: 0, entries: [encodeEntry(dir('')), encodeEntry(file)] }, { t: 'hashed', index: 1, facts }];

    it('refuses a run of zeros outside a file', async () => {
      const repo = join(tempDir(), 'repo');
      const { replies, code } = await talk(repo, [...asked, { t: 'zeros', length: 4096 }]);
      expect(code).toBe(1);
      expect(replies.at(-1)?.message).toMatch(/zeros outside a file/);
      expect(readdirSync(join(repo, '.lb', 'tmp'))).toEqual([]);
    });

    it('refuses a run of zeros past the size the file was announced with', async () => {
      const repo = join(tempDir(), 'repo');
      const begin = { t: 'data-begin', index: 1, from: 0 };
      const { replies, code } = await talk(repo, [...asked, begin, { t: 'zeros', length: SIZE / 2 }, { t: 'zeros', length: SIZE / 2 + 1 }]);
      expect(code).toBe(1);
      expect(replies.at(-1)?.message).toMatch(/zeros past the end of entry 1/);
      const huge = await talk(repo, [...asked, begin, { t: 'zeros', length: Number.MAX_SAFE_INTEGER }]);
      expect(huge.replies.at(-1)?.message).toMatch(/zeros past the end of entry 1/);
      const none = await talk(repo, [...asked, begin, { t: 'zeros', length: 0 }]);
      expect(none.replies.at(-1)?.message).toMatch(/invalid zero run length/);
      expect(readdirSync(join(repo, '.lb', 'tmp'))).toEqual([]);
      expect(existsSync(join(repo, 'latest'))).toBe(false);
    });

    it('takes a file sent as zeros, checks it against its hash and stores it as a hole', async () => {
      const repo = join(tempDir(), 'repo');
      const { replies, code } = await talk(repo, [
        ...asked,
        { t: 'data-begin', index: 1, from: 0 },
        { t: 'zeros', length: SIZE },
        { t: 'data-end', index: 1, facts },
        { t: 'end', incomplete: false },
      ]);
      expect(replies.at(-1)?.t, replies.at(-1)?.message).toBe('done');
      expect(code).toBe(0);
      const stored = statSync(join(repo, 'latest', 'tree', 'disk.img'));
      expect([stored.size, stored.blocks]).toEqual([SIZE, 0]);
    });
  });
});
