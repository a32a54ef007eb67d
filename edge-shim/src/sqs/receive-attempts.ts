import type { Db } from './database.js';

export interface AttemptMessage {
  readonly id: number;
  readonly nonce: string;
}

/** The messages each FIFO ReceiveRequestAttemptId returned, for the 5 minutes it may be retried. */
export class ReceiveAttemptStore {
  private readonly statements;

  constructor(db: Db) {
    this.statements = {
      find: db.prepare<[number, string, number], { message_ids: string }>(
        'SELECT message_ids FROM receive_attempts WHERE queue_id = ? AND attempt_id = ? AND expires_at > ?',
      ),
      remember: db.prepare(
        'INSERT OR REPLACE INTO receive_attempts (queue_id, attempt_id, message_ids, expires_at) VALUES (?, ?, ?, ?)',
      ),
      forget: db.prepare('DELETE FROM receive_attempts WHERE expires_at <= ?'),
    };
  }

  find(queueId: number, attemptId: string, now: number): AttemptMessage[] | undefined {
    const row = this.statements.find.get(queueId, attemptId, now);
    return row ? (JSON.parse(row.message_ids) as AttemptMessage[]) : undefined;
  }

  remember(queueId: number, attemptId: string, messages: AttemptMessage[], expiresAt: number): void {
    this.statements.remember.run(queueId, attemptId, JSON.stringify(messages), expiresAt);
  }

  forgetExpired(now: number): number {
    return this.statements.forget.run(now).changes;
  }
}
