// The local catalog: caches of file hashes, and the history of runs. Deleting
// it loses no data, only time. Two caches, one table each: SHA-256 (content
// identity, for backups) and xxh64 (grouping candidates in `lb dedupe`). Both
// are keyed by (device, directory inode, inode) and valid while size, mtime and
// ctime match: one range scan serves a whole directory listing, and a moved
// directory keeps its inode.
//
// Several runs (on other repositories, or a dedupe) may share one catalog at
// once: WAL lets readers go on beside a writer, and writes are queued in memory
// and committed in short transactions (by count and by time), so the write lock
// is held for milliseconds, never while this run waits for anything else.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { homedir } from 'node:os';
import { DirectoryRows } from './directory-rows.js';
import { ForeignCatalogError, NewerCatalogError, fileIdentity, isDamage, moveAside, type FileIdentity } from './damage.js';

const SCHEMA_VERSION = 3;

/** Another run commits in milliseconds: waiting longer than this means something else holds the catalog. */
const BUSY_TIMEOUT_MS = 10_000;
/** Commit queued writes once this many wait: one transaction per file would dominate a large first run. */
const BATCH = 2000;
/** …and at least this often, so that a killed run loses little. */
const COMMIT_EVERY_MS = 1000;

/** What the catalog needs of a stat: bigint fields as node:fs gives them with { bigint: true }. */
export interface StatKey {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** One directory's cached hashes, as the walk asks them (scan/hash.ts names the same shape). */
export interface DirectoryHashes {
  lookup(file: StatKey): string | undefined;
  finish(): void;
}

export interface RunRecord {
  source: string;
  repository: string;
  snapshot: string | null;
  startedAt: string;
  seconds: number;
  newFiles: number;
  copiedFiles: number;
  linkedFiles: number;
  bytesTransferred: number;
  status: string;
}

export function defaultCatalogPath(): string {
  const state = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(state, 'lb', 'catalog.sqlite');
}

const OUR_TABLES = new Set(['hashes', 'fast_hashes', 'runs']);

interface Write {
  statement: Database.Statement<unknown[]>;
  args: unknown[];
}

/** One hash cache: a table of (dev, dir_ino, ino, size, mtime_ns, ctime_ns, hash). Never throws: see Catalog.guard. */
export class HashTable {
  private readonly selectDirectory: Database.Statement<[bigint, bigint], [bigint, bigint, bigint, bigint, Buffer]>;
  private readonly countDirectory: Database.Statement<[bigint, bigint], bigint>;
  private readonly upsert: Database.Statement<unknown[]>;
  private readonly forget: Database.Statement<unknown[]>;

