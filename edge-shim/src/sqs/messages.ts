import type { Db } from './database.js';
import type { Queue } from './queues.js';

/** A row of the `messages` table. */
export interface MessageRow {
  id: number;
  queue_id: number;
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

export type NewMessage = Omit<MessageRow, 'id' | 'receive_count' | 'first_received_at' | 'received_at' | 'receipt_nonce'>;

export interface MessageCounts {
  visible: number;
  inFlight: number;
  delayed: number;
}

// A FIFO group's messages in flight are always among its first ten: a receive takes at most ten
// from the head of an unlocked group, and the group stays locked while any of them is in flight.
const IN_FLIGHT_WINDOW = 10;

/**
 * Message storage for one database: every statement the queue operations run against `messages`
 * and `fifo_groups`, keeping a FIFO group's head and lock in step with its messages.
 */
export class MessageStore {
  private readonly statements;

  constructor(db: Db) {
    this.statements = {
      insert: db.prepare(
        `INSERT INTO messages (queue_id, message_id, body, body_md5, attributes, attributes_md5, trace_header,
           group_id, deduplication_id, sequence_number, dead_letter_source, sent_at, enqueued_at, visible_at)
         VALUES (@queue_id, @message_id, @body, @body_md5, @attributes, @attributes_md5, @trace_header,
           @group_id, @deduplication_id, @sequence_number, @dead_letter_source, @sent_at, @enqueued_at, @visible_at)`,
      ),
      byId: db.prepare<[number], MessageRow>('SELECT * FROM messages WHERE id = ?'),
      ready: db.prepare<[number, number, number, number, number], MessageRow>(
        `SELECT * FROM messages WHERE queue_id = ? AND visible_at <= ? AND enqueued_at > ? AND id > ?
         ORDER BY visible_at LIMIT ?`,
      ),
      expired: db.prepare<[number, number, number], MessageRow>(
        'SELECT * FROM messages WHERE queue_id = ? AND enqueued_at <= ? LIMIT ?',
      ),
      purged: db.prepare<[number, number, number], MessageRow>(
        'SELECT * FROM messages WHERE queue_id = ? AND id <= ? LIMIT ?',
      ),
      markReceived: db.prepare(
        `UPDATE messages SET visible_at = @visibleAt, receive_count = receive_count + 1,
           first_received_at = coalesce(first_received_at, @now), received_at = @now, receipt_nonce = @nonce
         WHERE id = @id`,
      ),
      setVisibleAt: db.prepare('UPDATE messages SET visible_at = ? WHERE id = ?'),
      remove: db.prepare('DELETE FROM messages WHERE id = ?'),
      groupInsert: db.prepare(
        `INSERT INTO fifo_groups (queue_id, group_id, head_id) VALUES (?, ?, ?)
         ON CONFLICT (queue_id, group_id) DO NOTHING`,
      ),
      unlockedGroups: db.prepare<[number, number, number, number], { group_id: string; head_id: number }>(
        `SELECT group_id, head_id FROM fifo_groups WHERE queue_id = ? AND head_id > ? AND locked_until <= ?
         ORDER BY head_id LIMIT ?`,
      ),
      groupMessages: db.prepare<[number, string, number], MessageRow>(
        'SELECT * FROM messages WHERE queue_id = ? AND group_id = ? ORDER BY id LIMIT ?',
      ),
      groupHead: db.prepare<[number, string], { id: number }>(
        'SELECT id FROM messages WHERE queue_id = ? AND group_id = ? ORDER BY id LIMIT 1',
      ),
      groupLockEnd: db.prepare<[number, string, number], { until: number | null }>(
        `SELECT max(visible_at) AS until FROM (
           SELECT visible_at, receive_count FROM messages WHERE queue_id = ? AND group_id = ? ORDER BY id LIMIT ?
         ) WHERE receive_count > 0`,
      ),
      setGroupHead: db.prepare('UPDATE fifo_groups SET head_id = ? WHERE queue_id = ? AND group_id = ?'),
      setGroupLock: db.prepare('UPDATE fifo_groups SET locked_until = ? WHERE queue_id = ? AND group_id = ?'),
      removeGroup: db.prepare('DELETE FROM fifo_groups WHERE queue_id = ? AND group_id = ?'),
      countNotVisible: db.prepare<[number, number, number], { inFlight: number; delayed: number }>(
        `SELECT coalesce(sum(receive_count > 0), 0) AS inFlight, coalesce(sum(receive_count = 0), 0) AS delayed
         FROM messages WHERE queue_id = ? AND visible_at > ? AND id > ?`,
      ),
      countAll: db.prepare<[number, number], { total: number }>(
        'SELECT count(*) AS total FROM messages WHERE queue_id = ? AND id > ?',
      ),
      lastId: db.prepare<[], { id: number }>(`SELECT seq AS id FROM sqlite_sequence WHERE name = 'messages'`),
      nextVisibleAt: db.prepare<[number, number], { at: number | null }>(
        'SELECT min(visible_at) AS at FROM messages WHERE queue_id = ? AND visible_at > ?',
      ),
    };
  }

