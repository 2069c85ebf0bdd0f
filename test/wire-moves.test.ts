// Moved runs (protocol 8): a directory moved since the last run goes as a reference
// to its subtree in the previous manifest, re-rooted, instead of every entry whole
// (and a file sent after its hashed ends without repeating its facts).
// The snapshot must be the one whole entries make, byte for byte; a moved directory
// changed inside goes partly as runs; a source cannot make a moved run take more than
// one directory's records of this repository, nor put them out of place.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sentStreamPath } from '../src/agent/sent-memory.js';
import { encodeEntry, type Entry } from '../src/protocol/messages.js';
import { backup, rsyncDifferences, snapshots, tempDir } from './helpers.js';
import { startSshd, type Sshd } from './sshd.js';
import { file, makeSource, manifest, sizeOf, streamOfLatest, talk, treeDifferences, pushOver } from './wire-helpers.js';

const LATIN1 = Buffer.from('caf\xe9', 'latin1');

/** Albums of small files (and one whose name is not UTF-8), as a photo library keeps them. */
function makeAlbums(root: string, albums: number, perAlbum: number): void {
  for (let a = 0; a < albums; a++) {
    const album = join(root, 'albums', `A${String(a).padStart(2, '0')}`);
    mkdirSync(album, { recursive: true });
    for (let i = 0; i < perAlbum; i++) file(join(album, `IMG_${String(i).padStart(4, '0')}.jpg`), a * 1000 + i, sizeOf(a * 1000 + i));
  }
  const odd = Buffer.concat([Buffer.from(join(root, 'albums') + '/'), LATIN1]);
  mkdirSync(odd);
  for (let i = 0; i < perAlbum; i++) file(Buffer.concat([odd, Buffer.from(`/IMG_${i}.jpg`)]), 900_000 + i, sizeOf(i));
}

/** Moves 30% of the albums (to new names, under a new parent, the odd one to another odd name) and adds new files; returns the new bytes. */
function moveAlbums(root: string, albums: number): number {
  const albumsDir = join(root, 'albums');
  mkdirSync(join(albumsDir, 'sorted'));
  for (let a = 0; a < albums; a += 3) {
    const name = `A${String(a).padStart(2, '0')}`;
    renameSync(join(albumsDir, name), a % 2 ? join(albumsDir, 'sorted', name) : join(albumsDir, `Z${name}`));
  }
  renameSync(Buffer.concat([Buffer.from(albumsDir + '/'), LATIN1]), Buffer.concat([Buffer.from(albumsDir + '/'), LATIN1, Buffer.from('-\xff', 'latin1')]));
  file(join(albumsDir, 'A01', 'NEW.jpg'), 7000, 400_000);
  file(join(albumsDir, 'sorted', 'NEW.jpg'), 7001, 200_000);
  return 600_000;
}

/** One album moved and changed inside: a file rewritten (same size), one added. */
function moveAndChange(root: string): number {
  renameSync(join(root, 'albums', 'A02'), join(root, 'albums', 'sorted', 'A02'));
  file(join(root, 'albums', 'sorted', 'A02', 'IMG_0005.jpg'), 8000, sizeOf(2005));
  file(join(root, 'albums', 'sorted', 'A02', 'IMG_0005b.jpg'), 8001, 600_000);
  return sizeOf(2005) + 600_000;
}

