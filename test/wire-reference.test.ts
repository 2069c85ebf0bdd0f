// Runs of the previous snapshot (protocol 8): the source side remembers the stream it
// last sent and sends unchanged entries as counts. A snapshot made so must be the one
// whole entries make, byte for byte; anything that is not exactly the remembered stream
// falls back to whole entries; a source cannot point beyond what the repository wrote.
import { chmodSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sentStreamPath } from '../src/agent/sent-memory.js';
import { PROTOCOL_VERSION, encodeEntry, type Entry } from '../src/protocol/messages.js';
import { backup, rsyncDifferences, snapshots, tempDir } from './helpers.js';
import { file, makeSource, manifest, sizeOf, streamOfLatest, talk, treeDifferences, pushOver } from './wire-helpers.js';
import { startSshd, type Sshd } from './sshd.js';

/** What a week does to it: new, rewritten, touched, chmod'ed, removed and moved files, a moved directory. */
function churn(root: string): number {
  file(join(root, 'albums', '2024', 'NEW_1.jpg'), 2000, 1_500_000);
  file(join(root, 'docs', 'new.txt'), 2001, 500_000);
  file(join(root, 'albums', '2023', 'IMG_0001.jpg'), 2002, sizeOf(1)); // rewritten, same size
  utimesSync(join(root, 'albums', '2023', 'IMG_0003.jpg'), new Date('2024-04-01T00:00:00Z'), new Date('2024-04-01T00:00:00Z'));
  chmodSync(join(root, 'albums', '2024', 'IMG_0004.jpg'), 0o600);
  rmSync(join(root, 'albums', '2024', 'IMG_0006.jpg'));
  renameSync(join(root, 'odd'), join(root, 'moved'));
  return 1_500_000 + 500_000 + sizeOf(1);
}

/** The digest a remembered stream names in its header (sent-stream-file.ts). */
function rememberedDigest(catalog: string, repository: string, series?: string): string | null {
  try {
    return /^lb sent stream 2 ([0-9a-f]{64}) /.exec(readFileSync(sentStreamPath(catalog, repository, series), 'latin1'))?.[1] ?? null;
  } catch {
    return null;
  }
}

