// The local catalog: caches of file hashes, and the history of runs. Deleting
// it loses no data, only time. Two caches, one table each: SHA-256 (content
// identity, for backups) and xxh64 (grouping candidates in `lb dedupe`). Both
// are keyed by (device, directory inode, inode) and valid while size, mtime and
// ctime match: one range scan serves a whole directory listing, and a moved
// directory keeps its inode.
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { homedir } from 'node:os';

const SCHEMA_VERSION = 3;

/** What the catalog needs of a stat: bigint fields as node:fs gives them with { bigint: true }. */
export interface StatKey {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
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

/** Commit cached hashes in batches: one transaction per file would dominate a large first run. */
const BATCH = 2000;

/** One hash cache: a table of (dev, dir_ino, ino, size, mtime_ns, ctime_ns, hash). */
export class HashTable {
  private readonly selectDirectory: Database.Statement<[bigint, bigint], { ino: bigint; size: bigint; mtime_ns: bigint; ctime_ns: bigint; hash: Buffer }>;
  private readonly upsert: Database.Statement<[bigint, bigint, bigint, bigint, bigint, bigint, Buffer]>;
  private readonly forget: Database.Statement<[bigint, bigint, bigint]>;

  constructor(
    db: Database.Database,
    table: 'hashes' | 'fast_hashes',
    private readonly written: () => void,
  ) {
    this.selectDirectory = db.prepare(`SELECT ino, size, mtime_ns, ctime_ns, hash FROM ${table} WHERE dev = ? AND dir_ino = ?`);
    this.upsert = db.prepare(`INSERT OR REPLACE INTO ${table} (dev, dir_ino, ino, size, mtime_ns, ctime_ns, hash) VALUES (?, ?, ?, ?, ?, ?, ?)`);
    this.forget = db.prepare(`DELETE FROM ${table} WHERE dev = ? AND dir_ino = ? AND ino = ?`);
  }

  /** Hashes (hex) for one directory's files whose cached stat still matches; rows of files gone from it are dropped. */
  lookupDirectory(directory: StatKey, files: StatKey[]): (string | undefined)[] {
    const rows = new Map<bigint, { size: bigint; mtime_ns: bigint; ctime_ns: bigint; hash: Buffer }>();
    for (const row of this.selectDirectory.all(directory.dev, directory.ino)) rows.set(row.ino, row);
    if (rows.size === 0) return files.map(() => undefined);
    const present = new Set<bigint>();
    const hashes = files.map((f) => {
      present.add(f.ino);
      const row = rows.get(f.ino);
      if (!row || row.size !== f.size || row.mtime_ns !== f.mtimeNs || row.ctime_ns !== f.ctimeNs) return undefined;
      return row.hash.toString('hex');
    });
    for (const ino of rows.keys()) if (!present.has(ino)) this.forget.run(directory.dev, directory.ino, ino);
    return hashes;
  }

  remember(directoryInode: bigint, stat: StatKey, hash: string): void {
    this.upsert.run(stat.dev, directoryInode, stat.ino, stat.size, stat.mtimeNs, stat.ctimeNs, Buffer.from(hash, 'hex'));
    this.written();
  }
}

export class Catalog {
  private readonly db: Database.Database;
  /** SHA-256 of file contents: what backups trust as content identity. */
  readonly contentHashes: HashTable;
  /** xxh64 of file contents: only for grouping dedupe candidates, always confirmed byte by byte. */
  readonly fastHashes: HashTable;
  private pending = 0;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.defaultSafeIntegers(true);
    this.migrate();
    const written = () => {
      if (++this.pending >= BATCH) this.commit();
    };
    this.contentHashes = new HashTable(this.db, 'hashes', written);
    this.fastHashes = new HashTable(this.db, 'fast_hashes', written);
    this.db.exec('BEGIN');
  }

  private migrate(): void {
    const version = Number(this.db.pragma('user_version', { simple: true }));
    if (version === SCHEMA_VERSION) return;
    if (version > SCHEMA_VERSION) throw new Error('the catalog was written by a newer lb; use --catalog to point elsewhere');
    // Older versions keyed hashes differently or named columns otherwise; being caches, their rows are simply dropped.
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

  private commit(): void {
    this.db.exec('COMMIT');
    this.db.exec('BEGIN');
    this.pending = 0;
  }

  recordRun(run: RunRecord): void {
    this.db
      .prepare(
        `INSERT INTO runs (source, repository, snapshot, started_at, seconds, new_files, copied_files, linked_files, bytes_transferred, status)
         VALUES (@source, @repository, @snapshot, @startedAt, @seconds, @newFiles, @copiedFiles, @linkedFiles, @bytesTransferred, @status)`,
      )
      .run(run);
  }

  close(): void {
    this.db.exec('COMMIT');
    this.db.close();
  }
}
