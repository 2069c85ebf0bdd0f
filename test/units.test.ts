// The pure pieces, checked against independent facts rather than their own output.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { comparePaths } from '../src/diff/order.js';
import { FrameDecoder, FrameWriter, MAX_FRAME, ProtocolError } from '../src/protocol/frames.js';
import { decodeAgentMessage, decodeEntry, decodeSourceMessage, encodeAgentMessage, encodeEntry } from '../src/protocol/messages.js';
import { isSafeRelativePath } from '../src/protocol/validate.js';
import { escapeBytes, formatRecord, parseRecord, unescapeBytes } from '../src/repo/manifest.js';
import { walk } from '../src/scan/walk.js';
import { PassThrough } from 'node:stream';
import { finished } from 'node:stream/promises';
import { deflateRawSync } from 'node:zlib';
import { parseLocation } from '../src/transport/address.js';
import { tempDir } from './helpers.js';

describe('canonical order', () => {
  it('sorting whole paths with comparePaths gives exactly the order the walk yields', async () => {
    const root = tempDir();
    const names = ['a', 'a-b', 'a.b', 'a b', 'ab', 'B', '\xe9', 'a0'];
    for (const n of names) {
      mkdirSync(Buffer.from(join(root, n), 'latin1'));
      for (const m of names) writeFileSync(Buffer.from(join(root, n, m), 'latin1'), '');
    }
    const walked: Buffer[] = [];
    for await (const e of walk(root)) walked.push(e.path);
    const sorted = [...walked].sort(comparePaths);
    expect(sorted.map((p) => p.toString('latin1'))).toEqual(walked.map((p) => p.toString('latin1')));
    // Children follow their parent directly: 'a/…' entries come before 'a-b'.
    const order = walked.map((p) => p.toString('latin1'));
    expect(order.indexOf('a/B')).toBeLessThan(order.indexOf('a-b'));
  });
});

describe('manifest escaping', () => {
  it('round-trips arbitrary bytes and keeps readable names readable', () => {
    for (let i = 0; i < 500; i++) {
      const raw = randomBytes(1 + (i % 40));
      expect(unescapeBytes(escapeBytes(raw)).equals(raw), raw.toString('hex')).toBe(true);
    }
    // Every one-byte name, including the '.' that alone once came back as the empty path.
    for (let b = 0; b < 256; b++) expect(unescapeBytes(escapeBytes(Buffer.from([b]))), `byte ${b}`).toEqual(Buffer.from([b]));
    expect(escapeBytes(Buffer.from('2019-06-12 Holiday/Été.jpg'))).toBe('2019-06-12 Holiday/Été.jpg');
    expect(escapeBytes(Buffer.from('tab\there%'))).toBe('tab%09here%25');
    expect(escapeBytes(Buffer.from([0x63, 0xe9]))).toBe('c%E9');
    expect(escapeBytes(Buffer.alloc(0))).toBe('.');
  });

  it('reads back symlink targets that look like the manifest\'s markers', () => {
    for (const target of ['-', '.', '%', '-\t-']) {
      const record = { how: 'made', type: 'symlink', path: Buffer.from(target), hash: '', size: 1, mtimeNs: 5n, mode: 0o120777, uid: 0, gid: 0, target: Buffer.from(target) } as const;
      const back = parseRecord(formatRecord(record).slice(0, -1));
      expect(back.target, target).toEqual(Buffer.from(target));
      expect(back.path, target).toEqual(Buffer.from(target));
    }
  });
});

