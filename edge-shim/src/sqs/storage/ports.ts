import type { QueueAttributes } from '../queue-attributes.js';
import type { Pending } from './step.js';
import type { Attempt, AttemptMessage, AvailableGroup, MessageContent, MessageCounts, MessageRow, MoveTaskRow, MoveTaskStatus, NewMessage, Queue, RateWindow } from './records.js';

/**
 * What the SQS semantics ask of an engine's storage, area by area. Every call runs in the
 * transaction of the operation that makes it; an answer is `Pending` (see step.ts), so that an
 * engine may answer at once or later. What only computes (the account, ARNs) answers at once.
 */

/** The queues of the one account the engine holds. */
export interface QueuePort {
  readonly region: string;
  readonly accountId: string;
  arnOf(name: string): string;
  byName(name: string): Pending<Queue | undefined>;
  /**
   * The queue, read to be changed: on an engine that several nodes write, it stays locked until the
   * transaction ends, so that two changes made at once (tags, attributes, a purge) both take effect
   * rather than the later one writing over the earlier.
   */
  byNameToChange(name: string): Pending<Queue | undefined>;
  byArn(arn: string): Pending<Queue | undefined>;
  all(): Pending<Queue[]>;
  /** When the name was last deleted, for the 60-second wait before it can be created again. */
  deletedAt(name: string): Pending<number | undefined>;
  /** Forgets deletions made at or before this instant. */
  forgetDeletions(before: number): Pending<void>;
  /** The next number of the queue's counter of FIFO sequence numbers. */
  nextSequence(queue: Queue): Pending<number>;
  create(name: string, fifo: boolean, attributes: QueueAttributes, tags: Record<string, string>, now: number): Pending<Queue>;
  update(queue: Queue, changes: Partial<Pick<Queue, 'attributes' | 'tags' | 'permissions' | 'modifiedAt' | 'purgedAt' | 'purgedThrough'>>): Pending<Queue>;
  /** Deletes a queue; what it held is reclaimed later (`reclaimDeleted`). */
  remove(queue: Queue, now: number): Pending<void>;
  /** Deletes up to `limit` leftovers of each deleted queue; whether any are left. */
  reclaimDeleted(limit: number): Pending<boolean>;
}

/**
 * Messages, their FIFO groups and their counts. A call given a `MessageRow` that changes it
 * (markReceived, setVisibleAt) also brings the row in hand up to date.
 */
