// The two restore roles (protocol/restore-messages.ts). `restore-from`: this agent
// is next to the repository and feeds lb's writer. `restore-to`: this agent is next
// to the target, checks it, and writes what lb feeds it. The snapshot and --path
// are checked where the repository is, the target where it is, each before
// anything is written, and said in one line as locally.
import { resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { UsageError } from '../cli/status.js';
import { FRAME_JSON, FrameWriter, ProtocolError, readFirstFrame } from '../protocol/frames.js';
import {
  decodeRestoreFromRequest,
  decodeRestoreToRequest,
  encodeRestoreRecord,
  encodeRestoreReply,
  type RestoreReply,
} from '../protocol/restore-messages.js';
import { checkPathsInSnapshot, openRepository, resolveSnapshot } from '../read/open.js';
import { checkTarget } from '../read/restore-target.js';
import { restoreFeed, selectedRecords } from '../repo/restore-feed.js';
import { isWithin, repositoryIdentity } from './machine.js';
import { sendFeed } from './restore-stream.js';
import { WriterThread } from './restore-thread.js';

function errorReply(error: unknown): RestoreReply {
  return { t: 'error', message: error instanceof Error ? error.message : String(error), usage: error instanceof UsageError };
}

/** Sends the last message (if any) and resolves once everything is handed to the system: the agent exits next. */
async function finish(frames: FrameWriter, output: Writable, last: RestoreReply | null): Promise<void> {
  if (last !== null) frames.post(encodeRestoreReply(last));
  frames.flush();
  await new Promise<void>((resolve) => output.write(Buffer.alloc(0), () => resolve()));
}

/** Feeds lb the snapshot it asked for. lb sends nothing after its request: more input, or its end, means lb broke off. */
export async function restoreFrom(input: Readable, output: Writable, onPeerGone: () => void): Promise<void> {
  const first = await readFirstFrame(input);
  if (first.type !== FRAME_JSON) throw new ProtocolError('lb began with file data');
  const request = decodeRestoreFromRequest(first.message);
  input.on('data', onPeerGone);
  input.once('end', onPeerGone);
  input.resume();
  const frames = new FrameWriter(output);
  let last: RestoreReply | null = null;
  try {
    const reader = openRepository(request.repository, request.series ?? null);
    const snapshot = resolveSnapshot(reader, request.snapshot);
    checkPathsInSnapshot(reader, snapshot, request.paths);
    await frames.send(encodeRestoreReply({ t: 'begin', snapshot, repository: repositoryIdentity(reader.root) }));
    if (request.listOnly) {
      for (const record of selectedRecords(reader, snapshot, request.paths)) await frames.send({ t: 'entry', r: encodeRestoreRecord(record) });
      await frames.send({ t: 'end' });
    } else {
      await sendFeed(restoreFeed(reader, snapshot, { paths: request.paths, freshChunks: true }), frames);
    }
  } catch (error) {
    if (frames.broken) throw error; // lb is gone: nobody to tell
    last = errorReply(error);
  }
  await finish(frames, output, last);
}

/** Checks the target lb names, then writes the stream lb sends into it, telling lb of each problem and the tally. */
export async function restoreTo(input: Readable, output: Writable): Promise<void> {
  const first = await readFirstFrame(input);
  if (first.type !== FRAME_JSON) throw new ProtocolError('lb began with file data');
  const request = decodeRestoreToRequest(first.message);
  const frames = new FrameWriter(output);
  let target: string;
  try {
    const identity = request.repository;
    target = checkTarget(request.target, request.target, request.overwrite, (real) => identity !== undefined && isWithin(identity, real), 'lb reads');
  } catch (error) {
    return finish(frames, output, errorReply(error));
  }
  if (request.dryRun) return finish(frames, output, { t: 'ready' });
  frames.post(encodeRestoreReply({ t: 'ready' }));
  // This very bundle runs the writer's thread.
  const writer = new WriterThread(resolve(process.argv[1]!), { target, numericIds: request.numericIds, replies: false }, (path, text) =>
    frames.post(encodeRestoreReply({ t: 'problem', path, text })),
  );
  const outcome = await writer.take(input);
  if (outcome.ended) return finish(frames, output, { t: 'done', tally: outcome.tally });
  const why = outcome.failure?.message ?? 'lb ended the restore before its end';
  if (frames.broken) throw new Error(why); // lb is gone: nobody to tell
  await finish(frames, output, { t: 'error', message: why, usage: false });
}
