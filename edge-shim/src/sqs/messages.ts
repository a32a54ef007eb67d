import { type Db, explainStatements } from './database.js';
import type { Queue } from './queues.js';

/** A row of the `messages` table. */
export interface MessageRow {
  id: number;
  queue_id: number;
  epoch: number;
  message_id: string;
  body: string;
  body_md5: string;
  attributes: string | null;
  attributes_md5: string | null;
  trace_header: string | null;
  group_id: string | null;
  deduplication_id: string | null;
  sequence_number: string | null;
  dead_letter_source: string | null;
  sent_at: number;
  enqueued_at: number;
  visible_at: number;
  receive_count: number;
  first_received_at: number | null;
  received_at: number | null;
  receipt_nonce: string | null;
}

export type NewMessage = Omit<MessageRow, 'id' | 'epoch' | 'receive_count' | 'first_received_at' | 'received_at' | 'receipt_nonce'>;

export interface MessageCounts {
  visible: number;
  inFlight: number;
  delayed: number;
}

export interface AvailableGroup {
  group_id: string;
  available_at: number;
}

// A FIFO group's messages in flight are always among its first ten: a receive takes at most ten
// from the head of an available group, and the group stays locked while any of them is in flight.
const IN_FLIGHT_WINDOW = 10;
// The epoch of a group left with purged messages only: none a request looks at.
const RETIRED = -1;

/**
 * Message storage for one database: every statement the queue operations run against `messages`
 * and `fifo_groups`, keeping a FIFO group's availability in step with its messages. Every query a
 * request runs walks an index from where its answer starts (see `test/edge-shim/receive.test.ts`),
 * so a request on a queue of millions costs what it costs on an empty one. The current epoch of a
 * queue is its `purgedThrough` (see the schema): messages of older epochs are purged, and only the
 * sweeper looks at them.
 */
export class MessageStore {
  private readonly statements;

  constructor(private readonly db: Db) {
    this.statements = {
      insert: db.prepare(
        `INSERT INTO messages (queue_id, epoch, message_id, body, body_md5, attributes, attributes_md5, trace_header,
           group_id, deduplication_id, sequence_number, dead_letter_source, sent_at, enqueued_at, visible_at)
         VALUES (@queue_id, @epoch, @message_id, @body, @body_md5, @attributes, @attributes_md5, @trace_header,
           @group_id, @deduplication_id, @sequence_number, @dead_letter_source, @sent_at, @enqueued_at, @visible_at)`,
      ),
      byId: db.prepare<[number], MessageRow>('SELECT * FROM messages WHERE id = ?'),
      visible: db.prepare<[number, number, number, number], MessageRow>(
        'SELECT * FROM messages WHERE queue_id = ? AND epoch = ? AND visible_at <= ? ORDER BY visible_at LIMIT ?',
      ),
      expired: db.prepare<[number, number, number], MessageRow>(
        'SELECT * FROM messages WHERE queue_id = ? AND enqueued_at <= ? LIMIT ?',
      ),
      purged: db.prepare<[number, number, number], MessageRow>(
        'SELECT * FROM messages WHERE queue_id = ? AND epoch < ? LIMIT ?',
      ),
      markReceived: db.prepare(
        `UPDATE messages SET visible_at = @visibleAt, receive_count = receive_count + 1,
           first_received_at = coalesce(first_received_at, @now), received_at = @now, receipt_nonce = @nonce
         WHERE id = @id`,
      ),
      setVisibleAt: db.prepare('UPDATE messages SET visible_at = ? WHERE id = ?'),
      remove: db.prepare('DELETE FROM messages WHERE id = ?'),
      // A message sent to a group with purged messages only is its first: it decides the group's availability.
      groupInsert: db.prepare(
        `INSERT INTO fifo_groups (queue_id, group_id, epoch, available_at) VALUES (@queue, @group, @epoch, @at)
         ON CONFLICT (queue_id, group_id) DO UPDATE SET epoch = @epoch, available_at = @at WHERE epoch <> @epoch`,
      ),
      availableGroups: db.prepare<[number, number, number, number, string, number], AvailableGroup>(
        `SELECT group_id, available_at FROM fifo_groups
         WHERE queue_id = ? AND epoch = ? AND available_at <= ? AND (available_at, group_id) > (?, ?)
         ORDER BY available_at, group_id LIMIT ?`,
      ),
      groupMessages: db.prepare<[number, string, number, number, number], MessageRow>(
        'SELECT * FROM messages WHERE queue_id = ? AND group_id = ? AND epoch = ? AND id > ? ORDER BY id LIMIT ?',
      ),
      groupHasMessages: db.prepare<[number, string], { one: number }>(
        'SELECT 1 AS one FROM messages WHERE queue_id = ? AND group_id = ? LIMIT 1',
      ),
      setGroup: db.prepare('UPDATE fifo_groups SET epoch = ?, available_at = ? WHERE queue_id = ? AND group_id = ?'),
      removeGroup: db.prepare('DELETE FROM fifo_groups WHERE queue_id = ? AND group_id = ?'),
      groupsOf: db.prepare<[number, number], { group_id: string }>('SELECT group_id FROM fifo_groups WHERE queue_id = ? AND epoch = ?'),
      redelay: db.prepare('UPDATE messages SET visible_at = enqueued_at + ? WHERE queue_id = ? AND epoch = ? AND receive_count = 0'),
      total: db.prepare<[number, number], { total: number }>('SELECT total FROM message_totals WHERE queue_id = ? AND epoch = ?'),
      countExpired: db.prepare<[number, number, number], { expired: number }>(
        'SELECT count(*) AS expired FROM messages WHERE queue_id = ? AND enqueued_at <= ? AND epoch = ?',
      ),
      countInvisible: db.prepare<{ queue: number; epoch: number; now: number; cutoff: number }, { inFlight: number | null; delayed: number | null }>(
        `SELECT sum(receive_count > 0) AS inFlight, sum(receive_count = 0) AS delayed FROM messages
         WHERE queue_id = @queue AND epoch = @epoch AND visible_at > @now AND enqueued_at > @cutoff`,
      ),
      // The highest row id ever given, from SQLite's one-row-per-table record of AUTOINCREMENT.
      lastId: db.prepare<[], { id: number }>(`SELECT seq AS id FROM sqlite_sequence WHERE name = 'messages'`),
      nextVisibleAt: db.prepare<[number, number, number], { at: number | null }>(
        'SELECT min(visible_at) AS at FROM messages WHERE queue_id = ? AND epoch = ? AND visible_at > ?',
      ),
    };
  }

