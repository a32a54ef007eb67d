import { SqliteCheckpoints } from '../runtime/store/sqlite-checkpoints.js';
import type { EdgeDatabase } from '../runtime/store/sqlite-database.js';
import type { WriterCount } from '../runtime/store/types.js';
import { type ConflictRow, type ConflictSighting, type EdgeRows, type JournalRows, type SyncKind, SyncPersistenceLayer } from './sync-persistence.js';

/** The sync's reads and bookkeeping in an SQLite edge database (its tables: sqlite-database.ts). */
export class SqliteSyncPersistence extends SyncPersistenceLayer {
  readonly checkpoints: SqliteCheckpoints;

  constructor(private readonly db: EdgeDatabase) {
    super();
    this.checkpoints = new SqliteCheckpoints(db);
  }

  async settle(counts: readonly WriterCount[]): Promise<void> {
    const settle = this.db.prepare('UPDATE counter SET settled = MAX(settled, ?) WHERE key = ? AND writer = ?');
    this.db.transaction(() => {
      for (const { key, writer, count } of counts) settle.run(count, key, writer);
    })();
  }

  // An SQLite file is a single-server site's, whose shim runs one sync at a time already.
  async oneAtATime<T>(sync: () => Promise<T>): Promise<T> {
    return sync();
  }

  protected async readEdgeRows(): Promise<EdgeRows> {
    // One read transaction: every table as it stood at one moment.
    return this.db.transaction(() => ({
      sagas: this.db.prepare<[], EdgeRows['sagas'][number]>('SELECT * FROM saga ORDER BY created_at, workflow_id').all(),
      steps: this.db.prepare<[], EdgeRows['steps'][number]>('SELECT * FROM step ORDER BY workflow_id, step_index').all(),
      idempotency: this.db.prepare<[], EdgeRows['idempotency'][number]>('SELECT * FROM idempotency ORDER BY id').all(),
      checkpointKeys: this.db.prepare<[], { key: string }>('SELECT DISTINCT key FROM checkpoint ORDER BY key').all().map((row) => row.key),
      writerCounts: this.db.prepare<[], WriterCount>('SELECT key, writer, count FROM counter ORDER BY key, writer').all(),
      counterOperations: this.db.prepare<[], EdgeRows['counterOperations'][number]>('SELECT * FROM counter_operation ORDER BY at, operation_id').all(),
    }))();
  }

  protected async readJournal(target: string): Promise<JournalRows> {
    return this.db.transaction(() => ({
      done: this.db.prepare<[string], JournalRows['done'][number]>('SELECT kind, record_key, fingerprint FROM sync_done WHERE target = ?').all(target),
      conflicts: this.db
        .prepare<[string], JournalRows['conflicts'][number]>('SELECT DISTINCT kind, record_key FROM sync_conflict WHERE target = ? AND resolved_at IS NULL')
        .all(target),
      checkpointBases: this.db
        .prepare<[string], JournalRows['checkpointBases'][number]>('SELECT key, region_version FROM sync_checkpoint_base WHERE target = ?')
        .all(target),
    }))();
  }

  protected async writeDone(target: string, kind: SyncKind, key: string, fingerprint: string, at: string): Promise<void> {
    this.db.transaction(() => {
      this.db
        .prepare('INSERT INTO sync_done (target, kind, record_key, fingerprint) VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET fingerprint = excluded.fingerprint')
        .run(target, kind, key, fingerprint);
      this.db.prepare('UPDATE sync_conflict SET resolved_at = ? WHERE target = ? AND kind = ? AND record_key = ? AND resolved_at IS NULL').run(at, target, kind, key);
    })();
  }

  protected async writeConflict(sighting: ConflictSighting): Promise<ConflictRow> {
    return this.db
      .prepare<ConflictSighting, ConflictRow>(
        `INSERT INTO sync_conflict (target, kind, record_key, reason, edge, region, first_seen_at, last_seen_at)
         VALUES (:target, :kind, :record_key, :reason, :edge, :region, :at, :at)
         ON CONFLICT (target, kind, record_key, edge, region) DO UPDATE SET last_seen_at = excluded.last_seen_at, reason = excluded.reason, resolved_at = NULL
         RETURNING *`,
      )
      .get(sighting)!;
  }

  protected async writeCheckpointBase(target: string, key: string, regionVersion: number): Promise<void> {
    this.db
      .prepare('INSERT INTO sync_checkpoint_base (target, key, region_version) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET region_version = excluded.region_version')
      .run(target, key, regionVersion);
  }

  protected async readConflicts(includeResolved: boolean): Promise<ConflictRow[]> {
    return this.db.prepare<[], ConflictRow>(`SELECT * FROM sync_conflict ${includeResolved ? '' : 'WHERE resolved_at IS NULL'} ORDER BY id`).all();
  }
}
