import Database from 'better-sqlite3';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { CorruptDatabase, type IntegrityCheck, checkIntegrity, isCorruption } from './integrity.js';

/**
 * How much an acknowledged write survives. `process`: the commit is in the WAL in the OS page cache
 * before the client is answered, so a crash of the process loses nothing. `power`: the WAL is also
 * fsynced at every commit, so a power loss loses nothing either (group commit keeps that affordable).
 */
export type Durability = 'process' | 'power';

export type Db = Database.Database;

/** The schema version this shim writes (SQLite's user_version); a newer database is refused. */
export const SCHEMA_VERSION = 2;

// One strict table per concept, indexed for exactly the queries the actions run (see each comment).
const SCHEMA = `
CREATE TABLE IF NOT EXISTS queues (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  fifo INTEGER NOT NULL,
  attributes TEXT NOT NULL,
  tags TEXT NOT NULL DEFAULT '{}',
  permissions TEXT NOT NULL DEFAULT '[]',
  created_at INTEGER NOT NULL,
  modified_at INTEGER NOT NULL,
  last_sequence INTEGER NOT NULL DEFAULT 0,
  -- PurgeQueue hides every message up to this row id at once; the sweeper deletes them after. It is
  -- also the queue's current epoch (see message_states.epoch).
  purged_through INTEGER NOT NULL DEFAULT 0,
  purged_at INTEGER NOT NULL DEFAULT 0
) STRICT;

-- A name deleted less than 60 s ago cannot be created again (QueueDeletedRecently).
CREATE TABLE IF NOT EXISTS deleted_queues (
  name TEXT PRIMARY KEY,
  deleted_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- A message is two rows. \`messages\` holds what never changes once it is stored (body, attributes,
-- ids), \`message_states\` what a receive or a visibility change rewrites, so that a receive writes a
-- row of tens of bytes and its index entries, never the body. A message state owns its message:
-- deleting the state deletes the message (trigger below).
-- Row ids only grow (AUTOINCREMENT): they give FIFO send order and the PurgeQueue cut-off.
CREATE TABLE IF NOT EXISTS messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL,
  body TEXT NOT NULL,
  body_md5 TEXT NOT NULL,
  attributes TEXT,
  attributes_md5 TEXT,
  trace_header TEXT,
  deduplication_id TEXT,
  sequence_number TEXT,
  dead_letter_source TEXT,
  sent_at INTEGER NOT NULL
) STRICT;
-- epoch: the queue's purged_through when the message was stored. PurgeQueue raises purged_through to
-- the last row id, so every message stored before it is of an older epoch: the indexes below lead
-- with the epoch, and a request looking at the current one never meets a purged message.
CREATE TABLE IF NOT EXISTS message_states (
  id INTEGER PRIMARY KEY,
  queue_id INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  group_id TEXT,
  enqueued_at INTEGER NOT NULL,
  visible_at INTEGER NOT NULL,
  receive_count INTEGER NOT NULL DEFAULT 0,
  first_received_at INTEGER,
  received_at INTEGER,
  receipt_nonce TEXT
) STRICT;
CREATE TRIGGER IF NOT EXISTS message_states_own_messages AFTER DELETE ON message_states BEGIN
  DELETE FROM messages WHERE id = old.id;
END;
-- Standard receive: the oldest visible messages of a queue. Long polls: when the next invisible one
-- shows. The counts read the messages that turn visible within the current second through it, and
-- the sweeper finds purged messages (older epochs) through it.
CREATE INDEX IF NOT EXISTS messages_by_visibility ON message_states (queue_id, epoch, visible_at, receive_count, enqueued_at);
-- FIFO receive: a group's messages in send order.
CREATE INDEX IF NOT EXISTS messages_by_group ON message_states (queue_id, group_id, epoch, id) WHERE group_id IS NOT NULL;
-- Retention: a message expires MessageRetentionPeriod after it was enqueued (in this queue, for FIFO
-- dead-letter queues; standard dead-letter queues keep the original time). It also finds the
-- expired messages the sweeper has yet to delete, for the counts.
CREATE INDEX IF NOT EXISTS messages_by_age ON message_states (queue_id, enqueued_at, epoch);

-- Messages the hybrid edge stored after a send the region may have taken (its answer never came):
-- no receive at the edge takes them (nor what follows them in a FIFO group) until the replay
-- releases them, so that the task never runs both at the edge and in the region.
CREATE TABLE IF NOT EXISTS replay_holds (
  id INTEGER PRIMARY KEY
) STRICT;
CREATE TRIGGER IF NOT EXISTS message_states_end_holds AFTER DELETE ON message_states BEGIN
  DELETE FROM replay_holds WHERE id = old.id;
END;

-- How many messages a queue holds in each epoch, kept by triggers on every insert and delete, so
-- that GetQueueAttributes need not count a backlog of millions.
CREATE TABLE IF NOT EXISTS message_totals (
  queue_id INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  total INTEGER NOT NULL,
  PRIMARY KEY (queue_id, epoch)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS messages_counted AFTER INSERT ON message_states BEGIN
  INSERT INTO message_totals (queue_id, epoch, total) VALUES (new.queue_id, new.epoch, 1)
  ON CONFLICT (queue_id, epoch) DO UPDATE SET total = total + 1;
END;
CREATE TRIGGER IF NOT EXISTS messages_uncounted AFTER DELETE ON message_states BEGIN
  UPDATE message_totals SET total = total - 1 WHERE queue_id = old.queue_id AND epoch = old.epoch;
  DELETE FROM message_totals WHERE queue_id = old.queue_id AND epoch = old.epoch AND total = 0;
END;

-- How many messages of a queue's epoch are invisible until each second, in flight (received before)
-- or delayed (never received), so that the counts of GetQueueAttributes sum a row per second to
-- come instead of counting messages. Only messages invisible when written are tallied (see
-- MessageStore.tally): a second in the past is never read again, and the sweeper drops its row.
CREATE TABLE IF NOT EXISTS invisible_tallies (
  queue_id INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  second INTEGER NOT NULL,
  in_flight INTEGER NOT NULL,
  delayed INTEGER NOT NULL,
  PRIMARY KEY (queue_id, epoch, second)
) STRICT, WITHOUT ROWID;

-- FIFO message groups that hold messages of the current epoch (a group whose messages are all
-- purged keeps an older epoch until a message is sent to it or the sweeper deletes them).
-- available_at: when the group can next be received from, the later of its first message's
-- visible_at (queue delay) and the end of the visibility timeout of its messages in flight (a group
-- is locked while any is in flight).
CREATE TABLE IF NOT EXISTS fifo_groups (
  queue_id INTEGER NOT NULL,
  group_id TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  available_at INTEGER NOT NULL,
  PRIMARY KEY (queue_id, group_id)
) STRICT, WITHOUT ROWID;
-- FIFO receive: the groups available now, longest available first, without looking at the others.
CREATE INDEX IF NOT EXISTS fifo_groups_by_availability ON fifo_groups (queue_id, epoch, available_at, group_id);

-- Deduplication ids seen in the last 5 minutes; scope is '' per queue, or the message group id.
CREATE TABLE IF NOT EXISTS deduplication (
  queue_id INTEGER NOT NULL,
  scope TEXT NOT NULL,
  deduplication_id TEXT NOT NULL,
  message_id TEXT NOT NULL,
  sequence_number TEXT,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (queue_id, scope, deduplication_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deduplication_by_expiry ON deduplication (expires_at);

-- FIFO ReceiveRequestAttemptId: a retried receive within 5 minutes gets the same messages back.
CREATE TABLE IF NOT EXISTS receive_attempts (
  queue_id INTEGER NOT NULL,
  attempt_id TEXT NOT NULL,
  message_ids TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (queue_id, attempt_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS receive_attempts_by_expiry ON receive_attempts (expires_at);

CREATE TABLE IF NOT EXISTS move_tasks (
  task_handle TEXT PRIMARY KEY,
  source_arn TEXT NOT NULL,
  destination_arn TEXT,
  max_per_second INTEGER,
  status TEXT NOT NULL,
  moved INTEGER NOT NULL DEFAULT 0,
  to_move INTEGER NOT NULL,
  failure_reason TEXT,
  started_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS move_tasks_by_source ON move_tasks (source_arn, started_at);
`;

