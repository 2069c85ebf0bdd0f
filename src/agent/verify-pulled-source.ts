// `lb backup --verify` on a pull: the source is here, with this run's read log,
// and the repository is lb's. Once the backup is over, this agent says it is
// ready, and lb (having checked the snapshot's structure and stored objects
// itself) sends how it mapped owners, then the snapshot's records. The source is
// walked again and compared with them by the comparison a local --verify runs
// (repo/verify-backup.ts), and each difference goes back as it is found. Records
// are read only as the comparison needs them, so lb waits while a file is read
// again here (the channel's window is the backpressure) and memory stays flat.
import type { Readable, Writable } from 'node:stream';
import { comparePaths } from '../diff/order.js';
import { FrameWriter, ProtocolError } from '../protocol/frames.js';
import { MessageReader } from '../protocol/message-reader.js';
import type { WireRecord } from '../protocol/verify-backup.js';
import { decodeVerifySourceRequest, encodeVerifySourceReply, type VerifySourceReply, type VerifySourceRequest } from '../protocol/verify-source.js';
import { sourceSideDifferences, type BackupChecked } from '../repo/verify-backup.js';
import type { ReadLog } from './read-log.js';
import type { Selection } from '../scan/selection.js';
import { sourceAsMappedThere } from './source-now.js';

export interface PulledSourceSetup {
  /** The source's root, as the backup walked it. */
  sourceRoot: string;
  numericIds: boolean;
  /** What the backup just sent read and left out. */
  readLog: ReadLog;
  selection: Selection | undefined;
}

/** After the backup, on the same connection: resolves once the last message is handed to the system. */
export async function verifyPulledSource(input: Readable, output: Writable, setup: PulledSourceSetup): Promise<void> {
  const writer = new FrameWriter(output);
  const send = (reply: VerifySourceReply) => writer.send(encodeVerifySourceReply(reply));
  // lb sends nothing after its backup's last message until this: no byte of its request can be lost to the backup's reader.
  await send({ t: 'verify-ready' });
  const requests = new MessageReader(input, decodeVerifySourceRequest, 'lb ended the connection before the comparison did');
  const first = await requests.next();
  if (first.t !== 'verify-source') throw new ProtocolError(`lb sent '${first.t}' before asking for the comparison`);
  const source = sourceAsMappedThere(setup.sourceRoot, setup.numericIds, first.owners, first.repository, setup.selection);
  const checked: BackupChecked = { entries: 0, filesReread: 0, objectsReread: 0, bytesRead: 0 };
  const options = {
    wasRead: setup.readLog.recordReads(),
    excused: (path: Buffer) => setup.readLog.isExcused(path),
    fatal: (error: unknown) => error instanceof ProtocolError,
  };
  let last: VerifySourceReply;
  try {
    for await (const difference of sourceSideDifferences(records(requests), source, options, checked)) {
      if (difference.side === 'source') await send({ t: 'difference', path: difference.path, detail: difference.detail });
    }
    last = { t: 'verified', entries: checked.entries, filesReread: checked.filesReread, bytesReread: checked.bytesRead };
  } catch (error) {
    if (writer.broken) throw error; // lb is gone: nobody to tell
    last = { t: 'error', message: error instanceof Error ? error.message : String(error) };
  }
  writer.post(encodeVerifySourceReply(last));
  writer.flush();
  await new Promise<void>((resolve) => output.write(Buffer.alloc(0), () => resolve()));
}

/** The snapshot's records as lb sends them, checked to come in canonical order, a whole batch before any of it is compared. */
async function* records(requests: MessageReader<VerifySourceRequest>): AsyncGenerator<WireRecord> {
  let previous: Buffer | null = null;
  for (;;) {
    const message = await requests.next();
    if (message.t === 'end') return;
    // lb's manifest did not read to its end: the comparison says where it stopped.
    if (message.t === 'error') throw new Error(message.message);
    if (message.t !== 'records') throw new ProtocolError(`lb sent '${message.t}' out of its order`);
    for (const record of message.records) {
      if (previous !== null && comparePaths(previous, record.path) >= 0) throw new ProtocolError('lb sent records out of canonical order');
      previous = record.path;
    }
    yield* message.records;
  }
}
