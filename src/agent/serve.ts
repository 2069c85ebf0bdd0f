// The repository side's message loop: frames in from the source, requests and
// the result out. Work on each frame is synchronous; the writes it starts run on
// the thread pool, and the next piece of input is read only while few enough are
// in flight: backpressure reaches the source through the pipe.
import type { Readable, Writable } from 'node:stream';
import { FrameDecoder, FrameWriter, FRAME_DATA, ProtocolError } from '../protocol/frames.js';
import { PROTOCOL_VERSION, decodeSourceMessage, encodeAgentMessage, type BackupOptions, type RunEvent, type RunResult, type SourceProblem } from '../protocol/messages.js';
import { RepositoryRefused } from '../repo/repository.js';
import { describeFailure } from './failure.js';
import { repositoryIdentity } from './machine.js';
import { MissingContent } from './missing-content.js';
import { Receiver, type ReceiverEvents } from './receiver.js';

export interface ServeOutcome {
  result: RunResult | null;
  error: string | null;
  /**
   * Why it failed: the source broke the protocol, the source went away, this side failed, it refused
   * the repository path, or the source root is unusable.
   */
  failure: 'protocol' | 'disconnected' | 'local' | 'refused' | 'bad-source' | null;
  /** With 'bad-source': what is wrong with the source root (nothing was created, locked or written here). */
  sourceProblem?: SourceProblem;
}

export interface ServeHooks {
  /** Handle the run's events here instead of sending them to the source (pull mode shows them locally). */
  onEvent?: (event: RunEvent) => void;
  /**
   * Pull mode: this side was told the repository and options, not the source. A source whose hello
   * names another repository is refused; its options are ignored.
   */
  own?: { repository: string; options: BackupOptions };
}

class SourceGone extends ProtocolError {}

export async function serve(input: Readable, output: Writable, hooks: ServeHooks = {}): Promise<ServeOutcome> {
  const writer = new FrameWriter(output);
  const decoder = new FrameDecoder();
  let receiver: Receiver | MissingContent | null = null;
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      for (const frame of decoder.push(chunk)) {
        if (frame.type === FRAME_DATA) {
          if (!receiver) throw new ProtocolError('peer sent file data before hello');
          receiver.data(frame.data);
          continue;
        }
        const message = decodeSourceMessage(frame.message);
        if (!receiver) {
          if (message.t === 'bad-source') {
            const error = message.problem === 'missing' ? 'the source does not exist' : 'the source is not a directory';
            return { result: null, error, failure: 'bad-source', sourceProblem: message.problem };
          }
          if (message.t !== 'hello') throw new ProtocolError('peer did not begin with hello');
          if (message.version !== PROTOCOL_VERSION) {
            throw new ProtocolError(`the source speaks protocol ${message.version}, this agent speaks ${PROTOCOL_VERSION}`);
          }
          if (hooks.own && message.repository !== hooks.own.repository) {
            throw new ProtocolError(`the source named the repository ${JSON.stringify(message.repository)}, not ${hooks.own.repository}`);
          }
          const options = hooks.own?.options ?? message.options;
          const events: ReceiverEvents = {
            want: (hash, data, resume) => writer.post({ t: 'want', hash, data, resume }),
            settled: (upTo) => writer.post({ t: 'settled', upTo }),
            event: hooks.onEvent ?? ((event) => writer.post(encodeAgentMessage({ t: 'event', event }))),
          };
          // --showfiles only looks: no lock, nothing written.
          receiver = options.purpose === 'showfiles' ? new MissingContent(message.repository, options, events) : new Receiver(message.repository, options, events);
          // Version 8: runs of the latest snapshot only when it is exactly the stream the source remembers.
          const references = receiver instanceof Receiver && receiver.acceptStream(message.stream, options);
          // Once the repository exists (this run may have made it): the source's walk must not enter it.
          writer.post(encodeAgentMessage({ t: 'hello', version: PROTOCOL_VERSION, repository: repositoryIdentity(message.repository), ...(references ? { references } : {}) }));
          continue;
        }
        switch (message.t) {
          case 'hello':
            throw new ProtocolError('peer said hello twice');
          case 'bad-source':
            throw new ProtocolError('peer found its source unusable after hello');
          case 'entries':
            receiver.addEntries(message.first, message.entries);
            break;
          case 'hashed':
            receiver.hashed(message.index, message.facts);
            break;
          case 'unreadable':
            receiver.unreadable(message.index, message.reason);
            break;
          case 'skipped':
            receiver.skipped(message.path, message.kind, message.reason);
            break;
          case 'data-begin':
            receiver.dataBegin(message.index, message.from);
            break;
          case 'data-end':
            receiver.dataEnd(message.index, message.facts);
            break;
          case 'zeros':
            receiver.zeros(message.length);
            break;
          case 'deferred':
            receiver.deferred(message.index);
            break;
          case 'end':
            receiver.end(message.incomplete);
            break;
        }
        if (receiver.complete) {
          if (receiver instanceof Receiver) await receiver.settle();
          const result = receiver.finish();
          receiver = null;
          writer.post({ t: 'done', result });
          writer.flush();
          return { result, error: null, failure: null };
        }
      }
      if (receiver instanceof Receiver) await receiver.pause();
    }
    throw new SourceGone('the source disconnected before the end of the backup');
  } catch (error) {
    try {
      await receiver?.abort();
    } catch {
      // The failure that stopped the run is the one to report; the next run clears what is left.
    }
    const message = describeFailure(error);
    const refused = error instanceof RepositoryRefused;
    try {
      writer.post({ t: 'error', message, refused });
      writer.flush();
    } catch {
      // the source is gone; nothing left to tell
    }
    const failure = error instanceof SourceGone ? 'disconnected' : error instanceof ProtocolError ? 'protocol' : refused ? 'refused' : 'local';
    return { result: null, error: message, failure };
  }
}
