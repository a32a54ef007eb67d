import { IdempotencyItemAlreadyExistsError, IdempotencyItemNotFoundError, IdempotencyRecordStatus } from '@aws-lambda-powertools/idempotency';
import { BasePersistenceLayer, type IdempotencyRecord } from '@aws-lambda-powertools/idempotency/persistence';
import type { PostgresDatabase } from './postgres-database.js';
import { type IdempotencyRow, idempotencyRecordOf } from './sqlite-idempotency.js';

/**
 * Powertools idempotency records in PostgreSQL (table `idempotency`, the SQLite layer's columns),
 * built like Powertools' DynamoDB layer: the in-progress record is written by one upsert whose
 * condition is the DynamoDB layer's (no record, an expired one, or one in progress whose invocation's
 * deadline has passed), and a refused write hands the record it met to Powertools, which answers from it.
 */
export class PostgresIdempotencyLayer extends BasePersistenceLayer {
  constructor(private readonly db: PostgresDatabase) {
    super();
  }

  protected override async _getRecord(idempotencyKey: string): Promise<IdempotencyRecord> {
    const row = await this.select(idempotencyKey);
    if (!row) throw new IdempotencyItemNotFoundError(`no idempotency record ${idempotencyKey}`);
    return idempotencyRecordOf(row);
  }

  protected override async _putRecord(record: IdempotencyRecord): Promise<void> {
    for (;;) {
      const now = Date.now();
      // Replaces the whole record, as PutItem does: a stored result of an expired record goes with it.
      const { rowCount } = await this.db.query(
        `INSERT INTO idempotency (id, status, expiration, in_progress_expiration, data, validation) VALUES ($1, $2, $3, $4, NULL, $5)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, expiration = excluded.expiration,
           in_progress_expiration = excluded.in_progress_expiration, data = NULL, validation = excluded.validation
         WHERE idempotency.expiration < $6 OR (idempotency.status = $7 AND idempotency.in_progress_expiration < $8)`,
        [
          record.idempotencyKey,
          record.getStatus(),
          record.expiryTimestamp ?? null,
          record.inProgressExpiryTimestamp ?? null,
          this.validationOf(record),
          now / 1000,
          IdempotencyRecordStatus.INPROGRESS,
          now,
        ],
      );
      if (rowCount! > 0) return;
      const existing = await this.select(record.idempotencyKey);
      if (existing) {
        throw new IdempotencyItemAlreadyExistsError(`Failed to put record for already existing idempotency key: ${record.idempotencyKey}`, idempotencyRecordOf(existing));
      }
      // Deleted between the two statements (a failed run forgetting itself): the key is free again.
    }
  }

  protected override async _updateRecord(record: IdempotencyRecord): Promise<void> {
    // As UpdateItem: creates the record when absent; keeps what the update does not name.
    await this.db.query(
      `INSERT INTO idempotency (id, status, expiration, data, validation) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (id) DO UPDATE SET status = excluded.status, expiration = excluded.expiration,
         data = CASE WHEN $6 THEN excluded.data ELSE idempotency.data END,
         validation = CASE WHEN $7 THEN excluded.validation ELSE idempotency.validation END`,
      [
        record.idempotencyKey,
        record.getStatus(),
        record.expiryTimestamp ?? null,
        record.responseData === undefined ? null : JSON.stringify(record.responseData),
        this.validationOf(record),
        record.responseData !== undefined,
        this.isPayloadValidationEnabled(),
      ],
    );
  }

  protected override async _deleteRecord(record: IdempotencyRecord): Promise<void> {
    await this.db.query('DELETE FROM idempotency WHERE id = $1', [record.idempotencyKey]);
  }

  private async select(idempotencyKey: string): Promise<IdempotencyRow | undefined> {
    const { rows } = await this.db.query<IdempotencyRow>(
      'SELECT id, status, expiration, in_progress_expiration, data, validation FROM idempotency WHERE id = $1',
      [idempotencyKey],
    );
    return rows[0];
  }

  private validationOf(record: IdempotencyRecord): string | null {
    return this.isPayloadValidationEnabled() ? (record.payloadHash ?? null) : null;
  }
}
