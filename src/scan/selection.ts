// What a backup takes from its source: rsync's filter rules, cache directories
// and tagged directories left out (their tag file kept, as restic and GNU tar
// do), mount points not entered, and Link-Backup's file list. The walk asks it
// before it lstats anything below a directory, so nothing under an excluded
// directory is ever listed or examined.
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { FileList, type Wanted } from './file-list.js';
import { FilterRules, type RuleSource } from './filter-rules.js';

/** What the command line chose, as it travels to a remote source. */
export interface SelectionSpec {
  rules: RuleSource[];
  excludeCaches: boolean;
  /** Names whose presence leaves the rest of their directory out. */
  excludeIfPresent: Buffer[];
  oneFileSystem: boolean;
  /** `--filelist`: the listed paths, normalized and NUL-joined (FileList.toWire). */
  listed?: Buffer;
}

export const CACHEDIR_TAG = 'CACHEDIR.TAG';
/** https://bford.info/cachedir/: a tag is valid when its file begins with exactly this. */
const CACHEDIR_SIGNATURE = Buffer.from('Signature: 8a477f597d28d172789f06886806bc55');

/** True when the spec leaves anything out (the root of a tree, not an object store, is then what it is about). */
export function choosesPaths(spec: SelectionSpec): boolean {
  return spec.listed !== undefined || spec.rules.length > 0 || spec.excludeCaches || spec.excludeIfPresent.length > 0 || spec.oneFileSystem;
}

export const NO_SELECTION: SelectionSpec = { rules: [], excludeCaches: false, excludeIfPresent: [], oneFileSystem: false };

/** True when the regular file at `path` begins with the cache directory signature (never follows a link, never blocks on a FIFO). */
function isCacheTag(path: Buffer): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(CACHEDIR_SIGNATURE.length);
    return readSync(fd, head, 0, head.length, 0) === head.length && head.equals(CACHEDIR_SIGNATURE);
  } catch {
    return false; // a directory named CACHEDIR.TAG, say
  } finally {
    closeSync(fd);
  }
}

export class Selection {
  readonly rules: FilterRules;
  readonly oneFileSystem: boolean;
  readonly fileList: FileList | undefined;
  /** Tag names as latin1 text, as the walk holds names. */
  private readonly tags: string[];
  private readonly cacheTags: boolean;

  constructor(readonly spec: SelectionSpec) {
    this.rules = FilterRules.compile(spec.rules);
    this.oneFileSystem = spec.oneFileSystem;
    this.fileList = spec.listed === undefined ? undefined : FileList.fromWire(spec.listed);
    this.tags = spec.excludeIfPresent.map((tag) => tag.toString('latin1'));
    this.cacheTags = spec.excludeCaches;
  }

  /**
   * The names of directory `absolute` to look at: all of them; only its tag files when it is tagged;
   * only the listed ones (and those leading to them) when it lies on the way to listed paths.
   * Names and `dir` (the directory's relative path) are latin1 text, one character a byte;
   * `whole` is false when the file list narrows the directory.
   */
  namesToExamine(absolute: Buffer, dir: string, whole: boolean, names: string[]): string[] {
    const kept = whole || !this.fileList ? names : names.filter((name) => this.fileList!.wanted(dir, Buffer.from(name, 'latin1')) !== undefined);
    // Excludes win over the file list: a tagged directory keeps only its tag, and that only if listed.
    const tags = this.tagsIn(absolute, names);
    return tags.length > 0 ? tags.filter((tag) => kept.includes(tag)) : kept;
  }

  /** Whether a name found in a directory narrowed by the file list comes whole (its subtree too). */
  wanted(dir: string, name: Buffer): Wanted | undefined {
    return this.fileList?.wanted(dir, name);
  }

  excluded(path: Buffer, isDirectory: boolean): boolean {
    return this.rules.size > 0 && this.rules.excluded(path, isDirectory);
  }

  private tagsIn(absolute: Buffer, names: string[]): string[] {
    if (!this.cacheTags && this.tags.length === 0) return [];
    return names.filter(
      (name) =>
        this.tags.includes(name) ||
        (this.cacheTags && name === CACHEDIR_TAG && isCacheTag(Buffer.concat([absolute, Buffer.from('/'), Buffer.from(name, 'latin1')]))),
    );
  }
}
