import type { EdgeDatabase } from './sqlite-database.js';
import { type SnapshotRow, toSnapshot } from './sql-rows.js';
import { type CheckpointStore, type Snapshot, VersionConflictError } from './types.js';


/** Checkpoints in the edge database (table `checkpoint`, one row per key and version). */
export class SqliteCheckpoints implements CheckpointStore {
  constructor(private readonly db: EdgeDatabase) {}

  async put(key: string, snapshot: Snapshot): Promise<void> {
    const { changes } = this.db
      .prepare(
        `INSERT INTO checkpoint (key, version, state, sha256, writer, base_version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT DO NOTHING`,
      )
      .run(key, snapshot.version, snapshot.state, snapshot.sha256, snapshot.writer, snapshot.baseVersion, snapshot.createdAt);
    if (changes === 0) throw new VersionConflictError(`checkpoint ${key} already has version ${snapshot.version}`);
  }

  async list(key: string): Promise<Snapshot[]> {
    return this.db.prepare<[string], SnapshotRow>('SELECT * FROM checkpoint WHERE key = ? ORDER BY version DESC').all(key).map(toSnapshot);
  }
}
