// `--filelist FILE|-`: back up only the listed paths, relative to the source
// root, with the directories that lead to them (Link-Backup's seeding through
// a transfer disk: `lb --showfiles … | lb --filelist - …`). A listed directory
// comes whole. Paths are bytes; with `-0` the list is NUL-separated and can
// name anything, else one path a line.
import { lstatSync } from 'node:fs';

export class FileListError extends Error {}

/** How a name inside a directory is wanted: the whole subtree, or only as the way to listed paths below it. */
export type Wanted = 'whole' | 'through';

const SLASH = 0x2f;

function shown(path: Buffer): string {
  return JSON.stringify(path.toString());
}

/** A listed path as names: './a//b/' is a/b; absolute paths and '..' are refused. */
function namesOf(path: Buffer, origin: string): Buffer[] {
  if (path[0] === SLASH) throw new FileListError(`${origin} names ${shown(path)}, an absolute path: list paths relative to the source`);
  if (path.includes(0)) throw new FileListError(`${origin} names a path with a NUL byte`);
  const names: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    if (i < path.length && path[i] !== SLASH) continue;
    const name = path.subarray(start, i);
    start = i + 1;
    if (name.length === 0 || (name.length === 1 && name[0] === 0x2e)) continue;
    if (name.length === 2 && name[0] === 0x2e && name[1] === 0x2e) {
      throw new FileListError(`${origin} names ${shown(path)}, with a '..' in it: list paths inside the source, without '..'`);
    }
    names.push(name);
  }
  return names;
}

export class FileList {
  /** Directory (latin1 of its relative path) -> names wanted in it. */
  private readonly inside = new Map<string, Map<string, Wanted>>();
  /** The root itself was listed ('.'): everything. */
  readonly everything: boolean;

  private constructor(lists: Buffer[][]) {
    let everything = false;
    for (const names of lists) {
      if (names.length === 0) everything = true;
      let dir = '';
      names.forEach((name, i) => {
        const key = name.toString('latin1');
        let wanted = this.inside.get(dir);
        if (!wanted) this.inside.set(dir, (wanted = new Map()));
        // A name listed whole stays whole even when a later path runs through it.
        if (i === names.length - 1) wanted.set(key, 'whole');
        else if (!wanted.has(key)) wanted.set(key, 'through');
        dir = dir === '' ? key : `${dir}/${key}`;
      });
    }
    this.everything = everything;
  }

  /** The list in `bytes`: NUL-separated when `nul`, else one path a line; empty entries are ignored. */
  static parse(bytes: Buffer, nul: boolean, origin: string): FileList {
    const separator = nul ? 0 : 0x0a;
    const lists: Buffer[][] = [];
    let start = 0;
    for (let i = 0; i <= bytes.length; i++) {
      if (i < bytes.length && bytes[i] !== separator) continue;
      const path = bytes.subarray(start, i);
      start = i + 1;
      if (path.length > 0) lists.push(namesOf(path, origin));
    }
    return new FileList(lists);
  }

  /** The listed paths, normalized, NUL-joined: as they travel to a remote source. */
  static fromWire(joined: Buffer): FileList {
    return FileList.parse(joined, true, 'the file list');
  }

  toWire(): Buffer {
    const paths: Buffer[] = [];
    if (this.everything) paths.push(Buffer.from('.'));
    const visit = (dir: string) => {
      for (const [name, wanted] of this.inside.get(dir) ?? []) {
        const path = dir === '' ? name : `${dir}/${name}`;
        if (wanted === 'whole') paths.push(Buffer.from(path, 'latin1'));
        visit(path);
      }
    };
    visit('');
    return Buffer.concat(paths.flatMap((p, i) => (i === 0 ? [p] : [Buffer.from([0]), p])));
  }

  /** How `name` inside directory `dir` (relative, latin1 as the walk holds it) is wanted, or undefined. */
  wanted(dir: string, name: Buffer): Wanted | undefined {
    return this.inside.get(dir)?.get(name.toString('latin1'));
  }

  /** The first listed path below directory `dir` (latin1), which lies on the way to at least one. */
  private firstListedBelow(dir: string): string {
    const [name, wanted] = this.inside.get(dir)!.entries().next().value!;
    const path = `${dir}/${name}`;
    return wanted === 'whole' ? path : this.firstListedBelow(path);
  }

  /**
   * Every listed path must be in the source, reached through real directories (never a symlink: the
   * walk does not follow one, so a path through one would silently be missing). Throws the first that is not.
   */
  check(root: string, origin: string): void {
    const rootBytes = Buffer.from(root);
    for (const [dir, names] of this.inside) {
      for (const [name, wanted] of names) {
        const key = dir === '' ? name : `${dir}/${name}`;
        const relative = Buffer.from(key, 'latin1');
        let stat;
        try {
          stat = lstatSync(Buffer.concat([rootBytes, Buffer.from('/'), relative]));
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          const why = code === 'ENOENT' || code === 'ENOTDIR' ? 'which is not in the source' : `which cannot be examined (${code})`;
          // A directory on the way was never listed itself: name a path the list holds.
          const listed = wanted === 'whole' ? relative : Buffer.from(this.firstListedBelow(relative.toString('latin1')), 'latin1');
          throw new FileListError(`${origin} names ${shown(listed)}, ${why}`);
        }
        // Listed paths below it need a real directory, even when it is listed whole too (a symlink would be kept as one).
        if (this.inside.has(key) && !stat.isDirectory()) {
          const what = stat.isSymbolicLink() ? 'a symlink, which lb never follows' : 'not a directory';
          throw new FileListError(`${origin} names paths inside ${shown(relative)}, which is ${what}`);
        }
      }
    }
  }
}