describe('moved directories, locally', () => {
  it('make the snapshot whole entries make, when moved as they were and when changed inside', () => {
    const work = tempDir();
    const source = join(work, 'source');
    makeAlbums(source, 10, 12);
    const [withRuns, without] = [join(work, 'with'), join(work, 'without')];
    backup(source, withRuns, join(work, 'catalog'));
    backup(source, without, join(work, 'catalog-2'));
    for (const churn of [() => moveAlbums(source, 10), () => moveAndChange(source)]) {
      churn();
      const a = backup(source, withRuns, join(work, 'catalog'));
      rmSync(`${join(work, 'catalog-2')}-sent`, { recursive: true });
      const b = backup(source, without, join(work, 'catalog-2'));
      expect(a.created).toBe(true);
      expect(manifest(withRuns).equals(manifest(without))).toBe(true);
      expect(readFileSync(join(withRuns, 'latest', 'summary'), 'utf8')).toBe(readFileSync(join(without, 'latest', 'summary'), 'utf8'));
      expect(treeDifferences(withRuns, without)).toEqual([]);
      expect(rsyncDifferences(source, join(withRuns, 'latest', 'tree'))).toEqual([]);
      expect(a.files).toEqual(b.files);
    }
  });

  it('ignore a remembered stream that is stale or damaged, never failing for it', () => {
    const work = tempDir();
    const source = join(work, 'source');
    makeAlbums(source, 4, 5);
    const [repo, catalog] = [join(work, 'repo'), join(work, 'catalog')];
    backup(source, repo, catalog);
    const remembered = sentStreamPath(catalog, repo, undefined);
    const damages: ((kept: Buffer) => Buffer)[] = [
      // The previous format's header (no directory index), then nothing it can read.
      (kept) => Buffer.concat([Buffer.from(`lb sent stream 1 ${streamOfLatest(repo)}\n`.padEnd(128, ' ')), Buffer.from('junk')]),
      // The directory index damaged (its last bytes, inside its gzip member).
      (kept) => Buffer.concat([kept.subarray(0, kept.length - 12), Buffer.alloc(12, 0xaa)]),
      // Cut in the middle of its lines, the index offset pointing past the end.
      (kept) => kept.subarray(0, 200),
    ];
    damages.forEach((damage, i) => {
      renameSync(join(source, 'albums', `A0${i}`), join(source, 'albums', `M0${i}`));
      writeFileSync(remembered, damage(readFileSync(remembered)));
      expect(backup(source, repo, catalog).created).toBe(true);
      expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
    });
  });
});

