import { type Db, explainStatements } from './database.js';
import type { DeduplicationPort } from './storage/ports.js';

interface DeduplicationRow {
  message_id: string;
  sequence_number: string | null;
}

/** FIFO deduplication ids seen within the 5-minute interval, still remembered after the message is gone. */
export class DeduplicationStore implements DeduplicationPort {
  private readonly statements;

  constructor(private readonly db: Db) {
    this.statements = {
      find: db.prepare<[number, string, string, number], DeduplicationRow>(
        `SELECT message_id, sequence_number FROM deduplication
         WHERE queue_id = ? AND scope = ? AND deduplication_id = ? AND expires_at > ?`,
      ),
      remember: db.prepare(
        `INSERT OR REPLACE INTO deduplication (queue_id, scope, deduplication_id, message_id, sequence_number, expires_at)
         VALUES (?, ?, ?, ?, ?, ?)`,
      ),
      forget: db.prepare(
        `DELETE FROM deduplication WHERE (queue_id, scope, deduplication_id) IN
           (SELECT queue_id, scope, deduplication_id FROM deduplication WHERE expires_at <= ? LIMIT ?)`,
      ),
    };
  }

  /** The query plan of every statement (see `explainStatements`). */
  queryPlans(): Record<string, string[]> {
    return explainStatements(this.db, this.statements);
  }

  find(queueId: number, scope: string, deduplicationId: string, now: number): DeduplicationRow | undefined {
    return this.statements.find.get(queueId, scope, deduplicationId, now);
  }

  remember(queueId: number, scope: string, deduplicationId: string, messageId: string, sequenceNumber: string | null, expiresAt: number): void {
    this.statements.remember.run(queueId, scope, deduplicationId, messageId, sequenceNumber, expiresAt);
  }

  /** Drops up to `limit` ids whose interval has passed; returns how many. */
  forgetExpired(now: number, limit: number): number {
    return this.statements.forget.run(now, limit).changes;
  }
}