export interface OpenOptions {
  /** The service's clock: upgrading a version-1 database tallies the messages still invisible by its time. */
  readonly clock?: () => number;
  /** What is checked before anything is written (quick by default); a corrupt database is refused. */
  readonly integrityCheck?: IntegrityCheck;
}

/** Opens (or creates) the store's database; throws CorruptDatabase for one that is damaged. */
export function openDatabase(file: string, durability: Durability, options: OpenOptions = {}): Db {
  // Private to the shim's user: the databases hold the messages.
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const db = new Database(file);
  try {
    refuseNewer(db, file, SCHEMA_VERSION);
    checkIntegrity(db, file, options.integrityCheck ?? 'quick');
    prepareDatabase(db, durability, options.clock ?? Date.now);
  } catch (error) {
    db.close();
    // A file that is no database at all, or damage the check was told not to look for, shows here.
    throw isCorruption(error) ? new CorruptDatabase(file, [(error as Error).message]) : error;
  }
  return db;
}

/**
 * A database that a newer holdfast wrote: its schema is one this binary does not know, and opening
 * it as its own (setting its user_version back, writing rows of the old shape) would damage it for
 * the newer one. It is left as it is.
 */
export class NewerDatabase extends Error {
  override readonly name = 'NewerDatabase';

  constructor(
    readonly file: string,
    readonly version: number,
    readonly known: number,
  ) {
    super(
      `the database ${file} has schema version ${version}, newer than this holdfast knows (${known}): a newer holdfast wrote it. ` +
        'Run that version again, or stop and restore the backup taken before the upgrade (README: Upgrade and rollback)',
    );
  }
}

