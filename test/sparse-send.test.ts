// What the source side puts on the wire for a file's content: DATA for data,
// one `zeros` per run of whole zero blocks, however the reads cut the file.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SparseSender } from '../src/agent/sparse-send.js';
import { HOLE_BLOCK } from '../src/repo/sparse-write.js';

type Sent = ['data', number] | ['zeros', number];

/** Sends `chunks` (from file offset `from`) and returns what went out, adjacent DATA merged, with the bytes. */
async function send(chunks: Buffer[], announced: number, from = 0): Promise<{ sent: Sent[]; bytes: Buffer }> {
  const sent: Sent[] = [];
  const parts: Buffer[] = [];
  const record = (kind: 'data' | 'zeros', n: number) => {
    const last = sent.at(-1);
    if (kind === 'data' && last?.[0] === 'data') last[1] += n;
    else sent.push([kind, n]);
  };
  const sender = new SparseSender(
    {
      data: async (bytes) => {
        record('data', bytes.length);
        parts.push(Buffer.from(bytes));
      },
      zeros: async (length) => {
        record('zeros', length);
        parts.push(Buffer.alloc(length));
      },
    },
    from,
    announced,
  );
  for (const chunk of chunks) await sender.chunk(chunk);
  await sender.end();
  return { sent, bytes: Buffer.concat(parts) };
}

const B = HOLE_BLOCK;

describe('SparseSender', () => {
  it('sends a run of zero blocks spanning several reads as one count, data as data', async () => {
    const content = Buffer.concat([randomBytes(B), Buffer.alloc(10 * B), randomBytes(100)]);
    const chunks = [content.subarray(0, 3 * B), content.subarray(3 * B, 7 * B), content.subarray(7 * B)];
    const { sent, bytes } = await send(chunks, content.length);
    expect(sent).toEqual([
      ['data', B],
      ['zeros', 10 * B],
      ['data', 100],
    ]);
    expect(bytes.equals(content)).toBe(true);
  });

  it('sends zeros shorter than a block as data: a zero tail, a file of a few zero bytes', async () => {
    const content = Buffer.concat([randomBytes(B), Buffer.alloc(B - 1)]);
    expect((await send([content], content.length)).sent).toEqual([['data', 2 * B - 1]]);
    expect((await send([Buffer.alloc(10)], 10)).sent).toEqual([['data', 10]]);
    const zeros = await send([Buffer.alloc(3 * B + 10)], 3 * B + 10);
    expect(zeros.sent).toEqual([['zeros', 3 * B + 10]]);
  });

  it('counts zeros only within the size the repository side was told, the rest as data', async () => {
    const content = Buffer.concat([randomBytes(B), Buffer.alloc(8 * B)]);
    const { sent, bytes } = await send([content], 5 * B);
    expect(sent).toEqual([
      ['data', B],
      ['zeros', 4 * B],
      ['data', 4 * B],
    ]);
    expect(bytes.equals(content)).toBe(true);
  });

  it('aligns blocks on offsets in the file when resuming from a point', async () => {
    // From 100 bytes into block 0: its rest is data, block 1 (B - 100 bytes into the chunk) all zeros.
    const chunk = Buffer.concat([randomBytes(B - 100), Buffer.alloc(B), randomBytes(50)]);
    const { sent, bytes } = await send([chunk], 10 * B, 100);
    expect(sent).toEqual([
      ['data', B - 100],
      ['zeros', B],
      ['data', 50],
    ]);
    expect(bytes.equals(chunk)).toBe(true);
  });
});
