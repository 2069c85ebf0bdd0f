// The checks every decoder applies to what a peer sent, before any other code
// sees it: types, bounds, and the shapes of paths, hashes, numbers and names.
// Each failure is a ProtocolError naming what was invalid.
import { ProtocolError } from './frames.js';

export function fail(what: string): never {
  throw new ProtocolError(`peer sent an invalid ${what}`);
}

export function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(what);
  return v as Record<string, unknown>;
}

export function int(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) fail(what);
  return v;
}

export function str(v: unknown, what: string, maxLength = 4096): string {
  if (typeof v !== 'string' || v.length > maxLength) fail(what);
  return v;
}

export function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') fail(what);
  return v;
}

/** Reasons, warnings and log lines may quote a path, and paths may be longer than PATH_MAX (up to 32 KiB here). */
export const TEXT_LIMIT = 65536;
const HEX64 = /^[0-9a-f]{64}$/;
const DECIMAL = /^-?[0-9]{1,25}$/;
const SNAPSHOT_NAME = /^[0-9]{4}\.[0-9]{2}\.[0-9]{2}-[0-9]{2}\.[0-9]{2}\.[0-9]{2}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function bytes(v: unknown, what: string): Buffer {
  const s = str(v, what, 65536);
  if (!BASE64.test(s)) fail(what);
  return Buffer.from(s, 'base64');
}

/**
 * A relative path is safe when it is empty (the root) or a sequence of names
 * separated by single slashes, none of them '.', '..' or containing NUL.
 */
export function isSafeRelativePath(path: Buffer): boolean {
  if (path.length === 0) return true;
  if (path.length > 32768 || path.includes(0)) return false;
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i === path.length || path[i] === 0x2f) {
      const len = i - start;
      if (len === 0 || len > 255) return false;
      if (path[start] === 0x2e && (len === 1 || (len === 2 && path[start + 1] === 0x2e))) return false;
      start = i + 1;
    }
  }
  return true;
}

export function hash(v: unknown, what: string): string {
  const s = str(v, what, 64);
  if (!HEX64.test(s)) fail(what);
  return s;
}

export function nanoseconds(v: unknown, what: string): bigint {
  const s = str(v, what, 32);
  if (!DECIMAL.test(s)) fail(what);
  return BigInt(s);
}

export function snapshotName(v: unknown): string {
  const name = str(v, 'snapshot name', 32);
  if (!SNAPSHOT_NAME.test(name)) fail('snapshot name');
  return name;
}

/** The rule of diff/series-name.ts (protocol/ imports nothing): a peer's series name never climbs nor names `.lb`. */
const SERIES_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

/** A message's optional series (--series): `{ series }` when named, else nothing (a field left out, not undefined). */
export function optionalSeries(v: unknown): { series?: string } {
  if (v === undefined) return {};
  const name = str(v, 'series name', 64);
  if (!SERIES_NAME.test(name) || name === 'latest' || SNAPSHOT_NAME.test(name)) fail('series name');
  return { series: name };
}


/**
 * Names go as text when they are UTF-8 (as nearly all are: deflate then finds the prefixes
 * they share), as base64 under a second key when they are not.
 */
export function putBytes(wire: Record<string, unknown>, key: string, value: Buffer): void {
  const text = value.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(value)) wire[key] = text;
  else wire[key + 'b'] = value.toString('base64');
}

/** The bytes under `key` (text) or `key`+'b' (base64), as putBytes wrote them. */
export function getBytes(w: Record<string, unknown>, key: string, what: string): Buffer {
  if (w[key] !== undefined) return Buffer.from(str(w[key], what, 65536), 'utf8');
  return bytes(w[key + 'b'], what);
}