describe('the repository side against a source sending moved runs', () => {
  const root: Entry = { path: Buffer.alloc(0), type: 'dir', size: 0, mtimeNs: 0n, mode: 0o755, uid: 0, gid: 0 };
  const dir = (path: string): object => encodeEntry({ ...root, path: Buffer.from(path) });
  const moved = (r: number, from: string, to: string, at = 0): object => ({ r, mv: from, to, ...(at ? { at } : {}) });
  let work: string;
  let repo: string;
  let stream: string;
  let before: string[];

  // Not tempDir(): that is emptied after each test, and these share one repository.
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'lb-moves-'));
    const source = join(work, 'source');
    // Records: '', albums, albums/2023 (and its 2 files), albums/2024 (2), docs, docs/linked-a, docs/linked-b (a group member), docs/notes.txt, odd (3).
    makeSource(source, 4);
    repo = join(work, 'repo');
    backup(source, repo, join(work, 'catalog'));
    stream = streamOfLatest(repo);
    before = snapshots(repo);
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  async function refused(entries: object[], why: RegExp, offered: string | null = stream, after: object[] = []): Promise<void> {
    const { replies, code } = await talk(repo, offered ?? undefined, [{ t: 'entries', first: 0, entries }, ...after, { t: 'end', incomplete: false }]);
    expect(code).toBe(1);
    expect(replies.at(-1)).toMatchObject({ t: 'error' });
    expect(String(replies.at(-1)!.message)).toMatch(why);
    // One line, and nothing left behind.
    expect(String(replies.at(-1)!.message)).not.toContain('\n');
    expect(snapshots(repo)).toEqual(before);
    expect(readdirSync(join(repo, '.lb', 'tmp'))).toEqual([]);
  }

  it('takes a moved directory from its previous records, re-rooted, in two runs of it', async () => {
    // albums/2023 again as albums/2022, its second file left out; the rest in place.
    const entries = [{ r: 2 }, moved(2, 'albums/2023', 'albums/2022'), { r: 3 }];
    const accepted = await talk(repo, stream, [{ t: 'entries', first: 0, entries }, { t: 'end', incomplete: false }]);
    expect(accepted.replies.at(-1)).toMatchObject({ t: 'done' });
    const made = readFileSync(join(repo, '2030.01.01-00.00.00', 'manifest'), 'utf8').split('\n');
    const old = readFileSync(join(repo, before[0]!, 'manifest'), 'utf8').split('\n');
    const reRooted = (line: string) => line.replace(/^new\t/, 'linked\t').replace('\talbums/2023', '\talbums/2022');
    expect(made.slice(3, 5)).toEqual(old.slice(3, 5).map(reRooted));
    rmSync(join(repo, '2030.01.01-00.00.00'), { recursive: true });
    rmSync(join(repo, 'latest'));
    symlinkSync(before[0]!, join(repo, 'latest'));
  });

  it('refuses a moved run of a directory the previous snapshot lacks, or of a file', async () => {
    await refused([encodeEntry(root), moved(1, 'nowhere', 'somewhere')], /no directory of the previous snapshot/);
    await refused([encodeEntry(root), dir('docs'), moved(1, 'docs/notes.txt', 'docs/x')], /no directory of the previous snapshot/);
  });

  it('refuses a moved run that counts past the directory', async () => {
    await refused([encodeEntry(root), dir('albums'), moved(4, 'albums/2023', 'albums/2022')], /past the end of "albums\/2023"/);
    await refused([encodeEntry(root), dir('albums'), moved(1, 'albums/2023', 'albums/2022', 3)], /past the end/);
  });

  it('refuses a moved run out of order, or under a parent never sent', async () => {
    await refused([encodeEntry(root), dir('zzz'), moved(3, 'albums/2023', 'albums/2022')], /out of order/);
    await refused([encodeEntry(root), moved(3, 'albums/2023', 'photos/2022')], /parent is not a directory/);
    // Its files without its directory.
    await refused([encodeEntry(root), dir('albums'), moved(2, 'albums/2023', 'albums/2022', 1)], /parent is not a directory/);
  });

  it('refuses a moved run over a source hard link, one it did not accept, and one of the root', async () => {
    await refused([encodeEntry(root), moved(3, 'docs', 'papers')], /hard link/);
    await refused([encodeEntry(root), moved(3, 'albums', 'photos')], /did not accept/, 'f'.repeat(64));
    await refused([encodeEntry(root), { r: 1, mv: '', to: 'photos' }], /invalid moved run/);
    await refused([encodeEntry(root), { r: 1, mv: 'albums', to: 'photos', o: 1 }], /invalid moved run/);
  });

  it('refuses a data-end without facts for a file it never sent a hashed for', async () => {
    const empty = encodeEntry({ ...root, path: Buffer.from('empty'), type: 'file', hash: createHash('sha256').digest('hex') });
    const data = [{ t: 'data-begin', index: 1, from: 0 }, { t: 'data-end', index: 1 }];
    await refused([encodeEntry(root), empty], /ended entry 1 without its facts/, null, data);
  });
});

describe('moved directories over SSH', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(() => sshd?.stop());

  const push = (source: string, repo: string, catalog: string) => pushOver(sshd, source, repo, catalog);

  it('put no more than the new content + 2% on the wire after moving 30% of the albums, and after changing one moved', () => {
    const work = tempDir();
    const source = join(work, 'source');
    // 1,500 files: whole entries for the 30% moved would take more than the 2%.
    makeAlbums(source, 29, 50);
    const [withRuns, without] = [join(work, 'with'), join(work, 'without')];
    push(source, withRuns, join(work, 'catalog'));
    push(source, without, join(work, 'catalog-2'));
    for (const churn of [() => moveAlbums(source, 29), () => moveAndChange(source)]) {
      const newContent = churn();
      const a = push(source, withRuns, join(work, 'catalog'));
      rmSync(`${join(work, 'catalog-2')}-sent`, { recursive: true });
      push(source, without, join(work, 'catalog-2'));
      expect(manifest(withRuns).equals(manifest(without))).toBe(true);
      expect(treeDifferences(withRuns, without)).toEqual([]);
      expect(rsyncDifferences(source, join(withRuns, 'latest', 'tree'))).toEqual([]);
      expect(a.bytes.transferred).toBe(newContent);
      expect(a.wire.sent + a.wire.received).toBeLessThanOrEqual(newContent * 1.02);
    }
  });
});