  insert(queue: Queue, message: NewMessage): number {
    const id = Number(this.statements.insert.run(message).lastInsertRowid);
    if (queue.fifo) this.statements.groupInsert.run(queue.id, message.group_id, id);
    return id;
  }

  byId(id: number): MessageRow | undefined {
    return this.statements.byId.get(id);
  }

  /** Visible, unexpired, unpurged messages of a standard queue, oldest visibility first. */
  ready(queue: Queue, now: number, limit: number): MessageRow[] {
    return this.statements.ready.all(queue.id, now, retentionCutoff(queue, now), queue.purgedThrough, limit);
  }

  /** Messages past their retention period, for the sweeper. */
  expired(queue: Queue, now: number, limit: number): MessageRow[] {
    return this.statements.expired.all(queue.id, retentionCutoff(queue, now), limit);
  }

  /** Messages hidden by PurgeQueue and not yet deleted, for the sweeper. */
  purged(queue: Queue, limit: number): MessageRow[] {
    return queue.purgedThrough === 0 ? [] : this.statements.purged.all(queue.id, queue.purgedThrough, limit);
  }

  /** The highest message row id ever given. */
  lastId(): number {
    return this.statements.lastId.get()?.id ?? 0;
  }

  /** When the next invisible message of a queue becomes visible, if any is invisible now. */
  nextVisibleAt(queue: Queue, now: number): number | undefined {
    return this.statements.nextVisibleAt.get(queue.id, now)?.at ?? undefined;
  }

  /** Message groups of a FIFO queue with nothing in flight, oldest head first, from after a head. */
  unlockedGroups(queueId: number, now: number, afterHead: number, limit: number): Array<{ group_id: string; head_id: number }> {
    return this.statements.unlockedGroups.all(queueId, afterHead, now, limit);
  }

  /** The first messages of a FIFO group, in send order. */
  groupMessages(queueId: number, groupId: string, limit: number): MessageRow[] {
    return this.statements.groupMessages.all(queueId, groupId, limit);
  }

  markReceived(message: MessageRow, now: number, visibleAt: number, nonce: string): void {
    this.statements.markReceived.run({ id: message.id, now, visibleAt, nonce });
    message.visible_at = visibleAt;
    message.receive_count += 1;
    message.first_received_at ??= now;
    message.receipt_nonce = nonce;
  }

  /** Locks a FIFO group until its messages just received become visible again. */
  lockGroup(queueId: number, groupId: string, until: number): void {
    this.statements.setGroupLock.run(until, queueId, groupId);
  }

  setVisibleAt(queue: Queue, message: MessageRow, visibleAt: number): void {
    this.statements.setVisibleAt.run(visibleAt, message.id);
    message.visible_at = visibleAt;
    if (queue.fifo && message.group_id !== null) this.refreshGroupLock(queue.id, message.group_id);
  }

  remove(queue: Queue, message: MessageRow): void {
    this.statements.remove.run(message.id);
    if (!queue.fifo || message.group_id === null) return;
    const head = this.statements.groupHead.get(message.queue_id, message.group_id);
    if (!head) {
      this.statements.removeGroup.run(message.queue_id, message.group_id);
      return;
    }
    this.statements.setGroupHead.run(head.id, message.queue_id, message.group_id);
    this.refreshGroupLock(message.queue_id, message.group_id);
  }

  counts(queue: Queue, now: number): MessageCounts {
    const { total } = this.statements.countAll.get(queue.id, queue.purgedThrough)!;
    const { inFlight, delayed } = this.statements.countNotVisible.get(queue.id, now, queue.purgedThrough)!;
    return { visible: total - inFlight - delayed, inFlight, delayed };
  }

  private refreshGroupLock(queueId: number, groupId: string): void {
    const { until } = this.statements.groupLockEnd.get(queueId, groupId, IN_FLIGHT_WINDOW)!;
    this.statements.setGroupLock.run(until ?? 0, queueId, groupId);
  }
}

/** Messages enqueued at or before this instant are past the queue's retention period. */
export function retentionCutoff(queue: Queue, now: number): number {
  return now - Number(queue.attributes.MessageRetentionPeriod) * 1000;
}
