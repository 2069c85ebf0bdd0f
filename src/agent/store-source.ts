// `lb --catalogonly REPOSITORY DEST`: a repository given as the source (a
// transfer disk's) gives its object store, not its files as a tree: every
// object is content to store at DEST, and its name says its hash, so nothing
// held at DEST already needs reading.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const OBJECT_NAME = /^[0-9a-f]{2}\/([0-9a-f]{64})(\.|$)/;

/** The object directory of the lb repository at `root`, or null when `root` is no repository. */
export function storeOf(root: string): string | null {
  return existsSync(join(root, '.lb', 'format')) ? join(root, '.lb', 'objects') : null;
}

/** Why a file list or an exclude cannot go with a repository as --catalogonly's source. */
export function storeSelectionRefusal(source: string): string {
  return (
    `${source} is an lb repository, whose objects --catalogonly stores whole: --filelist and the options that leave things out ` +
    `choose paths of a tree; give one of its snapshot trees (${source}/latest/tree) instead`
  );
}

/** The hash an object's path (`ab/<sha256>[.<mode>…]`, relative to the store) names; undefined for anything else there. */
export function objectHash(path: Buffer): string | undefined {
  return OBJECT_NAME.exec(path.toString('latin1'))?.[1];
}
