import type { CallOptions, SqsBackend } from '../backend.js';
import type { SqsContext } from '../sqs/context.js';
import type { StoreHealth } from '../sqs/engine.js';
import type { Step } from '../sqs/storage/step.js';

/**
 * What the hybrid edge needs of the edge's own queues (the SQS engine, `SqsService`): the SQS
 * operations, sends held for the replay, and the engine's transaction for the mirror and the
 * replay. What it reads of each queue without a transaction is the site store's view (site/).
 */
export interface LocalQueues extends SqsBackend {
  /** Runs work in the engine's transaction, with its context; resolves once committed. */
  transact<T>(baseUrl: string, work: (context: SqsContext) => Step<T>): Promise<T>;
  /** A send stored held for the replay: no receive at the edge takes it (see SqsService). */
  sendHeldForReplay(action: 'SendMessage' | 'SendMessageBatch', input: Record<string, unknown>, options: CallOptions): Promise<Record<string, unknown>>;
  health(): StoreHealth;
}
