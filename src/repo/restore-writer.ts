// The target side of a restore: writes the records a restore feed sends, in
// manifest order, into a directory. Contents are copies, checked against their
// hashes as they are written. Every path is made under a directory this restore
// made itself or checked with lstat to be a real directory, and a record is taken
// only when the directory holding it is the one being written (a feed that breaks
// manifest order, over the wire say, cannot lead a write elsewhere); files and
// symlinks are made under a temporary name (O_EXCL|O_NOFOLLOW) and renamed into
// place, which replaces an existing entry without following it. Directory metadata
// is set once a directory's subtree is complete, deepest first. Paths beyond
// PATH_MAX go through atPath.
//
// Synchronous throughout: fed over a wire, it runs in a thread of its own
// (agent/restore-thread.ts), which is handed a bounded number of bytes ahead of
// what it has written; past them the wire's backpressure is all the flow control.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, constants, fchmodSync, fchownSync, futimesSync, openSync, readSync, renameSync } from 'node:fs';
import { isInside } from '../diff/order.js';
import { atPath } from './deep-path.js';
import { toSeconds } from './object-files.js';
import { RestoredLinks } from './restore-links.js';
import { beside, makeDirectoryAt, placeSymlink, replace, setDirectoryMetadata, unlinkOrNone } from './restore-place.js';
import { DamagedContent, type FeedProblem, type OwnerMapping, type RestoreRecord, type RestoreTally } from './restore-record.js';
import { SparseWriter, hashZeros } from './sparse-write.js';

const COPY_CHUNK = 1 << 20;

interface FileInProgress {
  record: RestoreRecord;
  /** Where it goes in the target, and its temporary's own name beside that. */
  destination: Buffer;
  temporary: Buffer;
  /** Null once closed. */
  fd: number | null;
  hash: Hash;
  /** Leaves the content's zero blocks as holes. */
  writer: SparseWriter;
  size: number;
  /** The earlier restored path it is copied from, for a file whose content came once already. */
  copiedFrom: Buffer | null;
  /** A path left out whose content arrives anyway: only held, for later paths with the same content. */
  holding: boolean;
}

export class RestoreWriter {
  readonly tally: RestoreTally = { files: 0, directories: 0, symlinks: 0, bytes: 0, problems: 0, damaged: 0 };
  private readonly target: Buffer;
  /** Directories made or checked whose subtree is still being written, outermost first. */
  private readonly open: RestoreRecord[] = [];
  /** A directory that could not be made: everything beneath it is left out. */
  private refused: Buffer | null = null;
  private temporaries = 0;
  /** The file whose content is arriving; null between files, and for a file that is being left out. */
  private current: FileInProgress | null = null;
  /**
   * Contents that arrived intact but could not be put in place (a directory in the way,
   * under --overwrite; or, fed over a wire, a path left out), by path: held in the target's
   * top directory until the end, for a later path with the same content to be copied from.
   */
  private readonly held = new Map<string, Buffer>();
  /** Contents that arrived damaged: a later path given as the same content is left out as damaged too. */
  private readonly damagedHashes = new Set<string>();
  private readonly buffer = Buffer.allocUnsafe(COPY_CHUNK);
  private readonly links = new RestoredLinks();

  constructor(
    target: string,
    private readonly owners: OwnerMapping | null,
    /** One line about a path that was left out or not fully restored. */
    private readonly problem: (path: Buffer, text: string) => void,
  ) {
    this.target = Buffer.from(target);
  }

  /** A directory or a symlink. */
  entry(record: RestoreRecord): void {
    if (!this.enter(record)) return;
    try {
      if (record.type === 'dir') this.makeDirectory(record);
      else if (record.type === 'symlink') this.makeSymlink(record);
      else throw new Error('a file came without its content');
    } catch (error) {
      this.fail(record.path, (error as Error).message);
      if (record.type === 'dir') this.refused = record.path;
    }
  }

  /**
   * A file whose content follows (fileData), then fileEnd; its content is not needed when it becomes a hard link.
   * `arrivesAnyway`: a feed over a wire sends the content even when the path is left out, and may refer to it
   * later: it is then kept in a holding file, for those later paths to be copied from.
   */
  beginFile(record: RestoreRecord, copiedFrom: Buffer | null = null, arrivesAnyway = false): void {
    this.current = null;
    if (!this.enter(record)) return arrivesAnyway ? this.beginHolding(record) : undefined;
    const destination = this.destination(record.path);
    if (record.link && this.linked(record, destination)) return;
    try {
      this.current = this.openTemporary(record, destination, copiedFrom);
    } catch (error) {
      this.fail(record.path, (error as Error).message);
      if (arrivesAnyway) this.beginHolding(record);
    }
  }

