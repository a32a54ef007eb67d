import { PostgresCheckpoints } from '../runtime/store/postgres-checkpoints.js';
import { type PostgresDatabase, RUNTIME_SCHEMA, type VersionedSchema, migrate, transaction } from '../runtime/store/postgres-database.js';
import { STEP_COLUMNS } from '../runtime/store/postgres-step-log.js';
import type { WriterCount } from '../runtime/store/types.js';
import { type ConflictRow, type ConflictSighting, type EdgeRows, type JournalRows, type SyncKind, SyncPersistenceLayer } from './sync-persistence.js';

/**
 * The sync's own tables beside the runtime stores' (what reached each target, and the conflicts),
 * one migration per version; released migrations are never edited.
 */
export const SYNC_SCHEMA: VersionedSchema = {
  name: 'edge sync',
  versionTable: 'sync_schema_version',
  lock: 0x53796e63, // "Sync"
  migrations: [
    `
    CREATE TABLE sync_done (
      target text NOT NULL,
      kind text NOT NULL,
      record_key text NOT NULL,
      fingerprint text NOT NULL,
      PRIMARY KEY (target, kind, record_key)
    );
    -- Per checkpoint key: the region version whose content the edge's latest snapshot had at the last sync.
    CREATE TABLE sync_checkpoint_base (
      target text NOT NULL,
      key text NOT NULL,
      region_version bigint NOT NULL,
      PRIMARY KEY (target, key)
    );
    CREATE TABLE sync_conflict (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      target text NOT NULL,
      kind text NOT NULL,
      record_key text NOT NULL,
      reason text NOT NULL,
      edge text NOT NULL,
      region text NOT NULL,
      first_seen_at text NOT NULL,
      last_seen_at text NOT NULL,
      -- Set when a later sync found the record no longer in conflict (resolved in the region).
      resolved_at text
    );
    -- One row per pair of versions met, told apart by their hashes: a record may be longer than an index entry can be.
    CREATE UNIQUE INDEX sync_conflict_versions ON sync_conflict (target, kind, record_key, md5(edge), md5(region));
    `,
  ],
};

/** The advisory lock a sync holds while it runs. */
const SYNC_LOCK = 0x53796e52; // "SynR"

// Pools whose database this process brought to the schemas already (or is bringing): once is enough.
const migrated = new WeakMap<PostgresDatabase, Promise<void>>();

/** The sync's reads and bookkeeping in a PostgreSQL edge database. */
export class PostgresSyncPersistence extends SyncPersistenceLayer {
  readonly checkpoints: PostgresCheckpoints;

  private constructor(private readonly db: PostgresDatabase) {
    super();
    this.checkpoints = new PostgresCheckpoints(db);
  }

  /** The layer on a pool, its database first brought to the runtime's schema and the sync's. */
  static async on(db: PostgresDatabase): Promise<PostgresSyncPersistence> {
    let migrating = migrated.get(db);
    if (!migrating) {
      migrating = migrate(db, RUNTIME_SCHEMA).then(() => migrate(db, SYNC_SCHEMA));
      migrated.set(db, migrating);
      // A failure (the server unreachable) is not remembered: the next use tries again.
      migrating.catch(() => migrated.delete(db));
    }
    await migrating;
    return new PostgresSyncPersistence(db);
  }

  async settle(counts: readonly WriterCount[]): Promise<void> {
    await this.db.query(
      `UPDATE counter SET settled = GREATEST(counter.settled, given.count)
       FROM unnest($1::text[], $2::text[], $3::bigint[]) AS given (key, writer, count)
       WHERE counter.key = given.key AND counter.writer = given.writer`,
      [counts.map((count) => count.key), counts.map((count) => count.writer), counts.map((count) => count.count)],
    );
  }

  /**
   * Under a session advisory lock: when the region returns, every node of the site syncs, and each
   * one after the first finds everything done (rather than merging the same checkpoints at once).
   */
  async oneAtATime<T>(sync: () => Promise<T>): Promise<T> {
    const client = await this.db.connect();
    // Idle for the whole sync: a connection lost meanwhile is told as an error event, which unheard would end the process.
    client.on('error', () => {});
    try {
      await client.query('SELECT pg_advisory_lock($1)', [SYNC_LOCK]);
      return await sync();
    } finally {
      // Closed rather than given back: the server releases the lock with the session, whatever its state.
      client.release(true);
    }
  }

