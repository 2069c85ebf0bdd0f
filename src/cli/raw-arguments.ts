// Node hands the command line over as UTF-8 text, replacing bytes that are not
// UTF-8 with U+FFFD: a pattern naming such a byte would lose it. Linux keeps
// the bytes in /proc/self/cmdline; an option value with U+FFFD in it is taken
// from there, so `--exclude $'\xff*'` matches the byte 0xff.
import { readFileSync } from 'node:fs';

const REPLACEMENT = '\uFFFD';

let raw: Buffer[] | null | undefined;

/** This process's arguments after the script, as bytes; null where /proc is not there. */
function rawArguments(): Buffer[] | null {
  if (raw !== undefined) return raw;
  try {
    const cmdline = readFileSync('/proc/self/cmdline');
    const parts: Buffer[] = [];
    for (let start = 0; start < cmdline.length; ) {
      const end = cmdline.indexOf(0, start);
      parts.push(cmdline.subarray(start, end < 0 ? cmdline.length : end));
      start = end < 0 ? cmdline.length : end + 1;
    }
    const count = process.argv.length - 2;
    raw = parts.length >= count ? parts.slice(parts.length - count) : null;
  } catch {
    raw = null;
  }
  return raw;
}

/** The bytes the user typed for option value `text` (as `--opt VALUE` or `--opt=VALUE`). */
export function argumentBytes(text: string): Buffer {
  if (!text.includes(REPLACEMENT)) return Buffer.from(text);
  const args = rawArguments();
  const given = process.argv.slice(2);
  for (let i = 0; args && i < given.length; i++) {
    const arg = given[i]!;
    if (arg === text) return args[i]!;
    if (arg.endsWith(`=${text}`)) {
      const whole = args[i]!;
      const prefix = Buffer.from(arg.slice(0, arg.length - text.length));
      return whole.subarray(prefix.length);
    }
  }
  return Buffer.from(text);
}
