import type { Db } from './database.js';
import type { DeduplicationStore } from './deduplication.js';
import type { MessageRow, MessageStore } from './messages.js';
import type { Queue, QueueRegistry } from './queues.js';
import type { ReceiptHandles } from './receipt-handles.js';
import type { ReceiveAttemptStore } from './receive-attempts.js';

/**
 * What a queue operation works with. Operations run synchronously inside the transaction the
 * service opened for them; anything that must happen only once their writes are committed goes
 * through `afterCommit`, or, to wake long polls, `messagesAvailable` and `messagesAvailableAt`.
 */
export interface SqsContext {
  readonly db: Db;
  readonly queues: QueueRegistry;
  readonly messages: MessageStore;
  readonly deduplication: DeduplicationStore;
  readonly receiveAttempts: ReceiveAttemptStore;
  /** Makes and checks receipt handles under the database's key. */
  readonly receipts: ReceiptHandles;
  /** Milliseconds since the epoch; injectable so tests can move time. */
  readonly now: number;
  /** Scheme and authority the client reached us under, for the queue URLs we hand back. */
  readonly baseUrl: string;
  /** Messages sent in this operation are held for the replay (see `SqsService.sendHeldForReplay`). */
  readonly holdForReplay: boolean;
  afterCommit(callback: () => void): void;
  /**
   * Once this operation's writes are committed, wakes `count` long polls waiting on the queue
   * (Infinity: all of them, when the queue itself changed).
   */
  messagesAvailable(queue: Queue, count?: number): void;
  /** Messages of the queue become available at this instant (a delay, a visibility timeout). */
  messagesAvailableAt(queue: Queue, at: number): void;
  /** A message past its queue's retention period was deleted unread: counted and logged once committed. */
  messageExpired(queue: Queue, message: MessageRow): void;
}

export function queueUrl(context: SqsContext, queue: Queue): string {
  return `${context.baseUrl}/${context.queues.accountId}/${encodeURIComponent(queue.name)}`;
}

/** A queue operation: input and output in their JSON-protocol shape. */
export type Action = (context: SqsContext, input: Record<string, unknown>) => Record<string, unknown>;
