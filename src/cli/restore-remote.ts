// lb restore over SSH, in both directions, through lb's agent on the other machine
// (agent/restore.ts): from a remote repository into a local target (the agent feeds,
// this writes), and from a local repository into a remote target (this feeds, the
// agent writes). A peer's words are printed as read-remote.ts prints them (control
// characters escaped), its messages validated (protocol/restore-messages.ts), and a
// peer that breaks the protocol is refused in one line.
import type { Readable } from 'node:stream';
import { isWithin, repositoryIdentity } from '../agent/machine.js';
import { sendFeed } from '../agent/restore-stream.js';
import { WriterThread, type WriterOutcome } from '../agent/restore-thread.js';
import { FRAME_JSON, FrameDecoder, FrameWriter, ProtocolError, type Frame } from '../protocol/frames.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import {
  RestoreStream,
  decodeRestoreReply,
  encodeRestoreFromRequest,
  encodeRestoreToRequest,
  type RestoreReply,
  type RestoreStreamItem,
} from '../protocol/restore-messages.js';
import { checkTarget } from '../read/restore-target.js';
import type { RepositoryReader } from '../repo/reader.js';
import { restoreFeed } from '../repo/restore-feed.js';
import type { RestoreRecord, RestoreTally } from '../repo/restore-record.js';
import { agentBundlePath } from '../transport/local.js';
import type { SshOptions } from '../transport/ssh.js';
import { wireOf } from './backup/outcome.js';
import { UsageError } from './output.js';
import { RemoteEnded, printable, withAgent, type Remote } from './remote-agent.js';


export interface RemoteRestore {
  snapshot: string;
  tally: RestoreTally;
  wire: { sent: number; received: number } | null;
}

/** What the local restore command does with each part of the outcome. */
export interface RestoreSink {
  /** A path left out or not fully restored (a remote writer's text escaped). */
  problem(path: Buffer, text: string): void;
  /** Each record of a dry run, in order; the dry run's snapshot name first. */
  listed?(snapshot: string, record: RestoreRecord): void;
}


/** The agent's frames, one at a time; RemoteEnded when its output ends first. */
async function* framesOf(input: AsyncIterable<Buffer>): AsyncGenerator<Frame> {
  const decoder = new FrameDecoder();
  for await (const chunk of input) yield* decoder.push(chunk);
  throw new RemoteEnded('the lb agent on the remote ended without saying how the restore went');
}

/**
 * The agent's first frame, the bytes after it left in `input` (paused) for the writer's thread to deframe.
 * (readFirstFrame refuses a second frame sent before an answer: here the stream follows at once.)
 */
function firstFrame(input: Readable): Promise<Frame> {
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    const finish = (error: Error | null, frame?: Frame, rest?: Buffer) => {
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
      // Once this listener is off and the stream paused: on a flowing stream, unshift hands the bytes straight back to it.
      if (rest && rest.length > 0) input.unshift(rest);
      if (error) reject(error);
      else resolve(frame!);
    };
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4) return;
      const end = 4 + received.readUInt32BE(0);
      let frames: Frame[];
      try {
        // Given the length first, a fresh decoder refuses a frame beyond the limit before it is gathered.
        frames = new FrameDecoder().push(received.subarray(0, Math.min(end, received.length)));
      } catch (error) {
        return finish(error as Error);
      }
      if (frames.length > 0) finish(null, frames[0], received.subarray(end));
    };
    const onEnd = () => finish(new RemoteEnded('the lb agent on the remote ended before it began'));
    const onError = (error: Error) => finish(error);
    input.on('data', onData);
    input.once('end', onEnd);
    input.once('error', onError);
    input.resume();
  });
}

/** The tally of a stream that reached its end; otherwise what ended it, thrown as the main thread would have. */
function thrownUnlessEnded(outcome: WriterOutcome): RestoreTally {
  if (outcome.ended) return outcome.tally;
  const failure = outcome.failure;
  if (failure === undefined) throw new RemoteEnded('the lb agent on the remote ended without saying how the restore went');
  if (failure.kind === 'protocol') throw new ProtocolError(failure.message);
  if (failure.kind === 'said-usage') throw new UsageError(printable(failure.message));
  if (failure.kind === 'said') throw new Error(printable(failure.message));
  throw new Error(failure.message);
}

