// The hash cache is read one directory at a time and each file looked up as the
// walk meets it: an unchanged run reads no file, a changed file is read again,
// and the rows of files gone from a directory are dropped.
import { rmSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { backup, settle, tempDir } from './helpers.js';

function rowCount(catalog: string): number {
  const db = new Database(catalog, { readonly: true });
  try {
    return Number(db.prepare('SELECT count(*) FROM hashes').pluck().get());
  } finally {
    db.close();
  }
}

describe('the hash cache, directory by directory', () => {
  it('vouches for every unchanged file, not for a changed one, and forgets files gone', () => {
    const root = tempDir();
    const source = join(root, 'source');
    const catalog = join(root, 'catalog.sqlite');
    for (const dir of ['big', 'small']) mkdirSync(join(source, dir), { recursive: true });
    for (let i = 0; i < 300; i++) writeFileSync(join(source, 'big', `f${i}`), `big ${i}\n`);
    for (let i = 0; i < 3; i++) writeFileSync(join(source, 'small', `f${i}`), `small ${i}\n`);
    settle();
    const repo = join(root, 'repo');
    expect(backup(source, repo, catalog).bytes.read).toBeGreaterThan(0);
    expect(rowCount(catalog)).toBe(303);

    expect(backup(source, repo, catalog).bytes.read).toBe(0);

    writeFileSync(join(source, 'big', 'f150'), 'big 150 rewritten\n');
    utimesSync(join(source, 'big', 'f150'), 1_000_000_000, 1_000_000_000);
    rmSync(join(source, 'big', 'f7'));
    rmSync(join(source, 'small', 'f1'));
    settle();
    expect(backup(source, repo, catalog).bytes.read).toBe(Buffer.byteLength('big 150 rewritten\n'));
    expect(rowCount(catalog)).toBe(301);
  });
});