describe('runs of the previous snapshot, locally', () => {
  it('make the same snapshot as whole entries: manifest byte for byte, tree by rsync', () => {
    const work = tempDir();
    const source = join(work, 'source');
    makeSource(source);
    const [withRuns, without] = [join(work, 'with'), join(work, 'without')];
    backup(source, withRuns, join(work, 'catalog'));
    backup(source, without, join(work, 'catalog-first'));
    expect(rememberedDigest(join(work, 'catalog'), withRuns)).toBe(streamOfLatest(withRuns));
    churn(source);
    const a = backup(source, withRuns, join(work, 'catalog'));
    // A fresh catalog remembers nothing: every entry goes whole.
    const b = backup(source, without, join(work, 'catalog-fresh'));
    expect(a.created).toBe(true);
    expect(manifest(withRuns).equals(manifest(without))).toBe(true);
    expect(readFileSync(join(withRuns, 'latest', 'summary'), 'utf8')).toBe(readFileSync(join(without, 'latest', 'summary'), 'utf8'));
    expect(treeDifferences(withRuns, without)).toEqual([]);
    expect(rsyncDifferences(source, join(withRuns, 'latest', 'tree'))).toEqual([]);
    expect(a.files).toEqual(b.files);
    // The new stream is remembered once the snapshot is published, and names it.
    expect(rememberedDigest(join(work, 'catalog'), withRuns)).toBe(streamOfLatest(withRuns));
  });

  it('an unchanged source makes no snapshot, and a series keeps a stream of its own', () => {
    const work = tempDir();
    const source = join(work, 'source');
    makeSource(source);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');
    backup(source, repo, catalog, ['--series', 'photos']);
    expect(backup(source, repo, catalog, ['--series', 'photos']).created).toBe(false);
    expect(rememberedDigest(catalog, repo, 'photos')).toBe(streamOfLatest(join(repo, 'photos')));
    expect(rememberedDigest(catalog, repo)).toBeNull();
  });

  it('fall back to whole entries, with no error, when another source wrote the latest snapshot', () => {
    const work = tempDir();
    const [one, other] = [join(work, 'one'), join(work, 'other')];
    makeSource(one);
    makeSource(other);
    // The same paths, sizes and times with other content: a run of the other's records would be wrong.
    file(join(other, 'albums', '2024', 'IMG_0010.jpg'), 9999, sizeOf(10));
    const repo = join(work, 'repo');
    backup(one, repo, join(work, 'catalog-one'));
    backup(other, repo, join(work, 'catalog-other'));
    churn(one);
    backup(one, repo, join(work, 'catalog-one'));
    expect(rsyncDifferences(one, join(repo, 'latest', 'tree'))).toEqual([]);
  });

  it('fall back when the remembered snapshot was removed, and when the latest manifest was damaged since it was written', () => {
    const work = tempDir();
    const source = join(work, 'source');
    makeSource(source);
    const repo = join(work, 'repo');
    const catalog = join(work, 'catalog');
    backup(source, repo, catalog);
    file(join(source, 'docs', 'second.txt'), 3000, 100);
    backup(source, repo, catalog);
    const [first, second] = snapshots(repo);
    rmSync(join(repo, second!), { recursive: true }); // latest now points nowhere; lb repairs it to the first
    churn(source);
    backup(source, repo, catalog);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
    expect(snapshots(repo)[0]).toBe(first);

    // A record's mtime changed in the manifest (by hand, or by the disk): runs would copy the damage on.
    const latest = join(repo, 'latest', 'manifest');
    const lines = readFileSync(latest, 'utf8').split('\n');
    const at = lines.findIndex((l) => l.includes('\talbums/2024/IMG_0008.jpg\t'));
    const fields = lines[at]!.split('\t');
    fields[5] = String(BigInt(fields[5]!) + 1_000_000_000n);
    lines[at] = fields.join('\t');
    writeFileSync(latest, lines.join('\n'));
    file(join(source, 'docs', 'third.txt'), 3001, 100);
    backup(source, repo, catalog);
    expect(rsyncDifferences(source, join(repo, 'latest', 'tree'))).toEqual([]);
  });
});