describe('protocol validation', () => {
  const base = { k: 'f', s: 1, m: '1', mo: 0o644, u: 0, g: 0 };
  // Both wire forms of a path: text, and base64 of raw bytes.
  const withPath = (p: string) => ({ ...base, pb: Buffer.from(p, 'latin1').toString('base64') });
  const withTextPath = (p: string) => ({ ...base, p });

  it('refuses absolute, dot-dot, NUL and empty-component paths', () => {
    for (const bad of ['/etc/passwd', '../x', 'a/../../x', 'a/..', '.', 'a/./b', 'a//b', 'a/', 'a\0b']) {
      expect(isSafeRelativePath(Buffer.from(bad, 'latin1'))).toBe(false);
      expect(() => decodeEntry(withPath(bad))).toThrow(ProtocolError);
      expect(() => decodeEntry(withTextPath(bad))).toThrow(ProtocolError);
    }
    for (const good of ['', 'a', 'a/b', '..a', 'a..', '.hidden', 'caf\xe9']) {
      expect(isSafeRelativePath(Buffer.from(good, 'latin1'))).toBe(true);
    }
  });

  it('refuses malformed fields and unknown messages', () => {
    expect(() => decodeEntry({ ...withPath('a'), s: -1 })).toThrow(ProtocolError);
    expect(() => decodeEntry({ ...withPath('a'), mo: 0o17777 })).toThrow(ProtocolError);
    expect(() => decodeEntry({ ...withPath('a'), h: 'not-a-hash' })).toThrow(ProtocolError);
    expect(() => decodeEntry({ ...withPath('a'), k: 'l' })).toThrow(ProtocolError); // symlink without target
    expect(() => decodeSourceMessage({ t: 'format-disk' })).toThrow(ProtocolError);
    expect(() => decodeSourceMessage({ t: 'entries', first: 0, entries: 'x' })).toThrow(ProtocolError);
  });

  it('carries run events structured, with raw-byte paths, and refuses malformed ones', () => {
    const path = Buffer.from([0x61, 0xff, 0x2f, 0x62]);
    const entry = decodeAgentMessage(encodeAgentMessage({ t: 'event', event: { kind: 'entry', how: 'copied', type: 'file', path } }));
    expect(entry).toEqual({ t: 'event', event: { kind: 'entry', how: 'copied', type: 'file', path } });
    const warning = { t: 'event', event: { kind: 'warning', text: 'x' } } as const;
    expect(decodeAgentMessage(encodeAgentMessage(warning))).toEqual(warning);
    expect(() => decodeAgentMessage({ t: 'event', event: { kind: 'entry', how: 'stolen', type: 'file', p: 'a' } })).toThrow(ProtocolError);
    expect(() => decodeAgentMessage({ t: 'event', event: { kind: 'skip', p: '../etc/passwd', reason: 'r' } })).toThrow(ProtocolError);
    expect(() => decodeAgentMessage({ t: 'event', event: { kind: 'format-disk' } })).toThrow(ProtocolError);
    expect(() => decodeAgentMessage({ t: 'log', line: 'warning: text the CLI used to parse' })).toThrow(ProtocolError);
  });

  it('carries entries with raw-byte paths through encoding', () => {
    const entry = decodeEntry(encodeEntry({ path: Buffer.from([0x61, 0xff, 0x0a]), type: 'file', size: 3, mtimeNs: 1234567890123456789n, mode: 0o600, uid: 1, gid: 2 }));
    expect(entry.path.equals(Buffer.from([0x61, 0xff, 0x0a]))).toBe(true);
    expect(entry.mtimeNs).toBe(1234567890123456789n);
    for (const name of ['caf\u00e9/\u5199\u771f.jpg', 'new\nline', '\u{1F4F7}']) {
      const target = Buffer.from([0x2e, 0x2e, 0x2f, 0xfe]);
      const link = decodeEntry(encodeEntry({ path: Buffer.from(name), type: 'symlink', size: 0, mtimeNs: 1n, mode: 0o777, uid: 0, gid: 0, target }));
      expect(link.path.toString()).toBe(name);
      expect(link.target!.equals(target)).toBe(true);
    }
  });

  it('reassembles frames split at every byte boundary and refuses oversized ones', async () => {
    const pipe = new PassThrough();
    const writer = new FrameWriter(pipe);
    const chunks: Buffer[] = [];
    pipe.on('data', (c: Buffer) => chunks.push(c));
    await writer.send({ t: 'end' });
    const large = { t: 'log', line: 'x'.repeat(5000) }; // deflated on the wire
    await writer.send(large);
    await writer.sendData(Buffer.from('payload'));
    writer.end();
    await finished(pipe);
    const wire = Buffer.concat(chunks);
    const decoder = new FrameDecoder();
    const frames = [];
    for (const byte of wire) frames.push(...decoder.push(Buffer.from([byte])));
    expect(wire.length).toBeLessThan(5000);
    expect(frames).toHaveLength(3);
    expect(frames[0]).toEqual({ type: 1, message: { t: 'end' } });
    expect(frames[1]).toEqual({ type: 1, message: large });
    expect(frames[2]).toEqual({ type: 2, data: Buffer.from('payload') });
    // A deflated frame that would inflate past the frame limit is refused, not inflated.
    const bomb = deflateRawSync(Buffer.alloc(MAX_FRAME + 1, 0x20));
    const bombFrame = Buffer.concat([Buffer.alloc(5), bomb]);
    bombFrame.writeUInt32BE(bomb.length + 1, 0);
    bombFrame[4] = 3;
    expect(() => new FrameDecoder().push(bombFrame)).toThrow(/does not inflate within the frame limit/);
    const huge = Buffer.alloc(5);
    huge.writeUInt32BE(0xffffffff, 0);
    expect(() => new FrameDecoder().push(huge)).toThrow(ProtocolError);
  });
});

describe('addresses', () => {
  it('reads [user@]host:path as scp does, and leaves paths with a slash before the colon local', () => {
    expect(parseLocation('backup@host:/snapshots')).toEqual({ kind: 'remote', user: 'backup', host: 'host', path: '/snapshots' });
    expect(parseLocation('host:photos')).toEqual({ kind: 'remote', user: undefined, host: 'host', path: 'photos' });
    expect(parseLocation('host:')).toEqual({ kind: 'remote', user: undefined, host: 'host', path: '.' });
    expect(parseLocation('me@[::1]:/x')).toEqual({ kind: 'remote', user: 'me', host: '::1', path: '/x' });
    expect(parseLocation('a.b@c@host:/x')).toEqual({ kind: 'remote', user: 'a.b@c', host: 'host', path: '/x' });
    for (const local of ['./a:b', '/photos', '/mnt/c:d', 'photos', ':x']) expect(parseLocation(local)).toEqual({ kind: 'local', path: local });
    expect(() => parseLocation('@host:/x')).toThrow(/empty user name/);
  });
});