  constructor(
    db: Database.Database,
    table: 'hashes' | 'fast_hashes',
    private readonly catalog: Catalog,
  ) {
    // Rows as arrays, in key order: DirectoryRows finds an inode by bisection.
    this.selectDirectory = db
      .prepare<[bigint, bigint], [bigint, bigint, bigint, bigint, Buffer]>(`SELECT ino, size, mtime_ns, ctime_ns, hash FROM ${table} WHERE dev = ? AND dir_ino = ? ORDER BY ino`)
      .raw(true);
    this.countDirectory = db.prepare<[bigint, bigint], bigint>(`SELECT count(*) FROM ${table} WHERE dev = ? AND dir_ino = ?`).pluck(true);
    this.upsert = db.prepare(`INSERT OR REPLACE INTO ${table} (dev, dir_ino, ino, size, mtime_ns, ctime_ns, hash) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    this.forget = db.prepare(`DELETE FROM ${table} WHERE dev = ? AND dir_ino = ? AND ino = ?`);
  }

  /**
   * One directory's cached hashes, its files then looked up one at a time as the walk meets them (a file
   * whose size, mtime or ctime changed has none); `finish`, once every file was met, drops the rows of files gone from it.
   */
  directory(directory: StatKey): DirectoryHashes {
    const rows = new DirectoryRows(this.catalog.guard(0, () => Number(this.countDirectory.get(directory.dev, directory.ino))));
    this.catalog.guard(undefined, () => {
      for (const [ino, size, mtime, ctime, hash] of this.selectDirectory.iterate(directory.dev, directory.ino)) rows.add(ino, size, mtime, ctime, hash);
    });
    return {
      lookup: (file) => rows.lookup(file),
      finish: () => {
        for (const ino of rows.unmet()) this.catalog.queue(this.forget, [directory.dev, directory.ino, ino]);
      },
    };
  }

  remember(directoryInode: bigint, stat: StatKey, hash: string): void {
    this.catalog.queue(this.upsert, [stat.dev, directoryInode, stat.ino, stat.size, stat.mtimeNs, stat.ctimeNs, Buffer.from(hash, 'hex')]);
  }
}

export class Catalog {
  private readonly db: Database.Database;
  /** SHA-256 of file contents: what backups trust as content identity. */
  readonly contentHashes: HashTable;
  /** xxh64 of file contents: only for grouping dedupe candidates, always confirmed byte by byte. */
  readonly fastHashes: HashTable;
  private readonly pending: Write[] = [];
  private readonly applyWrites: Database.Transaction<(writes: Write[]) => void>;
  private readonly timer: NodeJS.Timeout;
  /** The file opened, so that only it is ever moved aside (another run may have replaced it since). */
  private readonly identity: FileIdentity | null;
  /** Switched off after a failure: lookups miss and writes are dropped for the rest of the run. */
  private off = false;

  /**
   * Opens (creating if needed) the catalog at `path`; throws if it cannot be used.
   * `onFailure` hears, once, that it failed later and was switched off.
   */
  constructor(
    readonly path: string,
    private readonly onFailure: (message: string) => void,
  ) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    try {
      this.db.defaultSafeIntegers(true);
      // Before anything is written to it (switching to WAL is a write): another program's database stays as it is.
      this.checkOwnership();
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = NORMAL');
      this.migrate();
      this.contentHashes = new HashTable(this.db, 'hashes', this);
      this.fastHashes = new HashTable(this.db, 'fast_hashes', this);
      this.applyWrites = this.db.transaction((writes: Write[]) => {
        for (const w of writes) w.statement.run(...w.args);
      });
    } catch (error) {
      this.db.close();
      throw error;
    }
    this.identity = fileIdentity(path);
    this.timer = setInterval(() => this.commit(), COMMIT_EVERY_MS).unref();
  }

  private version(): number {
    return Number(this.db.pragma('user_version', { simple: true }));
  }

  private checkOwnership(): void {
    const version = this.version();
    if (version > SCHEMA_VERSION) throw new NewerCatalogError('it was written by a newer lb; use --catalog to point elsewhere');
    if (version !== 0) return;
    const tables = this.db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).pluck().all() as string[];
    const foreign = tables.find((name) => !OUR_TABLES.has(name));
    if (foreign !== undefined) throw new ForeignCatalogError(`it is a database lb did not make: it holds a table ${foreign}`);
  }

  private migrate(): void {
    if (this.version() === SCHEMA_VERSION) return;
    // Under the write lock, and checked again there: two runs creating one catalog at once build it once.
    this.db
      .transaction(() => {
        this.checkOwnership();
        if (this.version() !== SCHEMA_VERSION) this.createTables();
      })
      .immediate();
  }

  /** Older versions keyed hashes differently or named columns otherwise; being caches, their rows are simply dropped. */
  private createTables(): void {
    const table = (name: string) => `
      DROP TABLE IF EXISTS ${name};
      CREATE TABLE ${name} (
        dev INTEGER NOT NULL, dir_ino INTEGER NOT NULL, ino INTEGER NOT NULL,
        size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (dev, dir_ino, ino)
      ) WITHOUT ROWID;`;
    this.db.exec(`
      ${table('hashes')}
      ${table('fast_hashes')}
      CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL, repository TEXT NOT NULL, snapshot TEXT,
        started_at TEXT NOT NULL, seconds REAL NOT NULL,
        new_files INTEGER NOT NULL, copied_files INTEGER NOT NULL, linked_files INTEGER NOT NULL,
        bytes_transferred INTEGER NOT NULL, status TEXT NOT NULL
      );
      PRAGMA user_version = ${SCHEMA_VERSION};
    `);
  }

  /**
   * Runs one catalog operation. The catalog is a cache, so its failure (busy past
   * the timeout, damaged, disk full) is never the run's: it is said once, the
   * catalog is switched off for the rest of the run, and `fallback` stands in.
   */
  guard<T>(fallback: T, operation: () => T): T {
    if (this.off) return fallback;
    try {
      return operation();
    } catch (error) {
      this.switchOff(error);
      return fallback;
    }
  }

  queue(statement: Database.Statement<unknown[]>, args: unknown[]): void {
    if (this.off) return;
    this.pending.push({ statement, args });
    if (this.pending.length >= BATCH) this.commit();
  }

  /** Writes what is queued in one short transaction, taking the write lock only for it. */
  private commit(): void {
    if (this.pending.length === 0) return;
    this.guard(undefined, () => this.applyWrites.immediate(this.pending.splice(0)));
  }

  private switchOff(error: unknown): void {
    this.off = true;
    this.pending.length = 0;
    clearInterval(this.timer);
    try {
      this.db.close();
    } catch {
      // Already failing; what matters is that this run stops using it.
    }
    let fate = 'going on without it';
    if (isDamage(error)) {
      try {
        const aside = moveAside(this.path, this.identity);
        if (aside) fate += `; moved it aside to ${aside}, the next run starts a fresh one`;
      } catch (moving) {
        fate += `; it cannot be moved aside (${(moving as Error).message}): delete it`;
      }
    }
    this.onFailure(`catalog ${this.path} unusable mid-run: ${(error as Error).message}; ${fate}`);
  }

  recordRun(run: RunRecord): void {
    this.commit();
    this.guard(undefined, () =>
      this.db
        .prepare(
          `INSERT INTO runs (source, repository, snapshot, started_at, seconds, new_files, copied_files, linked_files, bytes_transferred, status)
           VALUES (@source, @repository, @snapshot, @startedAt, @seconds, @newFiles, @copiedFiles, @linkedFiles, @bytesTransferred, @status)`,
        )
        .run(run),
    );
  }

  /** Commits what is queued and closes; never throws (a failure is told as any other). */
  close(): void {
    this.commit();
    clearInterval(this.timer);
    this.guard(undefined, () => this.db.close());
    this.off = true;
  }
}
