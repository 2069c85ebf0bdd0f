// Telling a catalog file that is bad from one that is only busy or on a full
// disk, and moving a bad one aside. A bad catalog is never deleted: the path may
// have named the wrong file, and the file is evidence of what went wrong.
import { existsSync, renameSync, statSync } from 'node:fs';

/** The catalog was made by a newer lb: not damaged, only not ours to change. */
export class NewerCatalogError extends Error {}
/** The file is an SQLite database, but one lb did not make: never dropped, only moved aside. */
export class ForeignCatalogError extends Error {}

export interface FileIdentity {
  dev: number;
  ino: number;
}

/** Which file a path names now; null when it names no regular file. */
export function fileIdentity(path: string): FileIdentity | null {
  try {
    const stat = statSync(path);
    return stat.isFile() ? { dev: stat.dev, ino: stat.ino } : null;
  } catch {
    return null;
  }
}

function sqliteCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** The file's content is damaged or no database at all: a fresh catalog is the cure. */
export function isDamage(error: unknown): boolean {
  const code = sqliteCode(error);
  return code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB';
}

/**
 * Opening failed because of the file itself: damaged, not a database, tables
 * that are not lb's, or a file this user cannot read or write. Not: busy (another
 * run holds it), a full or failing disk, a newer lb's catalog.
 */
export function isUnusableFile(error: unknown): boolean {
  const code = sqliteCode(error);
  return isDamage(error) || code === 'SQLITE_ERROR' || code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || error instanceof ForeignCatalogError;
}

function asideName(path: string): string {
  const stamp = new Date().toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
  const name = `${path}.broken-${stamp}`;
  return existsSync(name) ? `${name}-${process.pid}` : name;
}

/**
 * Renames the catalog at `path` (with its -wal and -shm) to `<path>.broken-<UTC time>`,
 * but only while it is still the file `identity` names: another run may already
 * have moved it and made a fresh one, which must stay. Returns the new name, or
 * null when there was nothing of ours to move. Throws when the rename fails.
 */
export function moveAside(path: string, identity: FileIdentity | null): string | null {
  const now = fileIdentity(path);
  if (!identity || !now || now.dev !== identity.dev || now.ino !== identity.ino) return null;
  const aside = asideName(path);
  renameSync(path, aside);
  for (const suffix of ['-wal', '-shm']) {
    try {
      renameSync(path + suffix, aside + suffix);
    } catch (error) {
      // A journal left behind would be replayed into the fresh catalog.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return aside;
}
