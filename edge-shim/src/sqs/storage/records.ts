import type { QueueAttributes } from '../queue-attributes.js';

/** What the engines store and the semantics read: the records that cross the storage ports. */

export interface Permission {
  readonly label: string;
  readonly accountIds: string[];
  readonly actions: string[];
}

export interface Queue {
  readonly id: number;
  readonly name: string;
  readonly fifo: boolean;
  readonly arn: string;
  readonly attributes: QueueAttributes;
  readonly tags: Record<string, string>;
  readonly permissions: Permission[];
  readonly createdAt: number;
  readonly modifiedAt: number;
  readonly purgedAt: number;
  /** Messages with a row id up to this one were purged (and are deleted by the sweeper). */
  readonly purgedThrough: number;
}

/**
 * A row of `message_states`: where a message stands in its queue. This is what receives select on
 * and rewrite; what never changes (body, attributes, ids) is a `MessageContent`, read only for the
 * messages a request returns or moves.
 */
export interface MessageRow {
  id: number;
  queue_id: number;
  epoch: number;
  group_id: string | null;
  enqueued_at: number;
  visible_at: number;
  receive_count: number;
  first_received_at: number | null;
  received_at: number | null;
  receipt_nonce: string | null;
}

/** A row of `messages`: what a message is, fixed when it is stored. */
export interface MessageContent {
  message_id: string;
  body: string;
  body_md5: string;
  attributes: string | null;
  attributes_md5: string | null;
  trace_header: string | null;
  deduplication_id: string | null;
  sequence_number: string | null;
  dead_letter_source: string | null;
  sent_at: number;
}

export interface NewMessage extends MessageContent {
  group_id: string | null;
  enqueued_at: number;
  visible_at: number;
}

export interface MessageCounts {
  visible: number;
  inFlight: number;
  delayed: number;
}

export interface AvailableGroup {
  group_id: string;
  available_at: number;
}

export type MoveTaskStatus = 'RUNNING' | 'COMPLETED' | 'CANCELLING' | 'CANCELLED' | 'FAILED';

/** A row of the `move_tasks` table. */
/** The one-second window a rate-limited move task counts its moves in (MaxNumberOfMessagesPerSecond). */
export interface RateWindow {
  readonly start: number;
  readonly moved: number;
}

/** The window a task's moves at `now` count in: `last` while it is less than a second old (and not in the future). */
export function currentRateWindow(last: RateWindow | undefined, now: number): RateWindow {
  return last && now >= last.start && now - last.start < 1000 ? last : { start: now, moved: 0 };
}

export interface MoveTaskRow {
  task_handle: string;
  source_arn: string;
  destination_arn: string | null;
  max_per_second: number | null;
  status: MoveTaskStatus;
  moved: number;
  to_move: number;
  failure_reason: string | null;
  started_at: number;
}

/** A message as a FIFO receive returned it: which receive (nonce) and until when it was invisible. */
export interface AttemptMessage {
  readonly id: number;
  readonly nonce: string;
  readonly visibleAt: number;
}

export interface Attempt {
  readonly messages: AttemptMessage[];
  /** 5 minutes after the first receive with this id; retries do not extend it. */
  readonly expiresAt: number;
}
