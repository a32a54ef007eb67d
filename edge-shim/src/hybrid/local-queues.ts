import type { CallOptions, SqsBackend } from '../backend.js';
import type { StoreHealth } from '../sqs/engine.js';
import type { SqliteContext, SqliteEngine } from '../sqs/sqlite-engine.js';
import type { Step } from '../sqs/storage/step.js';

/**
 * What the hybrid edge needs of the edge's own queues (the SQS engine, `SqsService`, on SQLite):
 * the SQS operations, sends held for the replay, the engine's transaction for the mirror and the
 * replay, and what the routing and the status read of each queue, from memory.
 */
export interface LocalQueues extends SqsBackend {
  readonly engine: Pick<SqliteEngine, 'queues' | 'storedMessages' | 'counts' | 'oldestMessageAt'>;
  /** Runs work in the engine's transaction (group commit), with its context; resolves once committed. */
  transact<T>(baseUrl: string, work: (context: SqliteContext) => Step<T>): Promise<T>;
  /** A send stored held for the replay: no receive at the edge takes it (see SqsService). */
  sendHeldForReplay(action: 'SendMessage' | 'SendMessageBatch', input: Record<string, unknown>, options: CallOptions): Promise<Record<string, unknown>>;
  health(): StoreHealth;
}
