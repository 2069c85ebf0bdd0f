// The pull role's messages for `lb backup --verify` (protocol 6): the source is
// on the remote, the repository here. Once the backup is over, the source agent
// says it is ready; lb sends how it mapped owners, then the snapshot's records;
// the agent walks its source again, compares, and sends the differences back.
// Everything either side receives passes through a decode function here.
import { ProtocolError } from './frames.js';
import { decodeIdentity, type RepositoryIdentity } from './messages.js';
import { fail, getBytes, int, isSafeRelativePath, obj, putBytes, str } from './validate.js';
import { decodeOwners, decodeRecordBatch, encodeRecord, type WireOwners, type WireRecord } from './verify-backup.js';

/**
 * What lb sends, in this order, after the agent's `verify-ready`: `verify-source`, any `records`,
 * then `end`, or `error` (its manifest did not read to its end) in place of `end`.
 */
export type VerifySourceRequest =
  | { t: 'verify-source'; owners: WireOwners; repository?: RepositoryIdentity }
  | { t: 'records'; records: WireRecord[] }
  | { t: 'end' }
  | { t: 'error'; message: string };

/** What the source agent sends: `verify-ready` once its backup is over, then any `difference`s, then `verified`; or `error`, last. */
export type VerifySourceReply =
  | { t: 'verify-ready' }
  | { t: 'difference'; path: Buffer; detail: string }
  | { t: 'verified'; entries: number; filesReread: number; bytesReread: number }
  | { t: 'error'; message: string };

const TEXT_LIMIT = 65536;

export function encodeVerifySourceRequest(message: VerifySourceRequest): object {
  switch (message.t) {
    case 'verify-source': {
      const { repository } = message;
      return {
        t: message.t,
        owners: message.owners, // plain JSON already
        ...(repository ? { repository: { boot: repository.boot, dev: repository.dev.toString(), ino: repository.ino.toString() } } : {}),
      };
    }
    case 'records':
      return { t: message.t, records: message.records.map(encodeRecord) };
    default:
      return message;
  }
}

export function encodeVerifySourceReply(reply: VerifySourceReply): object {
  if (reply.t !== 'difference') return reply;
  const wire: Record<string, unknown> = { t: reply.t, detail: reply.detail };
  putBytes(wire, 'p', reply.path);
  return wire;
}

export function decodeVerifySourceRequest(raw: unknown): VerifySourceRequest {
  const m = obj(raw, 'message');
  switch (m.t) {
    case 'verify-source':
      return { t: 'verify-source', owners: decodeOwners(m.owners), ...(m.repository !== undefined ? { repository: decodeIdentity(m.repository) } : {}) };
    case 'records':
      return { t: 'records', records: decodeRecordBatch(m.records) };
    case 'end':
      return { t: 'end' };
    case 'error':
      return { t: 'error', message: str(m.message, 'error', TEXT_LIMIT) };
    default:
      fail('message type');
  }
}

export function decodeVerifySourceReply(raw: unknown): VerifySourceReply {
  const m = obj(raw, 'message');
  switch (m.t) {
    case 'verify-ready':
      return { t: 'verify-ready' };
    case 'difference': {
      const path = getBytes(m, 'p', 'difference path');
      if (!isSafeRelativePath(path)) throw new ProtocolError(`peer sent an unsafe path ${JSON.stringify(path.toString('latin1'))}`);
      return { t: 'difference', path, detail: str(m.detail, 'difference', TEXT_LIMIT) };
    }
    case 'verified':
      return { t: 'verified', entries: int(m.entries, 'entry count'), filesReread: int(m.filesReread, 'file count'), bytesReread: int(m.bytesReread, 'byte count') };
    case 'error':
      return { t: 'error', message: str(m.message, 'error', TEXT_LIMIT) };
    default:
      fail('message type');
  }
}
