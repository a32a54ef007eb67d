import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

export type EdgeDatabase = Database.Database;

/** The edge database's schema version this runtime writes; the shim refuses a newer one at start. */
export const EDGE_SCHEMA_VERSION = 1;
const SCHEMA_VERSION = EDGE_SCHEMA_VERSION;

/**
 * The edge's own database: what agents running at an edge site keep (step log, idempotency records,
 * checkpoints, counters) and what the sync engine keeps about bringing it to the region. Tables
 * mirror the region's records; each write is a transaction with the conditions of the region's
 * conditional write.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS saga (
  workflow_id TEXT PRIMARY KEY,
  workflow TEXT NOT NULL,
  status TEXT NOT NULL,
  input TEXT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS step (
  workflow_id TEXT NOT NULL,
  step_index INTEGER NOT NULL,
  step TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  compensation_attempts INTEGER NOT NULL DEFAULT 0,
  result TEXT,
  error TEXT,
  ran_at TEXT,
  compensated_at TEXT,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (workflow_id, step_index)
) STRICT;
CREATE TABLE IF NOT EXISTS idempotency (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  expiration REAL,
  in_progress_expiration REAL,
  data TEXT,
  validation TEXT
) STRICT;
CREATE TABLE IF NOT EXISTS checkpoint (
  key TEXT NOT NULL,
  version INTEGER NOT NULL,
  state TEXT NOT NULL,
  sha256 TEXT NOT NULL,
  writer TEXT NOT NULL,
  base_version INTEGER NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (key, version)
) STRICT;
CREATE TABLE IF NOT EXISTS counter (
  key TEXT NOT NULL,
  writer TEXT NOT NULL,
  count INTEGER NOT NULL,
  -- The writer's count when it last settled (its counts reached the region): limits apply to count - settled.
  settled INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (key, writer)
) STRICT;
CREATE TABLE IF NOT EXISTS counter_operation (
  operation_id TEXT PRIMARY KEY,
  writer TEXT NOT NULL,
  increments TEXT NOT NULL,
  at TEXT NOT NULL
) STRICT;
-- Sync bookkeeping (edge/sync.ts), per target (the region's endpoint and tables): what reached
-- it, as which content.
CREATE TABLE IF NOT EXISTS sync_done (
  target TEXT NOT NULL,
  kind TEXT NOT NULL,
  record_key TEXT NOT NULL,
  fingerprint TEXT NOT NULL,
  PRIMARY KEY (target, kind, record_key)
) STRICT;
-- Per checkpoint key: the region version whose content the edge's latest snapshot had at the last sync.
CREATE TABLE IF NOT EXISTS sync_checkpoint_base (
  target TEXT NOT NULL,
  key TEXT NOT NULL,
  region_version INTEGER NOT NULL,
  PRIMARY KEY (target, key)
) STRICT;
CREATE TABLE IF NOT EXISTS sync_conflict (
  id INTEGER PRIMARY KEY,
  target TEXT NOT NULL,
  kind TEXT NOT NULL,
  record_key TEXT NOT NULL,
  reason TEXT NOT NULL,
  edge TEXT NOT NULL,
  region TEXT NOT NULL,
  first_seen_at TEXT NOT NULL,
  last_seen_at TEXT NOT NULL,
  -- Set when a later sync found the record no longer in conflict (resolved in the region).
  resolved_at TEXT,
  UNIQUE (target, kind, record_key, edge, region)
) STRICT;
`;

/**
 * Opens (creating if needed) an edge database file in WAL mode. Several processes may open it at
 * once (one per fallback agent, and the shim's sync): writers take the lock at the start of their
 * transaction and wait up to 5 s for it. Every commit is synced to disk (synchronous = FULL): what an
 * edge agent recorded about a payment must survive a power cut as the shim's acknowledged messages do.
 */
export function openEdgeDatabase(file: string): EdgeDatabase {
  // Private to its user: the database holds payments and their steps.
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file, { timeout: 5_000 });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) throw new Error(`edge database ${file} has schema version ${version}; this runtime knows up to ${SCHEMA_VERSION}`);
    if (version < SCHEMA_VERSION) {
      db.transaction(() => {
        db.exec(SCHEMA);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }).immediate();
    }
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}
