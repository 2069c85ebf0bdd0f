// Writes a snapshot (or some of its subtrees) into a directory, from its manifest
// and tree, in canonical order. Contents are copied, never hard-linked: a restore
// must not share inodes with the repository, or editing a restored file would edit
// every snapshot holding it (the source's own hard links are remade among the restored
// files: restore-links.ts). Each copy is hashed as it is read and left out when it
// does not match its record. Every path is made under a directory this restore made
// itself or checked with lstat to be a real directory, so no write goes through a
// symlink; files and symlinks are made under a temporary name (O_EXCL|O_NOFOLLOW)
// and renamed into place, which replaces an existing entry without following it.
// Directory metadata is set once a directory's subtree is complete, deepest first.
// Paths beyond PATH_MAX (a snapshot's tree is deeper than its source) go through atPath.
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
} from 'node:fs';
import { join } from 'node:path';
import { isInside } from '../diff/order.js';
import type { ManifestRecord } from './manifest.js';
import { atPath } from './deep-path.js';
import { RestoredLinks } from './restore-links.js';
import { toSeconds } from './objects.js';
import type { RepositoryReader } from './reader.js';
import { writeFully } from './write-fully.js';

export interface RestoreOptions {
  /** Subtrees to restore, as the manifest spells them; empty for the whole snapshot. */
  paths: Buffer[];
  /** Set owners and groups as recorded (only root may). */
  setOwner: boolean;
}

export interface RestoreTally {
  files: number;
  directories: number;
  symlinks: number;
  bytes: number;
  problems: number;
  /** Files left out because their content in the repository does not match its hash. */
  damaged: number;
}

/** A path missing from the snapshot, among those asked for; null when all are there. */
export function firstMissingPath(reader: RepositoryReader, snapshot: string, paths: Buffer[]): Buffer | null {
  if (paths.length === 0) return null;
  const missing = new Map(paths.map((p) => [p.toString('latin1'), p]));
  for (const record of reader.records(snapshot)) {
    missing.delete(record.path.toString('latin1'));
    if (missing.size === 0) return null;
  }
  return missing.size === 0 ? null : [...missing.values()][0]!;
}

/** Whether a record is part of the restore: in a subtree asked for, or a directory leading to one. */
export function isSelected(path: Buffer, paths: Buffer[]): boolean {
  if (paths.length === 0) return true;
  return paths.some((p) => p.equals(path) || isInside(path, p) || isInside(p, path));
}

/** The records a restore would write, in the order it writes them. */
export function* selectedRecords(reader: RepositoryReader, snapshot: string, paths: Buffer[]): Generator<ManifestRecord> {
  for (const record of reader.records(snapshot)) if (isSelected(record.path, paths)) yield record;
}

const COPY_CHUNK = 1 << 20;

export class Restorer {
  readonly tally: RestoreTally = { files: 0, directories: 0, symlinks: 0, bytes: 0, problems: 0, damaged: 0 };
  private readonly target: Buffer;
  private readonly sourceTree: string;
  /** Directories made or checked whose subtree is still being written, outermost first. */
  private readonly open: ManifestRecord[] = [];
  /** A directory that could not be made: everything beneath it is left out. */
  private refused: Buffer | null = null;
  private temporaries = 0;
  private readonly buffer = Buffer.allocUnsafe(COPY_CHUNK);
  private links!: RestoredLinks;

  constructor(
    private readonly reader: RepositoryReader,
    private readonly snapshot: string,
    target: string,
    private readonly options: RestoreOptions,
    /** One line about a path that was left out or not fully restored. */
    private readonly problem: (path: Buffer, text: string) => void,
  ) {
    this.target = Buffer.from(target);
    this.sourceTree = join(reader.snapshotDir(snapshot), 'tree');
  }

  run(): RestoreTally {
    this.links = RestoredLinks.of(selectedRecords(this.reader, this.snapshot, this.options.paths));
    for (const record of selectedRecords(this.reader, this.snapshot, this.options.paths)) {
      this.closeDirectoriesBefore(record.path);
      if (this.refused !== null && isInside(record.path, this.refused)) continue;
      try {
        this.write(record);
      } catch (error) {
        this.fail(record.path, (error as Error).message);
        if (record.type === 'dir') this.refused = record.path;
      }
    }
    this.closeDirectoriesBefore(null);
    return this.tally;
  }

  private fail(path: Buffer, text: string): void {
    this.tally.problems++;
    this.problem(path, text);
  }

  private destination(path: Buffer): Buffer {
    return path.length === 0 ? this.target : Buffer.concat([this.target, Buffer.from('/'), path]);
  }

  private write(record: ManifestRecord): void {
    switch (record.type) {
      case 'dir':
        return this.makeDirectory(record);
      case 'file':
        return this.copyFile(record);
      case 'symlink':
        return this.makeSymlink(record);
    }
  }

  private makeDirectory(record: ManifestRecord): void {
    atPath(this.destination(record.path), (path) => this.makeDirectoryAt(path));
    this.open.push(record);
  }