  private openTemporary(record: RestoreRecord, destination: Buffer, copiedFrom: Buffer | null, holding = false): FileInProgress {
    const temporary = Buffer.from(`.lb-restore-${process.pid}-${this.temporaries++}`);
    const fd = atPath(destination, (path) =>
      openSync(beside(path, temporary), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600),
    );
    return { record, destination, temporary, fd, hash: createHash('sha256'), writer: new SparseWriter(fd), size: 0, copiedFrom, holding };
  }

  /** The content of a path left out, kept in the top directory (its first entry, which closes last) if it arrives intact. */
  private beginHolding(record: RestoreRecord): void {
    try {
      this.current = this.openTemporary(record, Buffer.concat([this.target, Buffer.from('/-')]), null, true);
    } catch {
      // The top directory refuses it too: a later path with this content says it cannot be copied.
    }
  }

  fileData(chunk: Buffer): void {
    const file = this.current;
    if (file === null) return; // being left out
    try {
      file.hash.update(chunk);
      file.writer.write(chunk, file.size);
      file.size += chunk.length;
    } catch (error) {
      this.abandon((error as Error).message);
    }
  }

  /** `length` zeros of the content, sent as their count: hashed, and left as a hole. */
  fileZeros(length: number): void {
    const file = this.current;
    if (file === null) return; // being left out
    hashZeros(file.hash, length);
    file.size += length;
  }

  /** The content is complete, or (`fed`) the feed could not give all of it. */
  fileEnd(fed?: FeedProblem): void {
    const file = this.current;
    if (file === null) return;
    const { record } = file;
    let verified = false;
    try {
      if (fed) {
        // Not remembered as damaged content: a missing tree entry says nothing about other paths with this content.
        if (fed.damaged) this.tally.damaged++;
        throw new Error(fed.text);
      }
      if (file.size !== record.size || file.hash.digest('hex') !== record.hash) {
        if (file.copiedFrom === null) throw this.damage(record);
        throw new Error(`its content was to be copied from ${file.copiedFrom.toString()}, restored earlier, which no longer matches SHA-256 ${record.hash}; left out`);
      }
      verified = true;
      file.writer.finish(file.size);
      if (file.holding) return this.abandon(null, true);
      const fd = file.fd!;
      // Owner before mode: chown clears the setuid and setgid bits.
      if (this.owners) fchownSync(fd, this.owners.uid(record), this.owners.gid(record));
      fchmodSync(fd, record.mode);
      const seconds = toSeconds(record.mtimeNs);
      futimesSync(fd, seconds, seconds);
      file.fd = null;
      closeSync(fd);
      atPath(file.destination, (path) => replace(beside(path, file.temporary), path));
      this.current = null;
      this.tally.files++;
      this.tally.bytes += file.size;
      if (record.grouped) this.links.copied(record, file.destination);
    } catch (error) {
      this.abandon((error as Error).message, verified);
    }
  }

  /** A file from a feed that can hand over its content as chunks (a local one). */
  file(record: RestoreRecord, content: Iterable<Buffer>, copiedFrom: Buffer | null = null): void {
    this.beginFile(record, copiedFrom);
    if (this.current === null) return; // left out: its content is not even read
    try {
      for (const chunk of content) {
        this.fileData(chunk);
        if (this.current === null) return; // left out midway: the rest is not read
      }
    } catch (error) {
      return this.fileEnd({ text: (error as Error).message, damaged: error instanceof DamagedContent });
    }
    this.fileEnd();
  }

