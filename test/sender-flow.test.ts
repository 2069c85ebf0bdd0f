// The real source side (Sender) against a repository side scripted from the real
// protocol code, timed so as to hit what a fast repository side and a full pipe do
// by chance in long runs.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AgentError, Sender } from '../src/agent/sender.js';
import { FrameDecoder, FrameWriter } from '../src/protocol/frames.js';
import { PROTOCOL_VERSION, decodeSourceMessage } from '../src/protocol/messages.js';
import { ROOT, tempDir } from './helpers.js';

/** A well-formed result of a run that did nothing. */
const emptyResult = {
  snapshot: null,
  created: false,
  counts: { newFiles: 0, copiedFiles: 0, linkedFiles: 0, directories: 0, symlinks: 0, bytesReceived: 0, bytesStored: 0, bytesResumed: 0 },
  warnings: [],
  incomplete: false,
  deferred: 0,
  skipped: [],
  skipCounts: { unreadable: 0, special: 0 },
};

describe('the source side', () => {
  it("accepts entries settled before the write that carried them has completed (a full pipe, a fast repository side)", async () => {
    const work = tempDir();
    const source = join(work, 'src');
    const album = join(source, 'a'.repeat(200));
    mkdirSync(album, { recursive: true });
    // Two full batches of entries (512 each), with names long enough that each batch fills a write of its own
    // (frames are gathered up to 256 KiB): posting the second writes it at once, then waits for 'drain'.
    for (let i = 0; i < 1100; i++) writeFileSync(join(album, `${String(i).padStart(4, '0')}${'f'.repeat(240)}`), '');

    const replies = new PassThrough();
    const answer = new FrameWriter(replies);
    const decoder = new FrameDecoder();
    let settledEarly = false;
    const repositorySide = new Writable({
      highWaterMark: 1, // every write leaves the source side waiting for 'drain'
      write(chunk: Buffer, _encoding, done) {
        let finish = () => done();
        for (const frame of decoder.push(chunk)) {
          if (frame.type !== 1) continue;
          const message = decodeSourceMessage(frame.message);
          if (message.t === 'hello') answer.post({ t: 'hello', version: PROTOCOL_VERSION });
          if (message.t !== 'entries') continue;
          if (message.first === 0) continue;
          // The second batch: settled at once, while the write that brought it is still unfinished.
          answer.post({ t: 'settled', upTo: message.first + message.entries.length });
          settledEarly = true;
          finish = () =>
            setTimeout(() => {
              answer.post({ t: 'error', message: 'scripted end' });
              answer.flush();
              done();
            }, 200);
        }
        answer.flush();
        finish();
      },
    });

    const sender = new Sender(replies, repositorySide, {
      sourceRoot: source,
      repository: join(work, 'repo'),
      options: { snapshotName: '2026.01.01-00.00.00', always: false, numericIds: false, verbose: false, quickCheck: false, sourceLabel: source, purpose: 'backup' },
    });
    const outcome = await sender.run().then(
      () => null,
      (error: Error) => error,
    );
    expect(settledEarly, 'the last batch reached the repository side and was settled').toBe(true);
    // The scripted repository side's own end, not a protocol violation charged to it.
    expect(outcome).toBeInstanceOf(AgentError);
    expect(outcome!.message).toBe('scripted end');
  });

  for (const [what, early] of [
    ['a result before its hello', [{ t: 'done', result: emptyResult }]],
    ['a second hello', [{ t: 'hello', version: PROTOCOL_VERSION }, { t: 'hello', version: PROTOCOL_VERSION }]],
  ] as const) {
    it(`refuses ${what} from the repository side, in one line, rather than wait forever`, async () => {
      const work = tempDir();
      const source = join(work, 'src');
      mkdirSync(source);
      writeFileSync(join(source, 'f'), 'content');
      const replies = new PassThrough();
      const answer = new FrameWriter(replies);
      let answered = false;
      const repositorySide = new Writable({
        write(_chunk: Buffer, _encoding, done) {
          if (!answered) for (const message of early) answer.post(message);
          answered = true;
          answer.flush();
          done();
        },
      });
      const sender = new Sender(replies, repositorySide, {
        sourceRoot: source,
        repository: join(work, 'repo'),
        options: { snapshotName: '2026.01.01-00.00.00', always: false, numericIds: false, verbose: false, quickCheck: false, sourceLabel: source, purpose: 'backup' },
      });
      const outcome = await Promise.race([
        sender.run().then(
          () => new Error('the run succeeded'),
          (error: Error) => error,
        ),
        new Promise<Error>((resolve) => setTimeout(() => resolve(new Error('the source side still waits after 10 s')), 10_000)),
      ]);
      expect(outcome.message).toBe(early.length === 1 ? "the repository side sent 'done' before its hello" : 'the repository side said hello twice');
    });
  }

  for (const [what, request, error] of [
    ['a source path that is not text', { t: 'pull', version: PROTOCOL_VERSION, sourceRoot: 42 }, 'lb agent: peer sent an invalid source path'],
    ['another protocol version', { t: 'pull', version: 1 }, `lb agent: the repository side speaks protocol 1, this agent speaks ${PROTOCOL_VERSION}`],
    ['a first message of no role', { t: 'push', version: PROTOCOL_VERSION }, `lb agent: the peer's first message names "push", which is no role of this agent (another lb version?)`],
  ] as const) {
    it(`when pulled, refuses ${what} as the request, in one line`, () => {
      const base: Record<string, unknown> = { options: {}, repository: '/r', sourceRoot: '/s' };
      const json = Buffer.from(JSON.stringify({ ...base, ...request }));
      const head = Buffer.alloc(5);
      head.writeUInt32BE(json.length + 1, 0);
      head[4] = 1;
      const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'agent.cjs')], { input: Buffer.concat([head, json]), encoding: 'utf8', timeout: 10_000 });
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(`${error}\n`);
      expect(r.stdout).toBe('');
    });
  }
});
