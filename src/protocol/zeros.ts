// Protocol 6: a run of zeros inside a file's data travels as its length, not as
// bytes (a 2 GiB sparse disk image holding 20 MB is sent as about 20 MB).
import { ProtocolError } from './frames.js';

/** Between `data-begin` and `data-end`: the next `length` bytes of the file are zeros. */
export interface ZerosMessage {
  t: 'zeros';
  length: number;
}

/** Only the shape: the repository side bounds the length by the file being received. */
export function decodeZeros(m: Record<string, unknown>): ZerosMessage {
  const length = m.length;
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 1) {
    throw new ProtocolError('peer sent an invalid zero run length');
  }
  return { t: 'zeros', length };
}