  /**
   * A file whose content this restore already wrote at `earlier`: copied from there,
   * and checked against its hash again, so that the content crosses a wire once.
   */
  sameContent(record: RestoreRecord, earlier: Buffer): void {
    if (record.link && this.enter(record) && this.linked(record, this.destination(record.path))) return;
    if (this.damagedHashes.has(record.hash)) {
      if (this.enter(record)) this.fail(record.path, this.damage(record).message);
      return;
    }
    const from = this.held.get(earlier.toString('latin1')) ?? this.destination(earlier);
    let fd: number;
    try {
      fd = atPath(from, (path) => openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW));
    } catch (error) {
      if (this.enter(record)) this.fail(record.path, `its content was to be copied from ${earlier.toString()}, which cannot be read (${(error as Error).message}); left out`);
      return;
    }
    const buffer = this.buffer;
    function* chunks(): Generator<Buffer> {
      for (let n = readSync(fd, buffer, 0, COPY_CHUNK, null); n > 0; n = readSync(fd, buffer, 0, COPY_CHUNK, null)) yield buffer.subarray(0, n);
    }
    try {
      this.file(record, chunks(), earlier);
    } finally {
      closeSync(fd);
    }
  }

  /** Sets the metadata of the directories still open; the restore is over (`brokenOff`: its feed failed, which is said elsewhere). */
  finish(brokenOff = false): RestoreTally {
    if (this.current !== null) this.abandon(brokenOff ? null : 'its content ended early; left out');
    // Before the top directory's own metadata is set, which removing them would change.
    for (const held of this.held.values()) unlinkOrNone(held);
    this.closeDirectoriesBefore(null);
    return this.tally;
  }

  /**
   * Whether to write `record`: not under a refused directory, and directly inside the
   * directory being written. Closes the directories the record is not inside.
   */
  private enter(record: RestoreRecord): boolean {
    const path = record.path;
    this.closeDirectoriesBefore(path);
    if (this.refused !== null && isInside(path, this.refused)) return false;
    const parent = this.open[this.open.length - 1];
    const root = path.length === 0 && this.open.length === 0 && record.type === 'dir';
    if (root || (parent !== undefined && path.lastIndexOf(0x2f) === (parent.path.length === 0 ? -1 : parent.path.length))) return true;
    this.fail(path, 'it came before the directory holding it (out of manifest order); left out');
    return false;
  }

  /** Makes a member of a source hard-link group a link to its group's restored file, when there is one. */
  private linked(record: RestoreRecord, destination: Buffer): boolean {
    const temporary = beside(destination, Buffer.from(`.lb-restore-${process.pid}-${this.temporaries++}`));
    if (!this.links.link(record, temporary, (made) => replace(made, destination), (why) => this.fail(record.path, why))) return false;
    this.tally.files++;
    this.tally.bytes += record.size;
    return true;
  }

  private fail(path: Buffer, text: string): void {
    this.tally.problems++;
    this.problem(path, text);
  }

  private damage(record: RestoreRecord): Error {
    this.tally.damaged++;
    this.damagedHashes.add(record.hash);
    return new Error(`its content in the repository does not match its SHA-256 ${record.hash} (a damaged object); left out`);
  }

  /**
   * Leaves the file in progress out, the reason said (null: said already, when it began): its temporary
   * removed, or `keep` for a later copy.
   */
  private abandon(text: string | null, keep = false): void {
    const file = this.current!;
    this.current = null;
    try {
      if (file.fd !== null) closeSync(file.fd);
      file.fd = null;
      if (!keep || !this.hold(file)) atPath(file.destination, (path) => unlinkOrNone(beside(path, file.temporary)));
    } catch (error) {
      text = `${text ?? 'left out'} (and its temporary ${file.temporary.toString()} could not be removed: ${(error as Error).message})`;
    }
    if (text !== null && !file.holding) this.fail(file.record.path, text);
  }

  /** Moves an intact content that could not be put in place to the top directory, which closes last. */
  private hold(file: FileInProgress): boolean {
    const held = Buffer.concat([this.target, Buffer.from('/'), file.temporary]);
    try {
      atPath(file.destination, (path) => renameSync(beside(path, file.temporary), held));
    } catch {
      return false; // another filesystem mounted inside the target, say: a later copy says it cannot read it
    }
    this.held.set(file.record.path.toString('latin1'), held);
    return true;
  }

  private destination(path: Buffer): Buffer {
    return path.length === 0 ? this.target : Buffer.concat([this.target, Buffer.from('/'), path]);
  }

  private makeDirectory(record: RestoreRecord): void {
    atPath(this.destination(record.path), (path) => makeDirectoryAt(path));
    this.open.push(record);
  }

  private makeSymlink(record: RestoreRecord): void {
    const temporary = Buffer.from(`.lb-restore-${process.pid}-${this.temporaries++}`);
    atPath(this.destination(record.path), (path) => placeSymlink(record, path, beside(path, temporary), this.owners));
    this.tally.symlinks++;
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

  private closeDirectory(dir: RestoreRecord): void {
    try {
      atPath(this.destination(dir.path), (path) => setDirectoryMetadata(dir, path, this.owners));
      this.tally.directories++;
    } catch (error) {
      this.fail(dir.path, (error as Error).message);
    }
  }
}