describe('the repository side against a source sending runs', () => {
  const root: Entry = { path: Buffer.alloc(0), type: 'dir', size: 0, mtimeNs: 0n, mode: 0o755, uid: 0, gid: 0 };
  const dir = (path: string): object => encodeEntry({ ...root, path: Buffer.from(path) });
  let repo: string;
  let stream: string;
  let records: number;
  let before: string[];

  let work: string;
  // Not tempDir(): that is emptied after each test, and these share one repository.
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'lb-runs-'));
    const source = join(work, 'source');
    makeSource(source, 4);
    repo = join(work, 'repo');
    backup(source, repo, join(work, 'catalog'));
    stream = streamOfLatest(repo);
    records = manifest(repo).toString().split('\n').length - 2;
    before = snapshots(repo);
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  /** `offered`: the stream digest the hello names (null: none). */
  async function refused(messages: object[], why: RegExp, offered: string | null = stream): Promise<void> {
    const { replies, code } = await talk(repo, offered ?? undefined, [...messages, { t: 'end', incomplete: false }]);
    expect(code).toBe(1);
    expect(replies.at(-1)).toMatchObject({ t: 'error' });
    expect(String(replies.at(-1)!.message)).toMatch(why);
    expect(snapshots(repo)).toEqual(before);
    expect(readdirSync(join(repo, '.lb', 'tmp'))).toEqual([]);
  }

  /** The index of the manifest's first record that names a hard-link group's first (a group's later member). */
  function groupMember(): number {
    const records = manifest(repo).toString().split('\n').slice(1, -1);
    return records.findIndex((line) => line.split('\t')[10] !== '-');
  }

  it('accepts runs only for the stream of its latest snapshot', async () => {
    const member = groupMember();
    expect(member).toBeGreaterThan(0);
    // Every record but the group's later member (runs never carry a group), in two runs.
    const runs = [{ r: member }, { r: records - member - 1, o: 1 }];
    const accepted = await talk(repo, stream, [{ t: 'entries', first: 0, entries: runs }, { t: 'end', incomplete: false }]);
    expect(accepted.replies[0]).toMatchObject({ t: 'hello', references: true });
    expect(accepted.code).toBe(0);
    expect(accepted.replies.at(-1)).toMatchObject({ t: 'done' });
    // The previous snapshot's records, as they were, now all linked.
    const linked = (text: string) => text.replace(/^new\t/gm, 'linked\t');
    const previous = linked(readFileSync(join(repo, before[0]!, 'manifest'), 'utf8')).split('\n');
    previous.splice(member + 1, 1);
    expect(linked(readFileSync(join(repo, '2030.01.01-00.00.00', 'manifest'), 'utf8'))).toBe(previous.join('\n'));
    rmSync(join(repo, '2030.01.01-00.00.00'), { recursive: true });
    rmSync(join(repo, 'latest'));
    symlinkSync(before[0]!, join(repo, 'latest'));
    const other = await talk(repo, 'f'.repeat(64), [{ t: 'entries', first: 0, entries: [encodeEntry(root)] }]);
    expect(other.replies[0]).toEqual({ t: 'hello', version: PROTOCOL_VERSION, repository: expect.anything() });
  });

  it('refuses a run it did not accept', async () => {
    await refused([{ t: 'entries', first: 0, entries: [{ r: 1 }] }], /did not accept/, 'f'.repeat(64));
    await refused([{ t: 'entries', first: 0, entries: [{ r: 1 }] }], /did not accept/, null);
  });

  it('refuses a run past the end of the previous snapshot', async () => {
    const member = groupMember();
    await refused([{ t: 'entries', first: 0, entries: [{ r: member }, { r: records - member, o: 1 }] }], /past the end/);
    await refused([{ t: 'entries', first: 0, entries: [encodeEntry(root), { r: 1, o: records }] }], /past the end/);
  });

  it('refuses a run out of canonical order with the entries around it', async () => {
    // The run takes the root and "albums"; "albums" again after it is a repeat.
    await refused([{ t: 'entries', first: 0, entries: [{ r: 2 }, dir('albums')] }], /out of order/);
    // Passing over "albums" and taking what lies inside it: its parent was never sent.
    await refused([{ t: 'entries', first: 0, entries: [encodeEntry(root), { r: 1, o: 1 }] }], /parent is not a directory/);
    // An entry sorting after every record, then a run: nothing is left to take.
    await refused([{ t: 'entries', first: 0, entries: [encodeEntry(root), dir('zzz'), { r: 1 }] }], /past the end/);
  });

  it('refuses a run over a source hard link, which only whole entries can place in a group', async () => {
    await refused([{ t: 'entries', first: 0, entries: [{ r: groupMember() + 1 }] }], /hard link/);
  });
});

describe('runs of the previous snapshot over SSH', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(() => sshd?.stop());

  const push = (source: string, repo: string, catalog: string) => pushOver(sshd, source, repo, catalog);

  it('put no more than the new content + 2% on the wire after churn, and make the snapshot whole entries make', () => {
    const work = tempDir();
    const source = join(work, 'source');
    makeSource(source, 3000);
    const [withRuns, without] = [join(work, 'with'), join(work, 'without')];
    push(source, withRuns, join(work, 'catalog'));
    push(source, without, join(work, 'catalog-2'));
    const newContent = churn(source);
    const a = push(source, withRuns, join(work, 'catalog'));
    // The same catalog (every hash cached) without its remembered streams: whole entries.
    rmSync(`${join(work, 'catalog-2')}-sent`, { recursive: true });
    const b = push(source, without, join(work, 'catalog-2'));
    expect(manifest(withRuns).equals(manifest(without))).toBe(true);
    expect(treeDifferences(withRuns, without)).toEqual([]);
    expect(rsyncDifferences(source, join(withRuns, 'latest', 'tree'))).toEqual([]);
    expect(a.bytes.transferred).toBe(newContent);
    const onWire = (s: typeof a) => s.wire.sent + s.wire.received;
    expect(onWire(a)).toBeLessThanOrEqual(newContent * 1.02);
    // Whole entries for 3,000 unchanged files would not fit.
    expect(onWire(b)).toBeGreaterThan(newContent * 1.02);
  });
});