  /** The query plan of every statement (see `explainStatements`). */
  queryPlans(): Record<string, string[]> {
    return explainStatements(this.db, this.statements);
  }

  insert(queue: Queue, message: NewMessage): number {
    const epoch = queue.purgedThrough;
    const id = Number(this.statements.insert.run({ ...message, epoch }).lastInsertRowid);
    if (queue.fifo) this.statements.groupInsert.run({ queue: queue.id, group: message.group_id, epoch, at: message.visible_at });
    return id;
  }

  byId(id: number): MessageRow | undefined {
    return this.statements.byId.get(id);
  }

  /**
   * Visible unpurged messages of a standard queue, oldest visibility first, including any past
   * their retention period: the caller deletes those it meets (see `isDead`), so it never meets
   * them twice.
   */
  visible(queue: Queue, now: number, limit: number): MessageRow[] {
    return this.statements.visible.all(queue.id, queue.purgedThrough, now, limit);
  }

  /** Whether a message is purged or past its retention period, and so must never be returned. */
  isDead(queue: Queue, message: MessageRow, now: number): boolean {
    return message.epoch !== queue.purgedThrough || message.enqueued_at <= retentionCutoff(queue, now);
  }

  /** Messages past their retention period, for the sweeper. */
  expired(queue: Queue, now: number, limit: number): MessageRow[] {
    return this.statements.expired.all(queue.id, retentionCutoff(queue, now), limit);
  }

  /** Purged messages not yet deleted, for the sweeper. */
  purged(queue: Queue, limit: number): MessageRow[] {
    return this.statements.purged.all(queue.id, queue.purgedThrough, limit);
  }

  /** The highest message row id ever given: the cut-off of a purge. */
  lastId(): number {
    return this.statements.lastId.get()?.id ?? 0;
  }

  /** When the next invisible message of a queue becomes visible, if any is invisible now. */
  nextVisibleAt(queue: Queue, now: number): number | undefined {
    return this.statements.nextVisibleAt.get(queue.id, queue.purgedThrough, now)?.at ?? undefined;
  }

