// What to take from a pulled source (excludes, tags, one filesystem, the file
// list), as it travels in the pull request to the remote scanner. Patterns are
// compiled there, by the same code as locally; this decoder checks shapes and
// bounds, and every listed path is held to the rules for a path from a peer.
import type { RuleSource } from '../scan/filter-rules.js';
import type { SelectionSpec } from '../scan/selection.js';
import { ProtocolError } from './frames.js';
import { bool, fail, getBytes, isSafeRelativePath, obj, putBytes, str } from './validate.js';

const MAX_RULES = 100_000;
const MAX_PATTERN = 4096;
const MAX_TAGS = 1000;
/**
 * The file list, NUL-joined. It travels in base64 (4 characters for 3 bytes) inside the pull request, one
 * frame of at most 8 MiB of JSON: 64 KiB less than 6 MiB leaves 85 KiB for the rest of the request.
 */
export const MAX_FILE_LIST_BYTES = 6 * 1024 * 1024 - 64 * 1024;

export function encodeSelection(spec: SelectionSpec): object {
  const wire: Record<string, unknown> = {
    rules: spec.rules.map((rule) => {
      const r: Record<string, unknown> = { k: rule.kind === 'include' ? '+' : '-' };
      putBytes(r, 'p', rule.pattern);
      return r;
    }),
    caches: spec.excludeCaches,
    tags: spec.excludeIfPresent.map((name) => {
      const t: Record<string, unknown> = {};
      putBytes(t, 'n', name);
      return t;
    }),
    oneFs: spec.oneFileSystem,
  };
  if (spec.listed) wire.list = spec.listed.toString('base64');
  return wire;
}

function decodeRule(raw: unknown): RuleSource {
  const r = obj(raw, 'filter rule');
  if (r.k !== '+' && r.k !== '-') fail('filter rule kind');
  const pattern = getBytes(r, 'p', 'filter pattern');
  if (pattern.length > MAX_PATTERN) fail('filter pattern');
  return { kind: r.k === '+' ? 'include' : 'exclude', pattern };
}

function decodeTag(raw: unknown): Buffer {
  const name = getBytes(obj(raw, 'tag name'), 'n', 'tag name');
  // One name, never a path: it is looked for among a directory's entries.
  if (name.length === 0 || name.includes(0x2f) || !isSafeRelativePath(name)) fail('tag name');
  return name;
}

function decodeFileList(raw: unknown): Buffer {
  const text = str(raw, 'file list', Math.ceil((MAX_FILE_LIST_BYTES * 4) / 3) + 4);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) fail('file list');
  const joined = Buffer.from(text, 'base64');
  for (let start = 0; start < joined.length; ) {
    let end = joined.indexOf(0, start);
    if (end < 0) end = joined.length;
    const path = joined.subarray(start, end);
    const root = path.length === 1 && path[0] === 0x2e; // the whole source was listed
    if (!root && (path.length === 0 || !isSafeRelativePath(path))) {
      throw new ProtocolError(`peer sent an unsafe listed path ${JSON.stringify(path.toString('latin1'))}`);
    }
    start = end + 1;
  }
  return joined;
}

export function decodeSelection(raw: unknown): SelectionSpec {
  const s = obj(raw, 'selection');
  if (!Array.isArray(s.rules) || s.rules.length > MAX_RULES) fail('filter rules');
  if (!Array.isArray(s.tags) || s.tags.length > MAX_TAGS) fail('tag names');
  const spec: SelectionSpec = {
    rules: s.rules.map(decodeRule),
    excludeCaches: bool(s.caches, 'exclude-caches option'),
    excludeIfPresent: s.tags.map(decodeTag),
    oneFileSystem: bool(s.oneFs, 'one-file-system option'),
  };
  if (s.list !== undefined) spec.listed = decodeFileList(s.list);
  return spec;
}