export interface MessagePort {
  insert(queue: Queue, message: NewMessage, now: number): Pending<number>;
  byId(id: number): Pending<MessageRow | undefined>;
  content(message: MessageRow): Pending<MessageContent>;
  /** Visible unpurged messages of a standard queue, oldest visibility first, past retention included. */
  visible(queue: Queue, now: number, limit: number): Pending<MessageRow[]>;
  /** A queue's messages received and not yet visible again (those held for the replay aside). */
  inFlight(queue: Queue, now: number): Pending<MessageRow[]>;
  /** Messages past their retention period (purged or not), for the sweeper. */
  expired(queue: Queue, now: number, limit: number): Pending<MessageRow[]>;
  /** Purged messages not yet deleted, for the sweeper. */
  purged(queue: Queue, limit: number): Pending<MessageRow[]>;
  /** The highest message id ever given: the cut-off of a purge. */
  lastId(): Pending<number>;
  /** When a receive that finds nothing now could next find something. */
  nextAvailableAt(queue: Queue, now: number): Pending<number | undefined>;
  /** Whether a receive could take something now, without taking it. */
  anyAvailable(queue: Queue, now: number): Pending<boolean>;
  /** FIFO groups that can be received from now, longest available first, after `after`. */
  availableGroups(queue: Queue, now: number, after: AvailableGroup | undefined, limit: number): Pending<AvailableGroup[]>;
  /** The first unpurged messages of a FIFO group in send order, after the message `afterId`. */
  groupMessages(queue: Queue, groupId: string, limit: number, afterId?: number): Pending<MessageRow[]>;
  markReceived(message: MessageRow, now: number, visibleAt: number, nonce: string): Pending<void>;
  /** Locks a FIFO group whose first messages were just received until they are visible again. */
  lockGroup(queue: Queue, groupId: string, until: number): Pending<void>;
  /** Recomputes when a FIFO group can next be received from. */
  refreshGroup(queue: Queue, groupId: string): Pending<void>;
  /** Sets when a message is visible again; a message held for the replay that would be visible now stays held. */
  setVisibleAt(queue: Queue, message: MessageRow, visibleAt: number, now: number): Pending<void>;
  remove(queue: Queue, message: MessageRow, now: number): Pending<void>;
  /** After the last purged message of a FIFO queue is deleted: drops the groups left of older epochs. */
  removePurgedGroups(queue: Queue): Pending<void>;
  /** Drops what the counts will not read again. */
  forgetPastTallies(queue: Queue, now: number): Pending<void>;
  /** A FIFO queue's new DelaySeconds applied to its messages never received. */
  applyQueueDelay(queue: Queue, now: number): Pending<void>;
  counts(queue: Queue, now: number): Pending<MessageCounts>;
  /**
   * Keeps a message from every receive but the replay's: one just inserted at HELD_FOR_REPLAY, or
   * one the replay holds taken, which stays held when its visibility is next set to now. Holding a
   * held message again changes nothing.
   */
  holdForReplay(id: number): Pending<void>;
  anyHeldForReplay(): Pending<boolean>;
  /**
   * Makes up to `limit` held messages visible for the replay's take in this transaction; in a FIFO
   * queue, those of one group, in its order (see MessageStore.offerHeld).
   */
  offerHeld(queue: Queue, limit: number, now: number): Pending<void>;
  /** Holds again the held messages that `offerHeld` offered and the take left. */
  holdUntaken(queue: Queue, now: number): Pending<void>;
}

/** FIFO deduplication ids seen within the 5-minute interval. */
export interface DeduplicationPort {
  find(queueId: number, scope: string, deduplicationId: string, now: number): Pending<{ message_id: string; sequence_number: string | null } | undefined>;
  remember(queueId: number, scope: string, deduplicationId: string, messageId: string, sequenceNumber: string | null, expiresAt: number): Pending<void>;
  /** Drops up to `limit` ids whose interval has passed; how many. */
  forgetExpired(now: number, limit: number): Pending<number>;
}

/** The messages each FIFO ReceiveRequestAttemptId returned, for the 5 minutes it may be retried. */
export interface ReceiveAttemptPort {
  find(queueId: number, attemptId: string, now: number): Pending<Attempt | undefined>;
  remember(queueId: number, attemptId: string, messages: AttemptMessage[], expiresAt: number): Pending<void>;
  /** Drops up to `limit` attempts whose 5 minutes have passed; how many. */
  forgetExpired(now: number, limit: number): Pending<number>;
}

/** Message move tasks. */
export interface MoveTaskPort {
  insert(task: Pick<MoveTaskRow, 'task_handle' | 'source_arn' | 'destination_arn' | 'max_per_second' | 'to_move' | 'started_at'>): Pending<void>;
  byHandle(handle: string): Pending<MoveTaskRow | undefined>;
  /** Tasks still to be worked on: running, or cancelled and not yet stopped. */
  active(): Pending<MoveTaskRow[]>;
  activeFor(sourceArn: string): Pending<MoveTaskRow | undefined>;
  /** A source queue's tasks started at or after `since`, most recent first. */
  recent(sourceArn: string, since: number, limit: number): Pending<MoveTaskRow[]>;
  setStatus(handle: string, status: MoveTaskStatus, failureReason?: string | null): Pending<void>;
  /**
   * The task's rate window at `now`: the current one, or a new one from `now` once the last is a
   * second old. Kept where every node that steps the task sees it, so that the rate is the task's,
   * not each node's.
   */
  rateWindow(task: MoveTaskRow, now: number): Pending<RateWindow>;
  /** Counts messages moved into the task's total, and (a rate-limited task) its window as it now stands. */
  addMoved(handle: string, count: number, window?: RateWindow): Pending<void>;
  /** Forgets finished tasks started before this instant. */
  forget(before: number): Pending<void>;
}
