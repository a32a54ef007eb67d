import type { PostgresDatabase } from './postgres-database.js';
import { type SnapshotRow, toSnapshot } from './sql-rows.js';
import { type CheckpointStore, type Snapshot, VersionConflictError } from './types.js';


/** Checkpoints in PostgreSQL (table `checkpoint`, one row per key and version). */
export class PostgresCheckpoints implements CheckpointStore {
  constructor(private readonly db: PostgresDatabase) {}

  async put(key: string, snapshot: Snapshot): Promise<void> {
    const { rowCount } = await this.db.query(
      `INSERT INTO checkpoint (key, version, state, sha256, writer, base_version, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT DO NOTHING`,
      [key, snapshot.version, snapshot.state, snapshot.sha256, snapshot.writer, snapshot.baseVersion, snapshot.createdAt],
    );
    if (rowCount === 0) throw new VersionConflictError(`checkpoint ${key} already has version ${snapshot.version}`);
  }

  async list(key: string): Promise<Snapshot[]> {
    const { rows } = await this.db.query<SnapshotRow>(
      'SELECT version, state, sha256, writer, base_version, created_at FROM checkpoint WHERE key = $1 ORDER BY version DESC',
      [key],
    );
    return rows.map(toSnapshot);
  }
}
