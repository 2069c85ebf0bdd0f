// Names from a snapshot as a terminal shows them and as JSON carries them. Names
// are bytes: text output escapes what a terminal would misshow (control bytes,
// bytes that are not UTF-8, the backslash itself) as GNU `ls -b` does, and JSON
// gives the name as text when it is UTF-8, else as base64 bytes beside a
// readable form, so a program reading it gets the exact bytes back.

/** `\xNN` for control bytes and bytes outside valid UTF-8, `\\` for a backslash. */
export function displayName(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  const valid = Buffer.from(text, 'utf8').equals(bytes);
  let out = '';
  if (valid) {
    for (const ch of text) {
      const code = ch.codePointAt(0)!;
      out += ch === '\\' ? '\\\\' : code < 0x20 || code === 0x7f ? `\\x${code.toString(16).padStart(2, '0')}` : ch;
    }
    return out;
  }
  for (const byte of bytes) {
    out += byte === 0x5c ? '\\\\' : byte < 0x20 || byte >= 0x7f ? `\\x${byte.toString(16).padStart(2, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

/** `{ path }` when the name is UTF-8; else `{ path: <escaped>, pathBase64 }`, the exact bytes. */
export function jsonName(bytes: Buffer, key = 'path'): Record<string, string> {
  const text = bytes.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(bytes)) return { [key]: text };
  return { [key]: displayName(bytes), [`${key}Base64`]: bytes.toString('base64') };
}
