import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

/** Another shim (or another start in this process) serves the database: this one must not. */
export class DatabaseInUse extends Error {
  override readonly name = 'DatabaseInUse';

  constructor(
    readonly file: string,
    /** Who holds it, as it wrote itself down: pid, host and start time; undefined if that could not be read. */
    readonly holder: string | undefined,
  ) {
    super(
      `the database ${file} is in use by another edge shim (${holder ?? 'its process could not be told'}): ` +
        `two shims on one database lose messages and leases; stop the other one, or give this one its own --db`,
    );
  }
}

export interface DatabaseLock {
  /** Lets another shim take the database; after the database is closed. */
  release(): void;
}

const LOCK_WAIT_MS = 1000;

// Who holds the lock, for the message of a shim refused.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS holder (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  started_at TEXT NOT NULL
) STRICT;
`;

/**
 * Makes this process the one shim serving a database, for as long as it lives: `<db>.lock`, a
 * small SQLite database of its own whose write lock this process takes and keeps (BEGIN IMMEDIATE,
 * never committed). The lock is SQLite's own, an OS lock on the file (fcntl), so it is atomic,
 * the kernel drops it the moment the process dies however it dies (no stale lock to clean up),
 * and it holds wherever the same file is reached: from another container sharing the volume, under
 * another path (a bind mount, a symbolic link), and across the process's own connections. The
 * holder writes down who it is first, then takes the lock for good; a shim refused reads that
 * while the lock is held (a write lock lets others read).
 */
export function lockDatabase(file: string): DatabaseLock {
  if (file === ':memory:') return { release() {} };
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // Waiting a little lets a holder writing itself down, or a refused shim reading that, finish.
  const lock = new Database(`${file}.lock`, { timeout: LOCK_WAIT_MS });
  try {
    lock.exec('BEGIN IMMEDIATE');
    lock.exec(SCHEMA);
    lock.prepare('INSERT OR REPLACE INTO holder (id, pid, host, started_at) VALUES (1, ?, ?, ?)').run(process.pid, hostname(), new Date().toISOString());
    lock.exec('COMMIT');
    // Between the two, another shim may take the lock: then it is the holder, and this one is refused.
    lock.exec('BEGIN IMMEDIATE');
  } catch (error) {
    const busy = (error as { code?: unknown }).code === 'SQLITE_BUSY';
    const holder = busy ? readHolder(lock) : undefined;
    lock.close();
    throw busy ? new DatabaseInUse(file, holder) : error;
  }
  return {
    release() {
      lock.exec('ROLLBACK');
      lock.close();
    },
  };
}

function readHolder(lock: Database.Database): string | undefined {
  try {
    if (lock.inTransaction) lock.exec('ROLLBACK');
    const row = lock.prepare<[], { pid: number; host: string; started_at: string }>('SELECT pid, host, started_at FROM holder').get();
    return row && `pid ${row.pid} on ${row.host}, started ${row.started_at}`;
  } catch {
    return undefined;
  }
}
