// A tampered lb agent for test/hostile-remote.test.ts (and remote-read.test.ts), bundled
// and planted in the remote's agent cache. Run by a pull as the source side, it answers
// as a source would for a small honest tree, then makes the attack named in the JSON file
// beside it; run by a push as the repository side, it asks the source for what it never
// listed, or names a path outside the source as missing from the repository; asked to read a repository, it sends terminal escapes and a made-up exit status; asked for a snapshot's records by `lb backup --verify`, a path climbing out of the source or records out of order; pulled with --verify, it lies in the comparison after an honest backup; asked to
// feed a restore, it names paths outside the target and contents it never sent. It speaks through the real protocol code. Hostile in manner too: it lies on
// stderr and does not exit when lb hangs up, so lb must neither believe nor wait for it.
import { randomBytes, createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { FRAME_JSON, FrameDecoder, FrameWriter, readFirstFrame } from '../src/protocol/frames.js';
import { encodeRestoreRecord } from '../src/protocol/restore-messages.js';
import type { RestoreRecord } from '../src/repo/restore-record.js';
import { PROTOCOL_VERSION, decodeAgentMessage, decodePullRequest, decodeSourceMessage, encodeEntry, encodeFacts, type Entry } from '../src/protocol/messages.js';

/** Attacks on the repository side (this lb, pulling). */
export type SourceAttack = 'dot-dot' | 'absolute' | 'raw-dot-dot' | 'nul' | 'through-symlink' | 'unasked-data' | 'other-repository';
/** Attacks on the source side (this lb, pushing); the `missing-*` ones answer `lb --showfiles` (test/seeding-remote.test.ts). */
export type RepositoryAttack = 'want-unlisted' | 'want-directory' | 'resume-unasked' | 'missing-dot-dot' | 'missing-absolute' | 'missing-twice';
/** Attacks on lb reading a repository over SSH (test/remote-read.test.ts). */
export type ReadAttack = 'escape-line' | 'bad-exit';
/** Attacks on `lb backup --verify` comparing a source with the snapshot it pushed (test/backup-verify-remote.test.ts). */
export type VerifyAttack = 'unsafe-record' | 'unordered-records';
/** Attacks on lb restoring from a remote repository (test/remote-restore.test.ts). */
export type RestoreAttack = 'restore-dot-dot' | 'restore-unwritten-reference' | 'restore-overlong' | 'restore-zero-overrun';
/**
 * Attacks on `lb backup --verify` pulling (test/backup-verify-remote.test.ts): after an honest backup, a difference whose path
 * climbs out of the source, a difference before the agent said it was ready, more records compared than lb sent.
 */
export type PulledVerifyAttack = 'unsafe-difference' | 'unasked-difference' | 'overcounted';
export type Attack = SourceAttack | RepositoryAttack | ReadAttack | VerifyAttack | RestoreAttack | PulledVerifyAttack;
const PULLED_VERIFY_ATTACKS: readonly Attack[] = ['unsafe-difference', 'unasked-difference', 'overcounted'];

/** What the test writes beside the planted agent. */
export interface AttackPlan {
  attack: Attack;
  /** A directory outside the repository that the attack aims at. */
  outside: string;
}

const LINGER_MS = 60_000;

const script = process.argv[1]!;
const plan = JSON.parse(readFileSync(`${script}.attack.json`, 'utf8')) as AttackPlan;
writeFileSync(`${script}.pid`, String(process.pid));
process.stderr.write('lb agent: all is well here\n');

const now = BigInt(Date.now()) * 1_000_000n;
const entry = (path: string | Buffer, type: Entry['type'], extra: Partial<Entry> = {}): Entry => ({
  path: Buffer.isBuffer(path) ? path : Buffer.from(path),
  type,
  size: 0,
  mtimeNs: now,
  mode: type === 'dir' ? 0o755 : 0o644,
  uid: process.getuid!(),
  gid: process.getgid!(),
  ...extra,
});

/** File contents by entry index, for answering requests. */
const contents = new Map<number, Buffer>();
const fileEntry = (index: number, path: string, content: Buffer): Entry => {
  contents.set(index, content);
  return entry(path, 'file', { size: content.length });
};
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const facts = (content: Buffer) => encodeFacts({ hash: sha256(content), size: content.length, mtimeNs: now });

const writer = new FrameWriter(process.stdout);
// Raw objects rather than typed SourceMessages: a hostile peer sends what it likes.
const send = (message: object) => writer.post(message);
async function sendFile(index: number, content: Buffer): Promise<void> {
  send({ t: 'data-begin', index, from: 0 });
  await writer.sendData(content);
  send({ t: 'data-end', index, facts: facts(content) });
}

// Deep enough to climb out of any tree under the repository, then down into the outside directory.
const escape = '../'.repeat(16) + plan.outside.slice(1) + '/planted';
const honest = [entry('', 'dir'), fileEntry(1, 'album', randomBytes(4000))];

async function attack(): Promise<void> {
  const next = honest.length;
  const planted = randomBytes(100);
  switch (plan.attack) {
    case 'dot-dot':
      send({ t: 'entries', first: next, entries: [encodeEntry(fileEntry(next, escape, planted))] });
      break;
    case 'absolute':
      send({ t: 'entries', first: next, entries: [encodeEntry(fileEntry(next, `${plan.outside}/planted`, planted))] });
      break;
    case 'raw-dot-dot': {
      const wire = encodeEntry(fileEntry(next, 'x', planted)) as Record<string, unknown>;
      delete wire.p;
      wire.pb = Buffer.from(escape).toString('base64');
      send({ t: 'entries', first: next, entries: [wire] });
      break;
    }
    case 'nul':
      send({ t: 'entries', first: next, entries: [encodeEntry(fileEntry(next, 'planted\0/../../x', planted))] });
      break;
    case 'through-symlink':
      // The link first, on its own, so lb has taken it in before the entry beneath it arrives.
      send({ t: 'entries', first: next, entries: [encodeEntry(entry('door', 'symlink', { target: Buffer.from(plan.outside), size: plan.outside.length }))] });
      await new Promise((resolve) => setTimeout(resolve, 200));
      send({ t: 'entries', first: next + 1, entries: [encodeEntry({ ...fileEntry(next + 1, 'door/planted', planted), hash: sha256(planted) })] });
      await sendFile(next + 1, planted);
      break;
    case 'unasked-data':
      // Data for a file before lb asked for it (it asks for the hash first: no hash was sent).
      send({ t: 'entries', first: next, entries: [encodeEntry(fileEntry(next, 'unasked', planted))] });
      await sendFile(next, planted);
      break;
    case 'other-repository':
      break; // the lie was in the hello
  }
  send({ t: 'end', incomplete: false });
}

/** The source side's part, as a pull runs it, up to the attack: lb's pull request first. */
async function actAsSource(): Promise<void> {
  const first = await readFirstFrame(process.stdin);
  const config = first.type === FRAME_JSON ? decodePullRequest(first.message) : null;
  if (!config) throw new Error('no pull request');
  send({
    t: 'hello',
    version: PROTOCOL_VERSION,
    repository: plan.attack === 'other-repository' ? plan.outside : config.repository,
    options: config.options,
  });
  send({ t: 'entries', first: 0, entries: honest.map(encodeEntry) });

  const decoder = new FrameDecoder();
  let attacked = false;
  // Attacking the comparison after an honest backup: lb's messages after the backup's are not read.
  let backupOver = false;
  const afterBackup = PULLED_VERIFY_ATTACKS.includes(plan.attack);
  process.stdin.on('data', (chunk: Buffer) => {
    for (const frame of decoder.push(chunk)) {
      if (frame.type !== FRAME_JSON || backupOver) continue;
      const message = decodeAgentMessage(frame.message);
      if (message.t === 'want') {
        for (const index of message.hash) send({ t: 'hashed', index, facts: facts(contents.get(index)!) });
        for (const index of message.data) void sendFile(index, contents.get(index)!);
      } else if (message.t === 'settled' && message.upTo >= honest.length && !attacked) {
        attacked = true;
        if (afterBackup) send({ t: 'end', incomplete: false });
        else void attack();
      } else if (message.t === 'done' && afterBackup) {
        backupOver = true;
        attackComparison();
      }
    }
  });
  process.stdin.resume(); // readFirstFrame left it paused
}

/** The comparison a pulled --verify asks for, once the honest backup is over. */
function attackComparison(): void {
  switch (plan.attack) {
    case 'unasked-difference':
      send({ t: 'difference', p: 'album', detail: 'made up before lb asked' });
      break;
    case 'unsafe-difference':
      send({ t: 'verify-ready' });
      send({ t: 'difference', p: '../../../etc/passwd', detail: 'made up' });
      break;
    case 'overcounted':
      send({ t: 'verify-ready' });
      send({ t: 'verified', entries: 1000, filesReread: 0, bytesReread: 0 });
      break;
  }
}

/**
 * The repository side's part, as a push runs it: greets the source, then,
 * once it has listed entries, asks for one it may not have.
 */
function actAsRepository(): void {
  send({ t: 'hello', version: PROTOCOL_VERSION });
  const decoder = new FrameDecoder();
  let attacked = false;
  process.stdin.on('data', (chunk: Buffer) => {
    for (const frame of decoder.push(chunk)) {
      if (frame.type !== FRAME_JSON || attacked) continue;
      const message = decodeSourceMessage(frame.message);
      if (message.t !== 'entries') continue;
      attacked = true;
      const file = message.entries.findIndex((e) => 'type' in e && e.type === 'file');
      switch (plan.attack) {
        case 'want-unlisted':
          send({ t: 'want', hash: [], data: [message.first + message.entries.length + 1000], resume: [] });
          break;
        case 'want-directory':
          send({ t: 'want', hash: [0], data: [], resume: [] }); // entry 0 is the source's root directory
          break;
        case 'resume-unasked':
          send({ t: 'want', hash: [], data: [], resume: [{ index: message.first + Math.max(file, 0), from: 1024 * 1024, prefix: '0'.repeat(64) }] });
          break;
        case 'missing-dot-dot':
          send({ t: 'event', event: { kind: 'missing', p: escape, size: 100 } });
          break;
        case 'missing-absolute':
          send({ t: 'event', event: { kind: 'missing', p: `${plan.outside}/planted`, size: 100 } });
          break;
        case 'missing-twice': // a safe path, named twice: no source sends a path twice
          send({ t: 'event', event: { kind: 'missing', p: 'planted', size: 100 } });
          send({ t: 'event', event: { kind: 'missing', p: 'planted', size: 100 } });
          break;
      }
    }
  });
  process.stdin.resume(); // the peek left it paused
}

/**
 * Asked to read a repository: answers with a line that would retitle and recolour lb's terminal, or a warning
 * that would clear it, then an exit status lb never uses.
 */
function actAsReader(): void {
  const escape = '\x1b]0;owned\x07\x1b[31mred\x1b[2J\x9b1m';
  if (plan.attack === 'escape-line') {
    send({ t: 'line', text: `snapshot ${escape} done` });
    send({ t: 'warn', text: `careful${escape}` });
    send({ t: 'end', exit: 0 });
  } else send({ t: 'end', exit: 77 });
}

/**
 * Asked to feed a restore: begins as an honest feed would (the top directory, a file and its content), then
 * names a file outside the target, refers to a content it never sent, or sends more bytes (or zeros) than a file has.
 */
async function actAsRestoreFeed(): Promise<void> {
  const record = (type: RestoreRecord['type'], path: string, content = Buffer.alloc(0)): object =>
    encodeRestoreRecord({ type, path: Buffer.from(path), hash: sha256(content), size: content.length, mtimeNs: now, mode: 0o644, uid: 0, gid: 0, target: null });
  const content = Buffer.from('an honest file');
  send({ t: 'begin', snapshot: '2026.01.01-00.00.00' });
  send({ t: 'entry', r: record('dir', '') });
  send({ t: 'file', r: record('file', 'honest', content) });
  await writer.sendData(content);
  send({ t: 'file-end' });
  const planted = Buffer.from('planted by a hostile feed');
  switch (plan.attack) {
    case 'restore-dot-dot':
      send({ t: 'file', r: record('file', escape, planted) });
      await writer.sendData(planted);
      send({ t: 'file-end' });
      break;
    case 'restore-unwritten-reference':
      send({ t: 'same', r: record('file', 'copy', content), e: 'never-written' });
      break;
    case 'restore-overlong':
      send({ t: 'file', r: record('file', 'short', planted.subarray(0, 4)) });
      await writer.sendData(planted);
      send({ t: 'file-end' });
      break;
    case 'restore-zero-overrun':
      // A terabyte of zeros for a file of four bytes: a writer that believed it would hash it for hours.
      send({ t: 'file', r: record('file', 'short', planted.subarray(0, 4)) });
      send({ t: 'zeros', length: 2 ** 40 });
      send({ t: 'file-end' });
      break;
  }
  send({ t: 'end' });
}

/**
 * Asked for a pushed snapshot's records to compare with the source: greets as the honest agent does,
 * then sends a record whose path climbs out of the source, or records out of their order.
 */
async function actAsVerifier(): Promise<void> {
  const first = await readFirstFrame(process.stdin);
  const request = first.type === FRAME_JSON ? (first.message as { snapshot: string }) : null;
  if (!request) throw new Error('no verify request');
  send({ t: 'verifying', snapshot: request.snapshot, owners: { asRoot: false, uid: process.getuid!(), gid: process.getgid!(), users: [], groups: [] } });
  send({ t: 'stored', objectsReread: 0, bytesRead: 0 });
  const record = (path: string, type: 'd' | 'f') => ({ w: 'new', k: type, p: path, s: 0, m: now.toString(), mo: 0o755, u: process.getuid!(), g: process.getgid!(), ...(type === 'f' ? { h: sha256(Buffer.alloc(0)) } : {}) });
  const records = plan.attack === 'unsafe-record' ? [record('', 'd'), record('../../../etc/passwd', 'f')] : [record('', 'd'), record('b', 'f'), record('a', 'f')];
  send({ t: 'records', records });
  send({ t: 'end' });
}

/** The kind of lb's first message, left in the input for the role to read: a pull request, or a source's hello. */
async function firstKind(): Promise<unknown> {
  const first = await readFirstFrame(process.stdin, true);
  return first.type === FRAME_JSON ? (first.message as { t?: unknown }).t : undefined;
}

const roles: Record<string, () => unknown> = { pull: actAsSource, read: actAsReader, 'verify-backup': actAsVerifier, 'restore-from': actAsRestoreFeed };
void firstKind().then((kind) => (roles[String(kind)] ?? actAsRepository)());
// Whatever lb says or does, stay a while.
process.stdin.on('end', () => process.stderr.write('lb agent: backup complete\n'));
setTimeout(() => process.exit(0), LINGER_MS);