  protected async readEdgeRows(): Promise<EdgeRows> {
    // One snapshot: every table as it stood at one moment, whatever agents of other nodes write meanwhile.
    return transaction(this.db, async (client) => {
      await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const rows = async <T extends object>(sql: string) => (await client.query<T>(sql)).rows;
      return {
        sagas: await rows<EdgeRows['sagas'][number]>('SELECT workflow_id, workflow, status, input FROM saga ORDER BY created_at, workflow_id'),
        steps: await rows<EdgeRows['steps'][number]>(`SELECT workflow_id, ${STEP_COLUMNS} FROM step ORDER BY workflow_id, step_index`),
        idempotency: await rows<EdgeRows['idempotency'][number]>('SELECT id, status, expiration, in_progress_expiration, data, validation FROM idempotency ORDER BY id'),
        checkpointKeys: (await rows<{ key: string }>('SELECT DISTINCT key FROM checkpoint ORDER BY key')).map((row) => row.key),
        writerCounts: await rows<WriterCount>('SELECT key, writer, count FROM counter ORDER BY key, writer'),
        counterOperations: await rows<EdgeRows['counterOperations'][number]>('SELECT operation_id, writer, increments, at FROM counter_operation ORDER BY at, operation_id'),
      };
    });
  }

  protected async readJournal(target: string): Promise<JournalRows> {
    return transaction(this.db, async (client) => {
      await client.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      return {
        done: (await client.query<JournalRows['done'][number]>('SELECT kind, record_key, fingerprint FROM sync_done WHERE target = $1', [target])).rows,
        conflicts: (
          await client.query<JournalRows['conflicts'][number]>('SELECT DISTINCT kind, record_key FROM sync_conflict WHERE target = $1 AND resolved_at IS NULL', [target])
        ).rows,
        checkpointBases: (await client.query<JournalRows['checkpointBases'][number]>('SELECT key, region_version FROM sync_checkpoint_base WHERE target = $1', [target]))
          .rows,
      };
    });
  }

  protected async writeDone(target: string, kind: SyncKind, key: string, fingerprint: string, at: string): Promise<void> {
    await transaction(this.db, async (client) => {
      await client.query(
        `INSERT INTO sync_done (target, kind, record_key, fingerprint) VALUES ($1, $2, $3, $4)
         ON CONFLICT (target, kind, record_key) DO UPDATE SET fingerprint = excluded.fingerprint`,
        [target, kind, key, fingerprint],
      );
      await client.query('UPDATE sync_conflict SET resolved_at = $1 WHERE target = $2 AND kind = $3 AND record_key = $4 AND resolved_at IS NULL', [at, target, kind, key]);
    });
  }

  protected async writeConflict(sighting: ConflictSighting): Promise<ConflictRow> {
    const { rows } = await this.db.query<ConflictRow>(
      `INSERT INTO sync_conflict (target, kind, record_key, reason, edge, region, first_seen_at, last_seen_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
       ON CONFLICT (target, kind, record_key, md5(edge), md5(region)) DO UPDATE SET last_seen_at = excluded.last_seen_at, reason = excluded.reason, resolved_at = NULL
       RETURNING *`,
      [sighting.target, sighting.kind, sighting.record_key, sighting.reason, sighting.edge, sighting.region, sighting.at],
    );
    return rows[0]!;
  }

  protected async writeCheckpointBase(target: string, key: string, regionVersion: number): Promise<void> {
    await this.db.query(
      `INSERT INTO sync_checkpoint_base (target, key, region_version) VALUES ($1, $2, $3)
       ON CONFLICT (target, key) DO UPDATE SET region_version = excluded.region_version`,
      [target, key, regionVersion],
    );
  }

  protected async readConflicts(includeResolved: boolean): Promise<ConflictRow[]> {
    return (await this.db.query<ConflictRow>(`SELECT * FROM sync_conflict ${includeResolved ? '' : 'WHERE resolved_at IS NULL'} ORDER BY id`)).rows;
  }
}
