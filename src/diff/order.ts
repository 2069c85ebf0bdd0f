// The canonical entry order: depth-first, siblings by raw name bytes. Comparing
// whole paths with '/' treated as the lowest byte gives exactly that order, so a
// sorted walk and a manifest written in walk order can be merged in one pass.

const SLASH = 0x2f;

function rank(byte: number): number {
  return byte === SLASH ? -1 : byte;
}

export function comparePaths(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x !== y) return rank(x) - rank(y);
  }
  return a.length - b.length;
}

/** The parent of a relative path; the root ('') has none. */
export function parentPath(path: Buffer): Buffer | null {
  if (path.length === 0) return null;
  const slash = path.lastIndexOf(SLASH);
  return slash < 0 ? Buffer.alloc(0) : path.subarray(0, slash);
}

/** True when `path` lies strictly inside directory `dir` (the root contains everything else). */
export function isInside(path: Buffer, dir: Buffer): boolean {
  if (dir.length === 0) return path.length > 0;
  return path.length > dir.length && path[dir.length] === SLASH && path.subarray(0, dir.length).equals(dir);
}
