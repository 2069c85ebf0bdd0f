// The restore writer on its own, fed as a peer over the wire could feed it: it must
// take a record only directly inside the directory it is writing, so a feed that
// breaks manifest order cannot lead a write through a symlink already in the target.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RestoreWriter } from '../src/repo/restore-writer.js';
import type { RestoreRecord } from '../src/repo/restore-record.js';
import { tempDir } from './helpers.js';

const CONTENT = Buffer.from('from a hostile feed');
const HASH = createHash('sha256').update(CONTENT).digest('hex');

function record(type: RestoreRecord['type'], path: string, extra: Partial<RestoreRecord> = {}): RestoreRecord {
  return { type, path: Buffer.from(path), hash: '', size: 0, mtimeNs: 1_500_000_000_000_000_000n, mode: 0o755, uid: 0, gid: 0, target: null, ...extra };
}

describe('RestoreWriter', () => {
  it('refuses a record whose directory was not written first, and writes nothing through a symlink in the target', () => {
    const work = tempDir();
    const target = join(work, 'target');
    const outside = join(work, 'outside');
    mkdirSync(target);
    mkdirSync(outside);
    symlinkSync(outside, join(target, 'link')); // as under --overwrite
    const problems: string[] = [];
    const writer = new RestoreWriter(target, null, (path, text) => problems.push(`${path.toString()}: ${text}`));
    writer.entry(record('dir', ''));
    writer.file(record('file', 'link/planted', { size: CONTENT.length, hash: HASH, mode: 0o644 }), [CONTENT]);
    writer.entry(record('symlink', 'link/also', { target: Buffer.from('/etc/passwd'), mode: 0o777 }));
    writer.entry(record('dir', 'link/deeper'));
    writer.entry(record('dir', 'real'));
    writer.entry(record('dir', 'other'));
    writer.file(record('file', 'real/late', { size: CONTENT.length, hash: HASH, mode: 0o644 }), [CONTENT]); // 'real' is closed by now
    const tally = writer.finish();
    expect(readdirSync(outside)).toEqual([]);
    expect(readdirSync(target).sort()).toEqual(['link', 'other', 'real']);
    expect(readdirSync(join(target, 'real'))).toEqual([]);
    const refused = 'it came before the directory holding it (out of manifest order); left out';
    expect(problems).toEqual([`link/planted: ${refused}`, `link/also: ${refused}`, `link/deeper: ${refused}`, `real/late: ${refused}`]);
    expect(tally).toMatchObject({ files: 0, symlinks: 0, directories: 3, problems: 4 });
  });

  it('copies a content it wrote before for a later path, checking its hash again', () => {
    const target = join(tempDir(), 'target');
    const problems: string[] = [];
    const writer = new RestoreWriter(target, null, (path, text) => problems.push(`${path.toString()}: ${text}`));
    const sha = '3f7b5b2a3c0d4e1b5b0e6a0c4f3e2d1c0b9a8f7e6d5c4b3a29180706f5e4d3c2'; // not the content's: both left out
    writer.entry(record('dir', ''));
    writer.file(record('file', 'first', { size: CONTENT.length, hash: sha, mode: 0o644 }), [CONTENT]);
    writer.sameContent(record('file', 'second', { size: CONTENT.length, hash: sha, mode: 0o644 }), Buffer.from('first'));
    const good = createHash('sha256').update(CONTENT).digest('hex');
    writer.file(record('file', 'third', { size: CONTENT.length, hash: good, mode: 0o600 }), [CONTENT]);
    writer.sameContent(record('file', 'fourth', { size: CONTENT.length, hash: good, mode: 0o640 }), Buffer.from('third'));
    const tally = writer.finish();
    expect(readdirSync(target).sort()).toEqual(['fourth', 'third']);
    expect(readFileSync(join(target, 'fourth'))).toEqual(CONTENT);
    expect(tally).toMatchObject({ files: 2, damaged: 2, problems: 2 });
    expect(problems.map((p) => p.split(':')[0])).toEqual(['first', 'second']);
  });
});
