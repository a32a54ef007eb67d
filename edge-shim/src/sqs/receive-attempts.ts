import { type Db, explainStatements } from './database.js';
import type { ReceiveAttemptPort } from './storage/ports.js';
import type { Attempt, AttemptMessage } from './storage/records.js';

/** The messages each FIFO ReceiveRequestAttemptId returned, for the 5 minutes it may be retried. */
export class ReceiveAttemptStore implements ReceiveAttemptPort {
  private readonly statements;

  constructor(private readonly db: Db) {
    this.statements = {
      find: db.prepare<[number, string, number], { message_ids: string; expires_at: number }>(
        'SELECT message_ids, expires_at FROM receive_attempts WHERE queue_id = ? AND attempt_id = ? AND expires_at > ?',
      ),
      remember: db.prepare(
        'INSERT OR REPLACE INTO receive_attempts (queue_id, attempt_id, message_ids, expires_at) VALUES (?, ?, ?, ?)',
      ),
      forget: db.prepare(
        `DELETE FROM receive_attempts WHERE (queue_id, attempt_id) IN
           (SELECT queue_id, attempt_id FROM receive_attempts WHERE expires_at <= ? LIMIT ?)`,
      ),
    };
  }

  /** The query plan of every statement (see `explainStatements`). */
  queryPlans(): Record<string, string[]> {
    return explainStatements(this.db, this.statements);
  }

  find(queueId: number, attemptId: string, now: number): Attempt | undefined {
    const row = this.statements.find.get(queueId, attemptId, now);
    return row ? { messages: JSON.parse(row.message_ids) as AttemptMessage[], expiresAt: row.expires_at } : undefined;
  }

  remember(queueId: number, attemptId: string, messages: AttemptMessage[], expiresAt: number): void {
    this.statements.remember.run(queueId, attemptId, JSON.stringify(messages), expiresAt);
  }

  /** Drops up to `limit` attempts whose 5 minutes have passed; returns how many. */
  forgetExpired(now: number, limit: number): number {
    return this.statements.forget.run(now, limit).changes;
  }
}
