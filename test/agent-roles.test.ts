// The agent's role is named by the first message on its input (src/agent/roles.ts):
// the source's hello makes it the repository side of a push, a pull request the
// source side of a pull, a read request a reader of the repository. Anything else is refused in one line, exit status 1, before
// any role has begun.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { roleOf } from '../src/agent/roles.js';
import { FRAME_DATA, FRAME_JSON, FrameDecoder, ProtocolError } from '../src/protocol/frames.js';
import { PROTOCOL_VERSION } from '../src/protocol/messages.js';
import { ROOT, tempDir } from './helpers.js';

function frame(type: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length + 1, 0);
  head[4] = type;
  return Buffer.concat([head, payload]);
}

const message = (value: unknown) => frame(FRAME_JSON, Buffer.from(JSON.stringify(value)));

/** The agent given `input` then the end of it; its frames on stdout, decoded. */
function agent(input: Buffer) {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist', 'agent.cjs')], { input, timeout: 10_000 });
  const frames = new FrameDecoder().push(r.stdout);
  return { status: r.status, stderr: r.stderr.toString(), messages: frames.map((f) => (f.type === FRAME_JSON ? f.message : 'data')) };
}

/** The agent given `input`, its input then left open as lb leaves it while a read command runs. */
async function agentKeptOpen(input: Buffer) {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'agent.cjs')], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.write(input);
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  child.stdin.destroy();
  const messages = new FrameDecoder().push(Buffer.concat(out)).map((f) => (f.type === FRAME_JSON ? f.message : 'data'));
  return { status, stderr, messages };
}

const options = { snapshotName: '2026.01.01-00.00.00', always: false, numericIds: false, verbose: false, quickCheck: false, sourceLabel: 'src', purpose: 'backup' };

describe('the role named by the first message', () => {
  it('is its kind, for each role the agent has', () => {
    expect(roleOf({ type: FRAME_JSON, message: { t: 'hello' } })).toBe('hello');
    expect(roleOf({ type: FRAME_JSON, message: { t: 'pull' } })).toBe('pull');
    expect(roleOf({ type: FRAME_JSON, message: { t: 'read' } })).toBe('read');
  });

  it('is refused for file data, a message that is no object, and a kind no role has', () => {
    expect(() => roleOf({ type: FRAME_DATA, data: Buffer.from('x') })).toThrow(ProtocolError);
    expect(() => roleOf({ type: FRAME_JSON, message: ['hello'] })).toThrow(/names nothing, which is no role/);
    expect(() => roleOf({ type: FRAME_JSON, message: { t: 'want' } })).toThrow(/names "want", which is no role of this agent/);
  });

  it('refused by the agent: one line, exit status 1, nothing sent back', () => {
    for (const [input, line] of [
      [message({ t: 'restore-everything', version: PROTOCOL_VERSION }), 'the peer\'s first message names "restore-everything", which is no role of this agent (another lb version?)'],
      [frame(FRAME_DATA, Buffer.from('bytes')), 'the peer began with file data, not a message naming what to do'],
      [Buffer.alloc(0), 'peer closed the connection before its first message'],
    ] as const) {
      const r = agent(input);
      expect(r.stderr).toBe(`lb agent: ${line}\n`);
      expect(r.status).toBe(1);
      expect(r.messages).toEqual([]);
    }
  });

  it('a read request of another protocol version is refused in one line, exit status 1', () => {
    const r = agent(message({ t: 'read', version: 1, repository: '/r', json: false, read: { command: 'list' } }));
    expect(r.stderr).toBe(`lb agent: lb speaks protocol 1, this agent speaks ${PROTOCOL_VERSION}\n`);
    expect(r.status).toBe(1);
    expect(r.messages).toEqual([]);
  });

  it('a read request makes it read the repository: what the command prints, then how it ended', async () => {
    const r = await agentKeptOpen(message({ t: 'read', version: PROTOCOL_VERSION, repository: tempDir(), json: false, read: { command: 'list' } }));
    expect(r.messages).toEqual([{ t: 'error', message: expect.stringMatching(/ is not an lb repository \(it has no \.lb\/format\)$/), usage: true }]);
    expect(r.status).toBe(0);
  });

  it("a source's hello makes it the repository side, which answers hello and aborts when the source goes", () => {
    const repo = join(tempDir(), 'repo');
    const r = agent(message({ t: 'hello', version: PROTOCOL_VERSION, repository: repo, options }));
    expect(r.messages[0]).toMatchObject({ t: 'hello', version: PROTOCOL_VERSION });
    expect(r.messages.at(-1)).toMatchObject({ t: 'error', message: 'the source disconnected before the end of the backup' });
    expect(r.status).toBe(1);
    expect(existsSync(join(repo, '.lb'))).toBe(true);
  });

  it('a hello of another protocol version is answered as such, in one line, and nothing is made', () => {
    const repo = join(tempDir(), 'repo');
    const r = agent(message({ t: 'hello', version: 1, repository: repo, options }));
    expect(r.messages).toEqual([{ t: 'error', message: `the source speaks protocol 1, this agent speaks ${PROTOCOL_VERSION}`, refused: false }]);
    expect(r.status).toBe(1);
    expect(existsSync(repo)).toBe(false);
  });
});
