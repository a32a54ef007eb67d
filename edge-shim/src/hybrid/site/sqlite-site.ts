import type { Db } from '../../sqs/database.js';
import type { SqliteEngine } from '../../sqs/sqlite-engine.js';
import type { EdgeMode } from '../../observability/status.js';
import type { Lease, MirrorRow, MirrorRows, QueueView, ReplayLedger, SiteNode, SiteStore } from './ports.js';

// The mirror's rows. Messages the replay took and has not handed to the region yet: after a crash
// they are made visible again at start, instead of waiting out their visibility timeout; a message
// deleted (handed over, purged, expired) ends its lease. Messages the replay sent without learning
// whether the region took them (no answer, a server error), since when: sent again, the region's
// deduplication drops the twin only within 5 minutes.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS upstream_queues (
  name TEXT PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('linked', 'pending', 'declared')),
  upstream_path TEXT,
  attributes TEXT NOT NULL DEFAULT '{}',
  mirrored_at INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS replay_leases (
  id INTEGER PRIMARY KEY
) STRICT;
CREATE TRIGGER IF NOT EXISTS message_states_end_leases AFTER DELETE ON message_states BEGIN
  DELETE FROM replay_leases WHERE id = old.id;
END;
CREATE TABLE IF NOT EXISTS replay_attempts (
  id INTEGER PRIMARY KEY,
  first_unanswered_at INTEGER NOT NULL
) STRICT;
CREATE TRIGGER IF NOT EXISTS message_states_end_attempts AFTER DELETE ON message_states BEGIN
  DELETE FROM replay_attempts WHERE id = old.id;
END;
`;

const ALWAYS_HELD: Lease = { held: true, onChange: () => {} };

/** The hybrid edge's store on SQLite: one node, whose view of the queues is the engine's memory. */
export function sqliteSite(engine: SqliteEngine, nodeName: string, clock: () => number): SiteStore {
  const db = engine.storage.db;
  db.exec(SCHEMA);
  const statements = prepare(db);
  const view: QueueView = {
    get accountId() {
      return engine.queues.accountId;
    },
    arnOf: (name) => engine.queues.arnOf(name),
    queue: (name) => engine.queues.byName(name),
    queues: () => engine.queues.all(),
    storedMessages: (name) => engine.storedMessages(name),
    holdsMessagesNow: async (name) => engine.storedMessages(name) > 0,
    counts: (name) => engine.counts(name),
    oldestMessageAt: (name) => engine.oldestMessageAt(name),
    refresh: async () => {},
    stored: () => {},
  };
  const mirrorRows: MirrorRows = {
    all: async () => statements.mirrorAll.all(),
    save: async (row) => void statements.mirrorSave.run(row),
    forget: async (name) => void statements.mirrorForget.run(name),
  };
  // Within a transaction of the engine, whose statements answer at once.
  const ledger: ReplayLedger = {
    lease: (id) => void statements.lease.run(id),
    attempt: (id) => {
      const row = statements.attempt.get({ id })!;
      return { unansweredAt: row.unansweredAt ?? undefined, held: row.held === 1 };
    },
    unanswered: (id, now) => void statements.unanswered.run(id, now),
    leased: () => statements.leased.all().map((row) => row.id),
    clearLeases: () => void statements.clearLeases.run(),
  };
  return {
    shared: false,
    nodeName,
    view,
    mirrorRows,
    // The statements run on the engine's database, inside whichever transaction calls them.
    ledger: () => ledger,
    replayLease: ALWAYS_HELD,
    heartbeat: async (mode: EdgeMode): Promise<readonly SiteNode[]> => [{ name: nodeName, mode, replays: true, seenAt: clock() }],
    close: async () => {},
  };
}

function prepare(db: Db) {
  return {
    mirrorAll: db.prepare<[], MirrorRow>('SELECT * FROM upstream_queues'),
    mirrorSave: db.prepare<[MirrorRow]>(
      `INSERT INTO upstream_queues (name, state, upstream_path, attributes, mirrored_at) VALUES (@name, @state, @upstream_path, @attributes, @mirrored_at)
       ON CONFLICT (name) DO UPDATE SET state = @state, upstream_path = @upstream_path, attributes = @attributes, mirrored_at = @mirrored_at`,
    ),
    mirrorForget: db.prepare('DELETE FROM upstream_queues WHERE name = ?'),
    lease: db.prepare('INSERT OR IGNORE INTO replay_leases (id) VALUES (?)'),
    leased: db.prepare<[], { id: number }>('SELECT id FROM replay_leases'),
    clearLeases: db.prepare('DELETE FROM replay_leases'),
    attempt: db.prepare<{ id: number }, { unansweredAt: number | null; held: number | null }>(
      'SELECT (SELECT first_unanswered_at FROM replay_attempts WHERE id = @id) AS unansweredAt, (SELECT 1 FROM replay_holds WHERE id = @id) AS held',
    ),
    unanswered: db.prepare('INSERT OR IGNORE INTO replay_attempts (id, first_unanswered_at) VALUES (?, ?)'),
  };
}
