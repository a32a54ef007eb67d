import { IdempotencyItemAlreadyExistsError, IdempotencyItemNotFoundError, IdempotencyRecordStatus } from '@aws-lambda-powertools/idempotency';
import { BasePersistenceLayer, IdempotencyRecord } from '@aws-lambda-powertools/idempotency/persistence';
import type { EdgeDatabase } from './sqlite-database.js';

/** A row of the `idempotency` table: the attributes of Powertools' DynamoDB items, under the same names. */
export interface IdempotencyRow {
  readonly id: string;
  readonly status: string;
  /** Epoch seconds after which the record counts as absent. */
  readonly expiration: number | null;
  /** Epoch milliseconds after which an in-progress record may be taken over. */
  readonly in_progress_expiration: number | null;
  /** The stored result as JSON text. */
  readonly data: string | null;
  /** Hash of the validated part of the payload. */
  readonly validation: string | null;
}

export function idempotencyRecordOf(row: IdempotencyRow): IdempotencyRecord {
  return new IdempotencyRecord({
    idempotencyKey: row.id,
    status: row.status as (typeof IdempotencyRecordStatus)[keyof typeof IdempotencyRecordStatus],
    expiryTimestamp: row.expiration ?? undefined,
    inProgressExpiryTimestamp: row.in_progress_expiration ?? undefined,
    responseData: row.data === null ? undefined : JSON.parse(row.data),
    payloadHash: row.validation ?? undefined,
  });
}

/**
 * Powertools idempotency records in the edge database, built like Powertools' DynamoDB layer: the
 * in-progress record is written in one transaction under the DynamoDB layer's condition (no record,
 * an expired one, or one in progress whose invocation's deadline has passed), and a refused write
 * hands the record it met to Powertools, which answers from it.
 */
export class SqliteIdempotencyLayer extends BasePersistenceLayer {
  constructor(private readonly db: EdgeDatabase) {
    super();
  }

  protected override async _getRecord(idempotencyKey: string): Promise<IdempotencyRecord> {
    const row = this.select(idempotencyKey);
    if (!row) throw new IdempotencyItemNotFoundError(`no idempotency record ${idempotencyKey}`);
    return idempotencyRecordOf(row);
  }

  protected override async _putRecord(record: IdempotencyRecord): Promise<void> {
    this.db
      .transaction(() => {
        const existing = this.select(record.idempotencyKey);
        const now = Date.now();
        const free =
          !existing ||
          (existing.expiration !== null && existing.expiration < now / 1000) ||
          (existing.status === IdempotencyRecordStatus.INPROGRESS && existing.in_progress_expiration !== null && existing.in_progress_expiration < now);
        if (!free) {
          throw new IdempotencyItemAlreadyExistsError(`Failed to put record for already existing idempotency key: ${record.idempotencyKey}`, idempotencyRecordOf(existing));
        }
        // Replaces the whole record, as PutItem does: a stored result of an expired record goes with it.
        this.db
          .prepare('INSERT OR REPLACE INTO idempotency (id, status, expiration, in_progress_expiration, data, validation) VALUES (?, ?, ?, ?, NULL, ?)')
          .run(record.idempotencyKey, record.getStatus(), record.expiryTimestamp ?? null, record.inProgressExpiryTimestamp ?? null, this.validationOf(record));
      })
      .immediate();
  }

  protected override async _updateRecord(record: IdempotencyRecord): Promise<void> {
    // As UpdateItem: creates the record when absent; keeps what the update does not name.
    this.db
      .prepare(
        `INSERT INTO idempotency (id, status, expiration, data, validation) VALUES (:id, :status, :expiration, :data, :validation)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, expiration = excluded.expiration,
           data = CASE WHEN :hasData THEN excluded.data ELSE data END,
           validation = CASE WHEN :hasValidation THEN excluded.validation ELSE validation END`,
      )
      .run({
        id: record.idempotencyKey,
        status: record.getStatus(),
        expiration: record.expiryTimestamp ?? null,
        data: record.responseData === undefined ? null : JSON.stringify(record.responseData),
        validation: this.validationOf(record),
        hasData: record.responseData === undefined ? 0 : 1,
        hasValidation: this.isPayloadValidationEnabled() ? 1 : 0,
      });
  }

  protected override async _deleteRecord(record: IdempotencyRecord): Promise<void> {
    this.db.prepare('DELETE FROM idempotency WHERE id = ?').run(record.idempotencyKey);
  }

  private select(idempotencyKey: string): IdempotencyRow | undefined {
    return this.db.prepare<[string], IdempotencyRow>('SELECT * FROM idempotency WHERE id = ?').get(idempotencyKey);
  }

  private validationOf(record: IdempotencyRecord): string | null {
    return this.isPayloadValidationEnabled() ? (record.payloadHash ?? null) : null;
  }
}
