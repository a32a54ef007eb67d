import type { Logger } from 'pino';
import type { SqsContext } from './context.js';
import { type Step, call } from './storage/step.js';
import type { MessageRow, Queue } from './storage/records.js';

/** Told of the messages deleted unread because they were past their queue's retention period. */
export interface ExpiryRecorder {
  messagesExpired(queue: string, count: number): void;
}

/** What expired in one queue: how many messages, and the age of the oldest when it expired. */
interface Expired {
  count: number;
  oldestAgeMs: number;
}

/** Messages expired, by queue name. */
export type ExpiredByQueue = Map<string, Expired>;

export function addExpired(expired: ExpiredByQueue, queue: string, count: number, ageMs: number): void {
  const entry = expired.get(queue);
  if (entry) {
    entry.count += count;
    entry.oldestAgeMs = Math.max(entry.oldestAgeMs, ageMs);
  } else {
    expired.set(queue, { count, oldestAgeMs: ageMs });
  }
}

/**
 * Deletes a message that a request met purged or past its retention period (see `isDead`, which
 * callers ask first: the living message, the usual one, costs no step), counting it as expired if
 * it was not purged (a purge is asked for).
 */
export function* removeDead(context: SqsContext, queue: Queue, message: MessageRow): Step<void> {
  yield* call(context.messages.remove(queue, message, context.now));
  if (message.epoch === queue.purgedThrough) context.messageExpired(queue, message);
}

/**
 * Messages deleted unread for their age, wherever the engine met them (the sweeper, a receive, the
 * replay's take, a move task): told to the recorder as each transaction commits, and logged at the
 * end of the next sweep, a line per queue, so that nothing expires silently.
 */
export class ExpiryLog {
  private readonly unlogged: ExpiredByQueue = new Map();

  constructor(
    private readonly recorder: ExpiryRecorder | undefined,
    private readonly logger: Logger,
    private readonly level: 'info' | 'warn',
  ) {}

  /** What a transaction expired, once it is committed. */
  committed(expired: ExpiredByQueue): void {
    for (const [queue, { count, oldestAgeMs }] of expired) {
      this.recorder?.messagesExpired(queue, count);
      addExpired(this.unlogged, queue, count, oldestAgeMs);
    }
  }

  /** Logs what expired since the last time. */
  flush(): void {
    for (const [queue, { count, oldestAgeMs }] of this.unlogged) {
      const oldestAgeSeconds = Math.round(oldestAgeMs / 1000);
      this.logger[this.level](
        { queue, expired: count, oldestAgeSeconds },
        `${count} messages of ${queue} expired unread, past its MessageRetentionPeriod (the oldest ${oldestAgeSeconds} s old)`,
      );
    }
    this.unlogged.clear();
  }
}
