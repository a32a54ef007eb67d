import type { EngineStorage } from './engine.js';
import type { RetentionCutoff } from './messages.js';
import type { Step } from './storage/step.js';
import type { MessageRow, Queue } from './storage/records.js';

/**
 * What a queue operation works with: the engine's storage (the ports), inside the transaction the
 * engine opened for it. Anything that must happen only once its writes are committed goes through
 * `afterCommit`, or, to wake long polls, `messagesAvailable` and `messagesAvailableAt`.
 */
export interface SqsContext extends EngineStorage {
  /** When messages of a queue expire (see `retentionCutoff`). */
  readonly retentionCutoff: RetentionCutoff;
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
  /** Once committed, has the message mover look at its tasks (one was started or cancelled). */
  moveTasksChanged(): void;
}

export function queueUrl(context: Pick<SqsContext, 'baseUrl' | 'queues'>, queue: Pick<Queue, 'name'>): string {
  return `${context.baseUrl}/${context.queues.accountId}/${encodeURIComponent(queue.name)}`;
}

/** A queue operation: input and output in their JSON-protocol shape. */
export type Action = (context: SqsContext, input: Record<string, unknown>) => Step<Record<string, unknown>>;
