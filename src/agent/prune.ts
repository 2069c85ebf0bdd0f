// The prune role: `lb prune host:REPO` applies its policy here, next to the
// repository, under its lock and by this machine's clock (repo/prune.ts), and
// answers with the outcome. A prune is crash-safe wherever it stops, so lb
// going away mid-prune needs nothing more than this process ending.
import type { Readable, Writable } from 'node:stream';
import { PolicyError } from '../diff/retention.js';
import { FRAME_JSON, FrameWriter, ProtocolError, readFirstFrame } from '../protocol/frames.js';
import { PROTOCOL_VERSION } from '../protocol/messages.js';
import { decodePruneRequest, encodePruneReply, type PruneReply } from '../protocol/prune.js';
import { prune } from '../repo/prune.js';
import { SeriesNotFound } from '../repo/series.js';

export async function pruneHere(input: Readable, output: Writable): Promise<void> {
  const first = await readFirstFrame(input);
  if (first.type !== FRAME_JSON) throw new ProtocolError('lb began with file data');
  const request = decodePruneRequest(first.message, PROTOCOL_VERSION);
  let reply: PruneReply;
  try {
    reply = { t: 'pruned', outcome: prune(request.repository, request.policy, { dryRun: request.dryRun, now: new Date(), series: request.series ?? null }) };
  } catch (error) {
    reply = { t: 'error', message: error instanceof Error ? error.message : String(error), usage: error instanceof PolicyError || error instanceof SeriesNotFound };
  }
  const writer = new FrameWriter(output);
  writer.post(encodePruneReply(reply));
  writer.flush();
  await new Promise<void>((resolve) => output.write(Buffer.alloc(0), () => resolve()));
}
