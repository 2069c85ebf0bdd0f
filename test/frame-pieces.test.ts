// FramePieces against FrameDecoder on the same bytes cut anywhere: the same
// messages, in order, and each DATA frame's bytes in order, however the pieces fall.
import { PassThrough } from 'node:stream';
import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { FramePieces } from '../src/protocol/frame-pieces.js';
import { FRAME_DATA, FrameDecoder, FrameWriter, MAX_FRAME, ProtocolError, type Frame } from '../src/protocol/frames.js';

/** The frames with consecutive DATA pieces joined: what a byte-stream consumer sees. */
function joined(frames: Frame[]): unknown[] {
  const out: unknown[] = [];
  for (const frame of frames) {
    const last = out.at(-1) as { data?: Buffer } | undefined;
    if (frame.type === FRAME_DATA && last?.data !== undefined) last.data = Buffer.concat([last.data, frame.data]);
    else out.push(frame.type === FRAME_DATA ? { data: Buffer.from(frame.data) } : { message: frame.message });
  }
  return out;
}

describe('frame pieces', () => {
  it('give what FrameDecoder gives, DATA in the pieces it arrives in, wherever the stream is cut', async () => {
    const pipe = new PassThrough();
    const chunks: Buffer[] = [];
    pipe.on('data', (c: Buffer) => chunks.push(c));
    const writer = new FrameWriter(pipe);
    const big = Buffer.alloc(30_000, 7);
    writer.post({ t: 'file', n: 1 });
    await writer.sendData(Buffer.from('small'));
    await writer.sendData(big);
    await writer.sendData(Buffer.alloc(0));
    writer.post({ t: 'entries', list: Array.from({ length: 2000 }, (_, i) => `entry ${i}`) }); // deflated
    await writer.sendData(Buffer.from('after'));
    writer.post({ t: 'end' });
    writer.end();
    await finished(pipe);
    const wire = Buffer.concat(chunks);
    const whole = new FrameDecoder().push(wire);
    expect(whole.length).toBe(7);
    for (const cut of [1, 2, 3, 5, 7, 4096, 65_536, 1 << 20]) {
      const pieces = new FramePieces();
      const frames: Frame[] = [];
      for (let at = 0; at < wire.length; at += cut) frames.push(...pieces.push(wire.subarray(at, at + cut)));
      // An empty DATA frame joins its neighbour here, as it would in a file's bytes.
      expect(joined(frames), `cut every ${cut} bytes`).toEqual(joined(whole));
      if (cut >= 1 << 20) expect(frames.filter((f) => f.type === FRAME_DATA)).toHaveLength(4);
    }
  });

  it('refuse a frame longer than the limit as FrameDecoder does, before gathering it', () => {
    const huge = Buffer.alloc(5);
    huge.writeUInt32BE(MAX_FRAME + 2, 0);
    huge[4] = FRAME_DATA;
    expect(() => new FramePieces().push(huge)).toThrow(ProtocolError);
    expect(() => new FramePieces().push(Buffer.alloc(5))).toThrow(/a frame of 0 bytes/);
    const json = Buffer.from([0, 0, 0, 2, 9, 0x20]);
    expect(() => new FramePieces().push(json)).toThrow(/unknown frame type 9/);
  });
});
