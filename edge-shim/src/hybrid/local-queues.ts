import type { CallOptions, SqsBackend } from '../backend.js';
import type { QueueRegistry } from '../sqs/queues.js';
import type { SqliteContext } from '../sqs/context.js';
import type { StoreHealth } from '../sqs/service.js';
import type { Step } from '../sqs/storage/step.js';
import type { MessageCounts } from '../sqs/storage/records.js';

/**
 * What the hybrid edge needs of the edge's own queues (the SQS engine, `SqsService`): the SQS
 * operations, sends held for the replay, the engine's transaction for the mirror and the replay,
 * and what the routing and the status read of each queue.
 */
export interface LocalQueues extends SqsBackend {
  readonly queues: Pick<QueueRegistry, 'accountId' | 'byName' | 'all' | 'arnOf'>;
  /** Runs work in the engine's transaction (group commit), with its context; resolves once committed. */
  transact<T>(baseUrl: string, work: (context: SqliteContext) => Step<T>): Promise<T>;
  /** A send stored held for the replay: no receive at the edge takes it (see SqsService). */
  sendHeldForReplay(action: 'SendMessage' | 'SendMessageBatch', input: Record<string, unknown>, options: CallOptions): Promise<Record<string, unknown>>;
  /** Messages a queue holds now: visible, in flight or delayed. */
  storedMessages(queueName: string): number;
  counts(queueName: string): MessageCounts;
  oldestMessageAt(queueName: string): number | undefined;
  health(): StoreHealth;
}
