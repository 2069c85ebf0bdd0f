// The backup-verify role: `lb backup --verify` pushed to this machine's
// repository, and lb, next to the source, compares. Here: the repository's part
// (repo/verify-backup.ts RepositoryCheck, as a local --verify runs it), then the
// snapshot's records, streamed for lb to compare with the source, with how this
// side maps owners. Each message waits to be taken (the frame writer's
// backpressure), so a manifest of any size streams in flat memory.
import type { Readable, Writable } from 'node:stream';
import { FRAME_JSON, FrameWriter, ProtocolError, readFirstFrame } from '../protocol/frames.js';
import { MAX_ACCOUNTS, RECORDS_PER_MESSAGE, decodeVerifyBackupRequest, encodeVerifyReply, type VerifyBackupReply, type WireOwners, type WireRecord } from '../protocol/verify-backup.js';
import { openRepository } from '../read/open.js';
import type { RepositoryReader } from '../repo/reader.js';
import { RepositoryCheck } from '../repo/verify-backup.js';
import { accountTable } from '../scan/accounts.js';
import { repositoryIdentity } from './machine.js';

/** A batch of records leaves once it holds this many characters of paths, well inside a frame. */
const BATCH_PATH_CHARS = 512 * 1024;

/** Reads lb's request on `input`, answers on `output`; resolves once the last message is handed to the system. */
export async function verifyBackupHere(input: Readable, output: Writable, onPeerGone: () => void): Promise<void> {
  const first = await readFirstFrame(input);
  if (first.type !== FRAME_JSON) throw new ProtocolError('lb began with file data');
  const request = decodeVerifyBackupRequest(first.message);
  // lb sends nothing after its request: more input, or its end, means lb broke off.
  input.on('data', onPeerGone);
  input.once('end', onPeerGone);
  input.resume();
  const writer = new FrameWriter(output);
  const send = (reply: VerifyBackupReply) => writer.send(encodeVerifyReply(reply));
  let last: VerifyBackupReply = { t: 'end' };
  try {
    const reader = openRepository(request.repository, request.series ?? null);
    const snapshot = request.snapshot ?? reader.resolve('latest');
    await send({ t: 'verifying', snapshot, owners: repositorySideOwners(), repository: repositoryIdentity(reader.root) });
    const check = new RepositoryCheck(reader, snapshot, request.publishedNow);
    for (const problem of check.problems()) await send({ t: 'problem', problem });
    await send({ t: 'stored', ...check.checked });
    await sendRecords(reader, snapshot, (records) => send({ t: 'records', records }));
  } catch (error) {
    if (writer.broken) throw error; // lb is gone: nobody to tell
    // A manifest that does not read to its end: lb says where its comparison stopped.
    last = { t: 'error', message: error instanceof Error ? error.message : String(error) };
  }
  writer.post(encodeVerifyReply(last));
  writer.flush();
  await new Promise<void>((resolve) => output.write(Buffer.alloc(0), () => resolve()));
}

/** The snapshot's records in batches, each sent once the previous one is taken; a pulled source's comparison is fed the same way. */
export async function sendRecords(reader: RepositoryReader, snapshot: string, send: (records: WireRecord[]) => Promise<void>): Promise<void> {
  let batch: WireRecord[] = [];
  let chars = 0;
  for (const record of reader.records(snapshot)) {
    batch.push(record);
    chars += record.path.length + (record.target?.length ?? 0) + (record.link?.length ?? 0);
    if (batch.length === RECORDS_PER_MESSAGE || chars >= BATCH_PATH_CHARS) {
      await send(batch);
      batch = [];
      chars = 0;
    }
  }
  if (batch.length > 0) await send(batch);
}

/** How the repository side of a backup, run as this process, gave snapshot files their owners. */
export function repositorySideOwners(): WireOwners {
  const asRoot = process.getuid!() === 0;
  const table = (path: string): [string, number][] => {
    const entries = asRoot ? accountTable(path) : [];
    if (entries.length > MAX_ACCOUNTS) throw new Error(`${path} lists more than ${MAX_ACCOUNTS} names, more than --verify takes from a remote`);
    return entries;
  };
  return { asRoot, uid: process.getuid!(), gid: process.getgid!(), users: table('/etc/passwd'), groups: table('/etc/group') };
}