  private makeDirectoryAt(path: Buffer): void {
    try {
      // Owner-writable until its subtree is complete; the recorded mode is set on close.
      mkdirSync(path, { mode: 0o700 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // The target itself was checked before; anything else is already there only under --overwrite.
      const existing = lstatSync(path);
      if (!existing.isDirectory()) {
        throw new Error(`${existing.isSymbolicLink() ? 'a symlink' : 'a file'} is in the way of this directory; left alone, with everything the snapshot holds beneath it`);
      }
    }
  }

  /** A fresh name beside `path` for writing before the rename into place. */
  private temporaryBeside(path: Buffer): Buffer {
    const parent = path.subarray(0, path.lastIndexOf(0x2f) + 1); // '' for a bare name (atPath went into its directory)
    return Buffer.concat([parent, Buffer.from(`.lb-restore-${process.pid}-${this.temporaries++}`)]);
  }

  private copyFile(record: ManifestRecord): void {
    const destination = this.destination(record.path);
    const replace = (temporary: Buffer) => this.replace(temporary, destination);
    if (record.link && this.links.link(record, this.temporaryBeside(destination), replace, (why) => this.fail(record.path, why))) {
      this.tally.files++;
      this.tally.bytes += record.size;
      return;
    }
    const source = this.openStored(record.path);
    try {
      atPath(destination, (path) => this.copyTo(record, source, path));
    } finally {
      closeSync(source);
    }
    this.links.copied(record, destination);
  }

  private copyTo(record: ManifestRecord, source: number, path: Buffer): void {
    const temporary = this.temporaryBeside(path);
    let output: number | null = null;
    let made = false;
    try {
      output = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      made = true;
      const hash = createHash('sha256');
      let size = 0;
      // Read by position: atPath may run this twice (a rename past PATH_MAX), each from the start.
      for (let n = readSync(source, this.buffer, 0, COPY_CHUNK, 0); n > 0; n = readSync(source, this.buffer, 0, COPY_CHUNK, size)) {
        const chunk = this.buffer.subarray(0, n);
        hash.update(chunk);
        writeFully(output, chunk);
        size += n;
      }
      if (size !== record.size || hash.digest('hex') !== record.hash) {
        this.tally.damaged++;
        throw new Error(`its content in the repository does not match its SHA-256 ${record.hash} (a damaged object); left out`);
      }
      // Owner before mode: chown clears the setuid and setgid bits.
      if (this.options.setOwner) fchownSync(output, record.uid, record.gid);
      fchmodSync(output, record.mode);
      const seconds = toSeconds(record.mtimeNs);
      futimesSync(output, seconds, seconds);
      closeSync(output);
      output = null;
      this.replace(temporary, path);
      this.tally.files++;
      this.tally.bytes += size;
    } catch (error) {
      if (output !== null) closeSync(output);
      if (made) unlinkSync(temporary);
      throw error;
    }
  }

  /** The file's tree entry in the snapshot; a missing one is damage to the repository, as a rotten one is. */
  private openStored(path: Buffer): number {
    try {
      return atPath(Buffer.concat([Buffer.from(this.sourceTree + '/'), path]), (stored) => openSync(stored, constants.O_RDONLY | constants.O_NOFOLLOW));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.tally.damaged++;
      throw new Error("it is missing from the snapshot's tree in the repository (a damaged snapshot); left out");
    }
  }

  private makeSymlink(record: ManifestRecord): void {
    atPath(this.destination(record.path), (path) => this.makeSymlinkAt(record, path));
    this.tally.symlinks++;
  }

  private makeSymlinkAt(record: ManifestRecord, path: Buffer): void {
    const temporary = this.temporaryBeside(path);
    symlinkSync(record.target!, temporary);
    try {
      if (this.options.setOwner) lchownSync(temporary, record.uid, record.gid);
      const seconds = toSeconds(record.mtimeNs);
      lutimesSync(temporary, seconds, seconds);
      this.replace(temporary, path);
    } catch (error) {
      unlinkSync(temporary);
      throw error;
    }
  }

  /** rename(2) replaces a file or symlink at `path` itself, never what it points to. */
  private replace(temporary: Buffer, path: Buffer): void {
    try {
      renameSync(temporary, path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST') throw new Error('a directory is in the way; left alone');
      throw error;
    }
  }

  /** Sets the metadata of the directories the next path (null: none) is not inside, deepest first. */
  private closeDirectoriesBefore(path: Buffer | null): void {
    while (this.open.length > 0) {
      const dir = this.open[this.open.length - 1]!;
      if (path !== null && isInside(path, dir.path)) return;
      this.open.pop();
      this.closeDirectory(dir);
    }
  }

  private closeDirectory(dir: ManifestRecord): void {
    const seconds = toSeconds(dir.mtimeNs);
    try {
      atPath(this.destination(dir.path), (path) => {
        if (this.options.setOwner) chownSync(path, dir.uid, dir.gid);
        chmodSync(path, dir.mode);
        utimesSync(path, seconds, seconds);
      });
      this.tally.directories++;
    } catch (error) {
      this.fail(dir.path, (error as Error).message);
    }
  }
}
