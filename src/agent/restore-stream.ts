// A restore across a wire, both ends, whichever machine each is on: the feed's items
// sent as the restore stream's messages (protocol/restore-messages.ts), and the
// stream's validated items handed to the writer, in the writer's own thread
// (restore-thread.ts), which takes a bounded number of bytes ahead of what it has
// written: past them the pipe's (or SSH channel's) backpressure is all the flow
// control needed; the feeding side waits for each message to be taken.
import type { FrameWriter } from '../protocol/frames.js';
import { encodeStreamItem, type RestoreStreamItem } from '../protocol/restore-messages.js';
import type { FeedItem } from '../repo/restore-feed.js';
import { DamagedContent, type FeedProblem, type OwnerMapping, type RestoreRecord } from '../repo/restore-record.js';
import type { RestoreWriter } from '../repo/restore-writer.js';
import { Accounts } from '../scan/accounts.js';
import { SparseSender } from './sparse-send.js';

/** A record with its owners' names on this machine: the writer's machine maps them to its own ids. */
function named(record: RestoreRecord, accounts: Accounts): RestoreRecord {
  return { ...record, user: accounts.userName(record.uid), group: accounts.groupName(record.gid) };
}

/** Sends the feed's items, then the stream's end. Chunks must be buffers of their own (freshChunks). */
export async function sendFeed(items: Iterable<FeedItem>, frames: FrameWriter): Promise<void> {
  const accounts = new Accounts();
  for (const item of items) {
    const record = named(item.record, accounts);
    if (item.kind === 'entry') await frames.send(encodeStreamItem({ kind: 'entry', record }));
    else if (item.kind === 'same') await frames.send(encodeStreamItem({ kind: 'same', record, earlier: item.earlier }));
    else {
      frames.post(encodeStreamItem({ kind: 'file', record }));
      const problem = await sendContent(item.content, record.size, frames);
      await frames.send(encodeStreamItem({ kind: 'file-end', problem }));
    }
  }
  await frames.send(encodeStreamItem({ kind: 'end' }));
}

/**
 * A file's content as DATA frames, its runs of whole zero blocks as `zeros` messages (a sparse disk image
 * crosses at the size of its data); what stopped the reading, if anything did (a failed write is thrown).
 */
async function sendContent(content: Iterable<Buffer>, size: number, frames: FrameWriter): Promise<FeedProblem | undefined> {
  const sender = new SparseSender({ data: (bytes) => frames.sendData(bytes), zeros: (length) => frames.send(encodeStreamItem({ kind: 'zeros', length })) }, 0, size);
  const chunks = content[Symbol.iterator]();
  for (;;) {
    let next: IteratorResult<Buffer>;
    try {
      next = chunks.next();
    } catch (error) {
      return { text: (error as Error).message, damaged: error instanceof DamagedContent };
    }
    if (next.done) {
      await sender.end();
      return undefined;
    }
    await sender.chunk(next.value);
  }
}

/** Hands one validated item to the writer; true at the stream's end. */
export function writeStreamItem(writer: RestoreWriter, item: RestoreStreamItem): boolean {
  switch (item.kind) {
    case 'entry':
      writer.entry(item.record);
      break;
    case 'file':
      writer.beginFile(item.record, null, true);
      break;
    case 'data':
      writer.fileData(item.chunk);
      break;
    case 'zeros':
      writer.fileZeros(item.length);
      break;
    case 'file-end':
      writer.fileEnd(item.problem);
      break;
    case 'same':
      writer.sameContent(item.record, item.earlier);
      break;
    case 'end':
      return true;
  }
  return false;
}

/**
 * Owners for a restore fed from another machine: only root sets them, by the names that
 * came with the records (an unknown name keeps its number), or by number with --numeric-ids.
 */
export function ownersFromElsewhere(numericIds: boolean): OwnerMapping | null {
  if (process.getuid?.() !== 0) return null;
  if (numericIds) return { uid: (r) => r.uid, gid: (r) => r.gid };
  const accounts = new Accounts();
  return { uid: (r) => accounts.uidFor(r.uid, r.user), gid: (r) => accounts.gidFor(r.gid, r.group) };
}
