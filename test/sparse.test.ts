// Sparse files stay sparse: in the repository, on the wire (local and pulled over a
// real sshd) and in `lb restore`, here and over SSH both ways. Allocation is measured with du -B1 (st_blocks),
// content compared with cmp: both independent of lb.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, ftruncateSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup, lb, tempDir, type Summary } from './helpers.js';
import { startSshd, type Sshd } from './sshd.js';

const MiB = 1024 * 1024;
/** Filesystem slack on top of the data: extent-tree blocks, a partly written block. */
const SLACK = 256 * 1024;

let sshd: Sshd;
beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(() => sshd?.stop());

interface SparseFile {
  name: string;
  size: number;
  /** [offset, length] of random data; the rest is holes. */
  data: [number, number][];
}

const FILES: SparseFile[] = [
  // `truncate -s 2G` with a few MiB written in the middle: the disk image of the issue.
  { name: 'disk.img', size: 2 * 1024 * MiB, data: [[1000 * MiB, 3 * MiB], [1500 * MiB + 12345, 100_000]] },
  { name: 'trailing-hole', size: 48 * MiB, data: [[0, MiB]] },
  { name: 'leading-hole', size: 48 * MiB, data: [[47 * MiB, MiB]] },
];
const NOTES = 70_000;
/** The bytes that must travel as data: the sparse files' data and the plain file (zero blocks go as counts). */
const DATA = FILES.reduce((sum, f) => sum + f.data.reduce((s, [, length]) => s + length, 0), 0) + NOTES;
/** Zeros sharing a block with data, and the zero end of a last block, go as data. */
const PARTIAL_BLOCKS = 6 * 4096;

/** The source: the sparse files, a file of real (written) zeros, a plain small file. */
function makeSource(root: string): void {
  mkdirSync(root);
  for (const file of FILES) {
    const fd = openSync(join(root, file.name), 'w');
    try {
      ftruncateSync(fd, file.size);
      for (const [offset, length] of file.data) writeSync(fd, randomBytes(length), 0, length, offset);
    } finally {
      closeSync(fd);
    }
  }
  writeFileSync(join(root, 'zeros'), Buffer.alloc(3_000_000));
  writeFileSync(join(root, 'notes.txt'), randomBytes(NOTES));
}

/** Bytes allocated on disk, as du counts them. */
function allocated(path: string): number {
  const r = spawnSync('du', ['-B1', path], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return Number(r.stdout.split('\t')[0]);
}

function sameContent(a: string, b: string): boolean {
  return spawnSync('cmp', ['--silent', a, b]).status === 0;
}

/** Every file of `tree` has the source's content, and each sparse one takes about its data on disk. */
function expectSparseCopy(source: string, tree: string): void {
  for (const name of [...FILES.map((f) => f.name), 'zeros', 'notes.txt']) {
    expect(sameContent(join(source, name), join(tree, name)), name).toBe(true);
  }
  for (const file of FILES) {
    const data = file.data.reduce((s, [, length]) => s + length, 0);
    expect(allocated(join(tree, file.name)), file.name).toBeLessThanOrEqual(data + SLACK);
  }
}

describe('sparse files', () => {
  it('a local backup stores them sparse and sends their zeros as counts; lb restore writes them sparse; a copied object stays sparse', { timeout: 600_000 }, () => {
    const work = tempDir();
    const source = join(work, 'source');
    makeSource(source);
    const repo = join(work, 'repo');
    const first = backup(source, repo, join(work, 'catalog.db'));
    expect(first.files.new).toBe(5);
    expectSparseCopy(source, join(repo, 'latest', 'tree'));
    // Only data travelled, not the 2 GiB of zeros.
    expect(first.bytes.transferred).toBeLessThanOrEqual(DATA + PARTIAL_BLOCKS);

    const target = join(work, 'restored');
    const restored = lb(['restore', repo, target]);
    expect(restored.stderr).toBe('');
    expect(restored.status).toBe(0);
    expectSparseCopy(source, target);

    // Same content, other metadata: the repository copies the object it has (no reflink on ext4).
    chmodSync(join(source, 'disk.img'), 0o600);
    const second = backup(source, repo, join(work, 'catalog.db'));
    expect([second.files.copied, second.bytes.transferred]).toEqual([1, 0]);
    expectSparseCopy(source, join(repo, 'latest', 'tree'));
  });

  it('a pull over SSH carries about the data, not the zeros, and stores them sparse', { timeout: 600_000 }, () => {
    const work = tempDir();
    const source = join(work, 'source');
    makeSource(source);
    const repo = join(work, 'pulled');
    const r = lb(['backup', `root@127.0.0.1:${source}`, repo, '--json', '--ssh-p', String(sshd.port)], sshd.env);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const summary = JSON.parse(r.stdout) as Summary & { wire: { sent: number; received: number } };
    expect(summary.files.new).toBe(5);
    expect(summary.bytes.transferred).toBeLessThanOrEqual(DATA + PARTIAL_BLOCKS);
    // The SSH channel itself: the data, the few other files, and the conversation.
    expect(summary.wire.received).toBeLessThanOrEqual(DATA + 2 * MiB);
    expectSparseCopy(source, join(repo, 'latest', 'tree'));
  });

  it('lb restore over SSH, both ways, carries about the data, not the zeros, and writes them sparse', { timeout: 600_000 }, () => {
    const work = tempDir();
    const source = join(work, 'source');
    makeSource(source);
    const repo = join(work, 'repo');
    backup(source, repo, join(work, 'catalog.db'));
    const ssh = ['--json', '--ssh-p', String(sshd.port)];
    for (const [from, to, target] of [
      [`root@127.0.0.1:${repo}`, join(work, 'from-remote'), join(work, 'from-remote')],
      [repo, `root@127.0.0.1:${join(work, 'to-remote')}`, join(work, 'to-remote')],
    ]) {
      const r = lb(['restore', from!, to!, ...ssh], sshd.env);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      const summary = JSON.parse(r.stdout) as { bytes: number; wire: { sent: number; received: number } };
      expect(summary.bytes).toBeGreaterThan(2 * 1024 * MiB);
      // The SSH channel itself: the data, the few other files, and the conversation.
      expect(summary.wire.sent + summary.wire.received, `${from} -> ${to}`).toBeLessThanOrEqual(DATA + 2 * MiB);
      expectSparseCopy(source, target!);
    }
  });
});