/** Throws NewerDatabase when the database's user_version is above `known`; reads, writes nothing. */
export function refuseNewer(db: Db, file: string, known: number): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > known) throw new NewerDatabase(file, version, known);
}

/** As refuseNewer, for a database file that may not exist yet (then there is nothing to refuse). */
export function refuseNewerFile(file: string, known: number): void {
  if (!existsSync(file)) return;
  const db = new Database(file, { fileMustExist: true });
  try {
    refuseNewer(db, file, known);
  } finally {
    db.close();
  }
}

function prepareDatabase(db: Db, durability: Durability, clock: () => number): void {
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${durability === 'power' ? 'FULL' : 'NORMAL'}`);
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = OFF');
  // Reclaim the pages of deleted messages bit by bit instead of letting the file only grow.
  if (db.pragma('auto_vacuum', { simple: true }) !== 2) {
    db.pragma('auto_vacuum = INCREMENTAL');
    db.exec('VACUUM');
  }
  // 16 MiB of page cache: the hot pages are index tops and recent rows; more only costs memory.
  db.pragma('cache_size = -16384');
  // A WAL that checkpointed and started over is cut back to 4 MiB, not left at its high-water mark;
  // the storage guard counts those 4 MiB as the WAL's, so that a full disk still has room for the
  // writes that drain it.
  db.pragma('journal_size_limit = 4194304');
  db.pragma('temp_store = MEMORY');
  db.transaction(() => {
    const version = db.pragma('user_version', { simple: true }) as number;
    const legacy = version === 0 && db.prepare(`SELECT 1 FROM pragma_table_info('messages') WHERE name = 'visible_at'`).get() !== undefined;
    if (legacy) splitMessageStates(db, clock());
    else db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/**
 * Version 1 kept a message in one row, so every receive rewrote its body. Its `messages` table is
 * split into the two of version 2 in the transaction that opens the database; the highest row id
 * given so far carries over, since purges compare against it.
 */
function splitMessageStates(db: Db, now: number): void {
  db.exec(`
    ALTER TABLE messages RENAME TO messages_v1;
    DROP INDEX IF EXISTS messages_by_visibility;
    DROP INDEX IF EXISTS messages_by_group;
    DROP INDEX IF EXISTS messages_by_age;
    DROP TRIGGER IF EXISTS messages_counted;
    DROP TRIGGER IF EXISTS messages_uncounted;
  `);
  db.exec(SCHEMA);
  db.exec(`
    INSERT INTO messages (id, message_id, body, body_md5, attributes, attributes_md5, trace_header, deduplication_id, sequence_number, dead_letter_source, sent_at)
      SELECT id, message_id, body, body_md5, attributes, attributes_md5, trace_header, deduplication_id, sequence_number, dead_letter_source, sent_at FROM messages_v1;
    DELETE FROM message_totals;
    INSERT INTO message_states (id, queue_id, epoch, group_id, enqueued_at, visible_at, receive_count, first_received_at, received_at, receipt_nonce)
      SELECT id, queue_id, epoch, group_id, enqueued_at, visible_at, receive_count, first_received_at, received_at, receipt_nonce FROM messages_v1;
    DELETE FROM sqlite_sequence WHERE name = 'messages';
    UPDATE sqlite_sequence SET name = 'messages' WHERE name = 'messages_v1';
    DROP TABLE messages_v1;
  `);
  db.prepare(
    `INSERT INTO invisible_tallies (queue_id, epoch, second, in_flight, delayed)
     SELECT queue_id, epoch, visible_at / 1000, sum(receive_count > 0), sum(receive_count = 0) FROM message_states
     WHERE visible_at > ? GROUP BY queue_id, epoch, visible_at / 1000`,
  ).run(now);
}

/**
 * How SQLite runs each statement (EXPLAIN QUERY PLAN, one line per step), for checking that every
 * query a request runs is driven by an index. Parameters are bound to 0: plans do not depend on them.
 */
export function explainStatements(db: Db, statements: Record<string, Database.Statement>): Record<string, string[]> {
  const plans: Record<string, string[]> = {};
  for (const [name, statement] of Object.entries(statements)) {
    const explain = db.prepare<unknown[], { detail: string }>(`EXPLAIN QUERY PLAN ${statement.source}`);
    const named = [...statement.source.matchAll(/@(\w+)/g)].map((match) => match[1]!);
    const rows =
      named.length > 0
        ? explain.all(Object.fromEntries(named.map((parameter) => [parameter, 0])))
        : explain.all(...new Array<number>(statement.source.split('?').length - 1).fill(0));
    plans[name] = rows.map((row) => row.detail);
  }
  return plans;
}