/** A reply the agent may send at this point, or what it says went wrong, thrown. */
function reply(frame: Frame, expected: RestoreReply['t'][]): RestoreReply {
  if (frame.type !== FRAME_JSON) throw new ProtocolError('the agent sent file data out of place');
  const message = decodeRestoreReply(frame.message);
  if (message?.t === 'error') throw message.usage ? new UsageError(printable(message.message)) : new Error(printable(message.message));
  if (message === null || !expected.includes(message.t)) throw new ProtocolError('the agent sent a message out of place');
  return message;
}

/** `lb restore user@host:REPO [SNAPSHOT] TARGET`: the agent feeds, the target here (checked already, but for the repository) is written. */
export function restoreFromRemote(where: Remote, snapshotWord: string | undefined, paths: Buffer[], target: { path: string; label: string; overwrite: boolean }, numericIds: boolean, sink: RestoreSink, ssh: SshOptions, series: string | null = null): Promise<RemoteRestore> {
  return withAgent(where, ssh, 'the restore stopped there', async (agent, session) => {
    const request = new FrameWriter(agent.output, false);
    const inSeries = series === null ? {} : { series };
    request.post(encodeRestoreFromRequest({ t: 'restore-from', version: PROTOCOL_VERSION, repository: where.path, snapshot: snapshotWord, paths, listOnly: sink.listed !== undefined, ...inSeries }));
    request.flush();
    const begin = reply(await firstFrame(agent.input), ['begin']) as Extract<RestoreReply, { t: 'begin' }>;
    const identity = begin.repository;
    // On the repository's own machine (the same boot), a target inside it is refused as locally.
    const path = checkTarget(target.path, target.label, target.overwrite, (real) => identity !== undefined && isWithin(identity, real), `${where.host}:${where.path}`);
    if (sink.listed) {
      const stream = new RestoreStream(true);
      for await (const frame of framesOf(agent.input)) {
        // A reply is never taken for a stream message: an `error` ends the run, anything else is out of place.
        if (frame.type === FRAME_JSON && decodeRestoreReply(frame.message) !== null) reply(frame, []);
        const item: RestoreStreamItem = stream.decode(frame);
        if (item.kind === 'end') break;
        if (item.kind === 'entry') sink.listed(begin.snapshot, item.record);
      }
      return { snapshot: begin.snapshot, tally: emptyTally(), wire: wireOf(session) };
    }
    // The feed's own words (why it could not give a content) reach the problem lines: escaped as a peer's text.
    const writer = new WriterThread(agentBundlePath(), { target: path, numericIds, replies: true }, (at, text) => sink.problem(at, printable(text)));
    const tally = thrownUnlessEnded(await writer.take(agent.input));
    return { snapshot: begin.snapshot, tally, wire: wireOf(session) };
  });
}

/** `lb restore REPO [SNAPSHOT] user@host:TARGET`: the snapshot (resolved and --path checked already) fed from here. */
export function restoreToRemote(reader: RepositoryReader, snapshot: string, paths: Buffer[], where: Remote, options: { overwrite: boolean; numericIds: boolean; dryRun: boolean }, sink: RestoreSink, ssh: SshOptions): Promise<RemoteRestore> {
  return withAgent(where, ssh, 'the restore stopped there', async (agent, session) => {
    const frames = new FrameWriter(agent.output);
    frames.post(encodeRestoreToRequest({ t: 'restore-to', version: PROTOCOL_VERSION, target: where.path, ...options, repository: repositoryIdentity(reader.root) }));
    frames.flush();
    const replies = framesOf(agent.input);
    const first = await replies.next();
    if (first.done) throw new RemoteEnded('the lb agent on the remote ended before it began');
    reply(first.value, ['ready']);
    if (options.dryRun) return { snapshot, tally: emptyTally(), wire: wireOf(session) };
    // The agent's problems arrive while the feed goes out; its tally once the feed has ended.
    const answered = (async () => {
      for await (const frame of replies) {
        const message = reply(frame, ['problem', 'done']);
        if (message.t === 'done') return message.tally;
        if (message.t === 'problem') sink.problem(message.path, printable(message.text));
      }
      throw new RemoteEnded('the lb agent on the remote ended without saying how the restore went');
    })();
    answered.catch(() => agent.kill()); // the feed, waiting on a peer that is gone, stops
    await Promise.race([sendFeed(restoreFeed(reader, snapshot, { paths, freshChunks: true }), frames), answered]);
    const tally = await answered;
    return { snapshot, tally, wire: wireOf(session) };
  });
}

function emptyTally(): RestoreTally {
  return { files: 0, directories: 0, symlinks: 0, bytes: 0, problems: 0, damaged: 0 };
}