  /**
   * FIFO message groups that can be received from now, longest available first, after the group
   * `after` (a position in that order) when paging on.
   */
  availableGroups(queue: Queue, now: number, after: AvailableGroup | undefined, limit: number): AvailableGroup[] {
    return this.statements.availableGroups.all(queue.id, queue.purgedThrough, now, after?.available_at ?? Number.MIN_SAFE_INTEGER, after?.group_id ?? '', limit);
  }

  /** The first unpurged messages of a FIFO group in send order, after the row `afterId` if given. */
  groupMessages(queue: Queue, groupId: string, limit: number, afterId = 0): MessageRow[] {
    return this.statements.groupMessages.all(queue.id, groupId, queue.purgedThrough, afterId, limit);
  }

  markReceived(message: MessageRow, now: number, visibleAt: number, nonce: string): void {
    this.statements.markReceived.run({ id: message.id, now, visibleAt, nonce });
    message.visible_at = visibleAt;
    message.receive_count += 1;
    message.first_received_at ??= now;
    message.received_at = now;
    message.receipt_nonce = nonce;
  }

  /** Locks a FIFO group whose first messages were just received until they are visible again. */
  lockGroup(queue: Queue, groupId: string, until: number): void {
    this.statements.setGroup.run(queue.purgedThrough, until, queue.id, groupId);
  }

  setVisibleAt(queue: Queue, message: MessageRow, visibleAt: number): void {
    this.statements.setVisibleAt.run(visibleAt, message.id);
    message.visible_at = visibleAt;
    if (queue.fifo && message.group_id !== null) this.refreshGroup(queue, message.group_id);
  }

  remove(queue: Queue, message: MessageRow): void {
    this.statements.remove.run(message.id);
    if (queue.fifo && message.group_id !== null) this.refreshGroup(queue, message.group_id);
  }

  /**
   * A FIFO queue applies a new DelaySeconds to the messages already in it that were never received;
   * a standard queue does not (Developer Guide, "Amazon SQS delay queues"). One pass over the queue:
   * changing the delay of a queue is rare.
   */
  applyQueueDelay(queue: Queue): void {
    if (!queue.fifo) return;
    this.statements.redelay.run(Number(queue.attributes.DelaySeconds) * 1000, queue.id, queue.purgedThrough);
    for (const { group_id: groupId } of this.statements.groupsOf.all(queue.id, queue.purgedThrough)) this.refreshGroup(queue, groupId);
  }

  /**
   * The approximate counts: from the running total of the queue's current epoch, less the messages
   * past retention not yet swept; in flight (received before) and delayed (never received) are
   * counted one by one, visible is the rest. A backlog of visible messages costs nothing to count.
   */
  counts(queue: Queue, now: number): MessageCounts {
    const epoch = queue.purgedThrough;
    const cutoff = retentionCutoff(queue, now);
    const total = this.statements.total.get(queue.id, epoch)?.total ?? 0;
    const { expired } = this.statements.countExpired.get(queue.id, cutoff, epoch)!;
    const invisible = this.statements.countInvisible.get({ queue: queue.id, epoch, now, cutoff })!;
    const inFlight = invisible.inFlight ?? 0;
    const delayed = invisible.delayed ?? 0;
    return { visible: total - expired - inFlight - delayed, inFlight, delayed };
  }

  /**
   * Recomputes when a FIFO group can next be received from: once its first message is visible and
   * none of its messages is in flight. A group left without messages goes; one left with purged
   * messages only is retired until a message is sent to it or the sweeper deletes them.
   */
  refreshGroup(queue: Queue, groupId: string): void {
    const window = this.groupMessages(queue, groupId, IN_FLIGHT_WINDOW);
    if (window.length === 0) {
      if (this.statements.groupHasMessages.get(queue.id, groupId)) this.statements.setGroup.run(RETIRED, 0, queue.id, groupId);
      else this.statements.removeGroup.run(queue.id, groupId);
      return;
    }
    let availableAt = window[0]!.visible_at;
    for (const message of window) {
      if (message.receive_count > 0) availableAt = Math.max(availableAt, message.visible_at);
    }
    this.statements.setGroup.run(queue.purgedThrough, availableAt, queue.id, groupId);
  }
}

/** Messages enqueued at or before this instant are past the queue's retention period. */
export function retentionCutoff(queue: Queue, now: number): number {
  return now - Number(queue.attributes.MessageRetentionPeriod) * 1000;
}
