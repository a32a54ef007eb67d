import type pg from 'pg';
import { HELD_FOR_REPLAY, IN_FLIGHT_WINDOW, RETIRED, type RetentionCutoff, groupAvailableAt } from '../messages.js';
import { SqsError } from '../errors.js';
import type { QueueAttributes } from '../queue-attributes.js';
import type { DeduplicationPort, MessagePort, MoveTaskPort, QueuePort, ReceiveAttemptPort } from '../storage/ports.js';
import {
  type Attempt,
  type AttemptMessage,
  type AvailableGroup,
  type MessageContent,
  type MessageCounts,
  type MessageRow,
  type MoveTaskRow,
  type MoveTaskStatus,
  type NewMessage,
  type Permission,
  type Queue,
  type RateWindow,
  currentRateWindow,
} from '../storage/records.js';
import { CostlyRead, LARGE_COUNT } from './costly-read.js';

/** What runs a statement: the connection of a transaction, or the pool for a read outside one. */
export type Queryable = Pick<pg.ClientBase, 'query'>;

const rows = async <R extends pg.QueryResultRow>(db: Queryable, sql: string, values: unknown[]): Promise<R[]> => (await db.query<R>(sql, values)).rows;
const first = async <R extends pg.QueryResultRow>(db: Queryable, sql: string, values: unknown[]): Promise<R | undefined> => (await rows<R>(db, sql, values))[0];
const changes = async (db: Queryable, sql: string, values: unknown[]): Promise<number> => (await db.query(sql, values)).rowCount ?? 0;

/** The column of each field of a queue that changes. */
const QUEUE_COLUMNS = {
  attributes: 'attributes',
  tags: 'tags',
  permissions: 'permissions',
  modifiedAt: 'modified_at',
  purgedAt: 'purged_at',
  purgedThrough: 'purged_through',
} as const;

interface QueueRow {
  id: number;
  name: string;
  fifo: boolean;
  attributes: string;
  tags: string;
  permissions: string;
  created_at: number;
  modified_at: number;
  purged_at: number;
  purged_through: number;
}

/**
 * The queues, read from the database in each transaction: another node may have created, changed
 * or deleted one a moment ago, so none is kept in memory.
 */
export class PostgresQueues implements QueuePort {
  constructor(
    private readonly db: Queryable,
    readonly region: string,
    readonly accountId: string,
  ) {}

  arnOf(name: string): string {
    return `arn:aws:sqs:${this.region}:${this.accountId}:${name}`;
  }

  async byName(name: string): Promise<Queue | undefined> {
    const row = await first<QueueRow>(this.db, 'SELECT * FROM sqs_queues WHERE name = $1', [name]);
    return row && this.fromRow(row);
  }

  async byNameToChange(name: string): Promise<Queue | undefined> {
    const row = await first<QueueRow>(this.db, 'SELECT * FROM sqs_queues WHERE name = $1 FOR UPDATE', [name]);
    return row && this.fromRow(row);
  }

  byArn(arn: string): Promise<Queue | undefined> {
    const prefix = this.arnOf('');
    return arn.startsWith(prefix) ? this.byName(arn.slice(prefix.length)) : Promise.resolve(undefined);
  }

  async all(): Promise<Queue[]> {
    return (await rows<QueueRow>(this.db, 'SELECT * FROM sqs_queues ORDER BY id', [])).map((row) => this.fromRow(row));
  }

  async deletedAt(name: string): Promise<number | undefined> {
    return (await first<{ deleted_at: number }>(this.db, 'SELECT deleted_at FROM sqs_deleted_queues WHERE name = $1', [name]))?.deleted_at;
  }

  async forgetDeletions(before: number): Promise<void> {
    await this.db.query('DELETE FROM sqs_deleted_queues WHERE deleted_at <= $1', [before]);
  }

  // The row lock this takes orders a FIFO queue's sends, as their sequence numbers do.
  async nextSequence(queue: Queue): Promise<number> {
    return (await first<{ last_sequence: number }>(this.db, 'UPDATE sqs_queues SET last_sequence = last_sequence + 1 WHERE id = $1 RETURNING last_sequence', [queue.id]))!.last_sequence;
  }

  async create(name: string, fifo: boolean, attributes: QueueAttributes, tags: Record<string, string>, now: number): Promise<Queue> {
    const row = await first<QueueRow>(
      this.db,
      'INSERT INTO sqs_queues (name, fifo, attributes, tags, created_at, modified_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING *',
      [name, fifo, JSON.stringify(attributes), JSON.stringify(tags), now],
    );
    return this.fromRow(row!);
  }

  // Only the columns changed are written: another node's change to the others in the meantime stays.
  async update(queue: Queue, changes: Partial<Pick<Queue, 'attributes' | 'tags' | 'permissions' | 'modifiedAt' | 'purgedAt' | 'purgedThrough'>>): Promise<Queue> {
    const columns = Object.entries(changes).map(([key, value]) => [QUEUE_COLUMNS[key as keyof typeof QUEUE_COLUMNS], typeof value === 'object' ? JSON.stringify(value) : value] as const);
    if (columns.length > 0) {
      await this.db.query(`UPDATE sqs_queues SET ${columns.map(([column], index) => `${column} = $${index + 2}`).join(', ')} WHERE id = $1`, [
        queue.id,
        ...columns.map(([, value]) => value),
      ]);
    }
    return { ...queue, ...changes };
  }

  async remove(queue: Queue, now: number): Promise<void> {
    await this.db.query('DELETE FROM sqs_queues WHERE id = $1', [queue.id]);
    await this.db.query('INSERT INTO sqs_reclaim (queue_id) VALUES ($1) ON CONFLICT DO NOTHING', [queue.id]);
    await this.db.query(
      'INSERT INTO sqs_deleted_queues (name, deleted_at) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET deleted_at = EXCLUDED.deleted_at',
      [queue.name, now],
    );
  }

  async reclaimDeleted(limit: number): Promise<boolean> {
    let more = false;
    // Another node's sweeper may be at the same queue: it takes the next one.
    for (const { queue_id: id } of await rows<{ queue_id: number }>(this.db, 'SELECT queue_id FROM sqs_reclaim FOR UPDATE SKIP LOCKED', [])) {
      const reclaimed =
        (await changes(this.db, 'DELETE FROM sqs_messages WHERE id IN (SELECT id FROM sqs_messages WHERE queue_id = $1 LIMIT $2)', [id, limit])) +
        (await changes(this.db, 'DELETE FROM sqs_fifo_groups WHERE (queue_id, group_id) IN (SELECT queue_id, group_id FROM sqs_fifo_groups WHERE queue_id = $1 LIMIT $2)', [id, limit]));
      if (reclaimed === 0) await this.db.query('DELETE FROM sqs_reclaim WHERE queue_id = $1', [id]);
      more ||= reclaimed > 0;
    }
    return more;
  }

  private fromRow(row: QueueRow): Queue {
    return {
      id: row.id,
      name: row.name,
      fifo: row.fifo,
      arn: this.arnOf(row.name),
      attributes: JSON.parse(row.attributes) as QueueAttributes,
      tags: JSON.parse(row.tags) as Record<string, string>,
      permissions: JSON.parse(row.permissions) as Permission[],
      createdAt: row.created_at,
      modifiedAt: row.modified_at,
      purgedAt: row.purged_at,
      purgedThrough: row.purged_through,
    };
  }
}

const STATE = 'id, queue_id, epoch, group_id, enqueued_at, visible_at, receive_count, first_received_at, received_at, receipt_nonce';
const CONTENT = 'message_id, body, body_md5, attributes, attributes_md5, trace_header, deduplication_id, sequence_number, dead_letter_source, sent_at';
/** The visibility of a held message offered to the replay's take: before any other. */
const OFFERED_FOR_REPLAY = 0;

/** The counts of the queues whose counts are large, by queue id, with the epoch they were read in (a purge starts afresh): see CostlyRead. */
export type QueueCounts = Map<number, { readonly epoch: number; readonly read: CostlyRead<MessageCounts> }>;

/**
 * Messages on PostgreSQL, one row each. Receives lock what they take with FOR UPDATE SKIP LOCKED:
 * a standard queue's messages, and a FIFO queue's groups (a row per group), so that two nodes
 * taking at once never take the same message, nor the same group. Counts are counted: there are
 * no tallies to keep in step.
 */
export class PostgresMessages implements MessagePort {
  constructor(
    private readonly db: Queryable,
    private readonly retentionCutoff: RetentionCutoff,
    private readonly countsRead: QueueCounts,
  ) {}

  async insert(queue: Queue, message: NewMessage, _now: number): Promise<number> {
    // The queue's epoch is read under a share lock: a purge committing meanwhile is waited for, so a
    // send acknowledged after the purge is never of the purged epoch.
    const stored = await first<{ id: number; epoch: number }>(
      this.db,
      `WITH queue AS (SELECT purged_through FROM sqs_queues WHERE id = $1 FOR SHARE)
       INSERT INTO sqs_messages (queue_id, epoch, group_id, enqueued_at, visible_at, ${CONTENT})
       SELECT $1, purged_through, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 FROM queue
       RETURNING id, epoch`,
      [
        queue.id,
        message.group_id,
        message.enqueued_at,
        message.visible_at,
        message.message_id,
        message.body,
        message.body_md5,
        message.attributes,
        message.attributes_md5,
        message.trace_header,
        message.deduplication_id,
        message.sequence_number,
        message.dead_letter_source,
        message.sent_at,
      ],
    );
    // Deleted by another node since this request found it.
    if (!stored) throw new SqsError('QueueDoesNotExist', 'The specified queue does not exist.');
    // A message sent to a group with purged messages only is its first: it decides the group's availability.
    if (queue.fifo) {
      await this.db.query(
        `INSERT INTO sqs_fifo_groups (queue_id, group_id, epoch, available_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (queue_id, group_id) DO UPDATE SET epoch = EXCLUDED.epoch, available_at = EXCLUDED.available_at
         WHERE sqs_fifo_groups.epoch <> EXCLUDED.epoch`,
        [queue.id, message.group_id, stored.epoch, message.visible_at],
      );
    }
    return stored.id;
  }

  // Locked: what the caller does next (delete it, change its visibility) must not cross another node's change.
  byId(id: number): Promise<MessageRow | undefined> {
    return first<MessageRow>(this.db, `SELECT ${STATE} FROM sqs_messages WHERE id = $1 FOR UPDATE`, [id]);
  }

  async content(message: MessageRow): Promise<MessageContent> {
    const content = await first<MessageContent>(this.db, `SELECT ${CONTENT} FROM sqs_messages WHERE id = $1`, [message.id]);
    if (!content) throw new Error(`message ${message.id} is gone`);
    return content;
  }

  visible(queue: Queue, now: number, limit: number): Promise<MessageRow[]> {
    return rows<MessageRow>(
      this.db,
      `SELECT ${STATE} FROM sqs_messages WHERE queue_id = $1 AND epoch = $2 AND visible_at <= $3 ORDER BY visible_at LIMIT $4 FOR UPDATE SKIP LOCKED`,
      [queue.id, queue.purgedThrough, now, limit],
    );
  }

  inFlight(queue: Queue, now: number): Promise<MessageRow[]> {
    return rows<MessageRow>(
      this.db,
      `SELECT ${STATE} FROM sqs_messages WHERE queue_id = $1 AND epoch = $2 AND visible_at > $3 AND visible_at < $4 AND receive_count > 0 FOR UPDATE`,
      [queue.id, queue.purgedThrough, now, HELD_FOR_REPLAY],
    );
  }

  expired(queue: Queue, now: number, limit: number): Promise<MessageRow[]> {
    return rows<MessageRow>(this.db, `SELECT ${STATE} FROM sqs_messages WHERE queue_id = $1 AND enqueued_at <= $2 LIMIT $3 FOR UPDATE SKIP LOCKED`, [
      queue.id,
      this.retentionCutoff(queue, now),
      limit,
    ]);
  }

  purged(queue: Queue, limit: number): Promise<MessageRow[]> {
    return rows<MessageRow>(this.db, `SELECT ${STATE} FROM sqs_messages WHERE queue_id = $1 AND epoch < $2 LIMIT $3 FOR UPDATE SKIP LOCKED`, [
      queue.id,
      queue.purgedThrough,
      limit,
    ]);
  }

  // The sequence's last value: no message stored before this call is of the epoch a purge starts with it.
  async lastId(): Promise<number> {
    return (await first<{ id: number }>(this.db, 'SELECT last_value AS id FROM sqs_messages_id_seq', []))!.id;
  }

  async nextAvailableAt(queue: Queue, now: number): Promise<number | undefined> {
    const sql = queue.fifo
      ? 'SELECT min(available_at) AS at FROM sqs_fifo_groups WHERE queue_id = $1 AND epoch = $2 AND available_at > $3'
      : 'SELECT min(visible_at) AS at FROM sqs_messages WHERE queue_id = $1 AND epoch = $2 AND visible_at > $3';
    return (await first<{ at: number | null }>(this.db, sql, [queue.id, queue.purgedThrough, now]))?.at ?? undefined;
  }

  async anyAvailable(queue: Queue, now: number): Promise<boolean> {
    const sql = queue.fifo
      ? 'SELECT 1 FROM sqs_fifo_groups WHERE queue_id = $1 AND epoch = $2 AND available_at <= $3 LIMIT 1'
      : 'SELECT 1 FROM sqs_messages WHERE queue_id = $1 AND epoch = $2 AND visible_at <= $3 LIMIT 1';
    return (await rows(this.db, sql, [queue.id, queue.purgedThrough, now])).length > 0;
  }

  // A group is taken by locking its row: another node's receive skips it until this one commits,
  // and then sees it locked for the visibility timeout.
  availableGroups(queue: Queue, now: number, after: AvailableGroup | undefined, limit: number): Promise<AvailableGroup[]> {
    return rows<AvailableGroup>(
      this.db,
      `SELECT group_id, available_at FROM sqs_fifo_groups
       WHERE queue_id = $1 AND epoch = $2 AND available_at <= $3 AND (available_at, group_id) > ($4, $5)
       ORDER BY available_at, group_id LIMIT $6 FOR UPDATE SKIP LOCKED`,
      [queue.id, queue.purgedThrough, now, after?.available_at ?? Number.MIN_SAFE_INTEGER, after?.group_id ?? '', limit],
    );
  }

  groupMessages(queue: Queue, groupId: string, limit: number, afterId = 0): Promise<MessageRow[]> {
    return rows<MessageRow>(
      this.db,
      `SELECT ${STATE} FROM sqs_messages WHERE queue_id = $1 AND group_id = $2 AND epoch = $3 AND id > $4 ORDER BY id LIMIT $5`,
      [queue.id, groupId, queue.purgedThrough, afterId, limit],
    );
  }

  async markReceived(message: MessageRow, now: number, visibleAt: number, nonce: string): Promise<void> {
    await this.db.query(
      `UPDATE sqs_messages SET visible_at = $2, receive_count = receive_count + 1, first_received_at = coalesce(first_received_at, $3), received_at = $3, receipt_nonce = $4
       WHERE id = $1`,
      [message.id, visibleAt, now, nonce],
    );
    message.visible_at = visibleAt;
    message.receive_count += 1;
    message.first_received_at ??= now;
    message.received_at = now;
    message.receipt_nonce = nonce;
  }

  async lockGroup(queue: Queue, groupId: string, until: number): Promise<void> {
    await this.db.query('UPDATE sqs_fifo_groups SET epoch = $1, available_at = $2 WHERE queue_id = $3 AND group_id = $4', [queue.purgedThrough, until, queue.id, groupId]);
  }

  async refreshGroup(queue: Queue, groupId: string): Promise<void> {
    // The group's row locked before its messages are read: a send to the group that holds it (its
    // upsert) is waited for and then seen, instead of its message being left without the row.
    await this.db.query('SELECT 1 FROM sqs_fifo_groups WHERE queue_id = $1 AND group_id = $2 FOR UPDATE', [queue.id, groupId]);
    const window = (
      await rows<{ visible_at: number; receive_count: number }>(
        this.db,
        'SELECT visible_at, receive_count FROM sqs_messages WHERE queue_id = $1 AND group_id = $2 AND epoch = $3 ORDER BY id LIMIT $4',
        [queue.id, groupId, queue.purgedThrough, IN_FLIGHT_WINDOW],
      )
    ).map((row) => [row.visible_at, row.receive_count] as const);
    if (window.length > 0) {
      await this.setGroup(queue.id, groupId, queue.purgedThrough, groupAvailableAt(window));
    } else if ((await rows(this.db, 'SELECT 1 FROM sqs_messages WHERE queue_id = $1 AND group_id = $2 LIMIT 1', [queue.id, groupId])).length > 0) {
      await this.setGroup(queue.id, groupId, RETIRED, 0);
    } else {
      await this.db.query('DELETE FROM sqs_fifo_groups WHERE queue_id = $1 AND group_id = $2', [queue.id, groupId]);
    }
  }

  async setVisibleAt(queue: Queue, message: MessageRow, visibleAt: number, now: number): Promise<void> {
    // A message held for the replay that would be visible now stays held.
    const row = await first<{ visible_at: number }>(
      this.db,
      'UPDATE sqs_messages SET visible_at = CASE WHEN held AND $2::bigint <= $3::bigint THEN $4::bigint ELSE $2::bigint END WHERE id = $1 RETURNING visible_at',
      [message.id, visibleAt, now, HELD_FOR_REPLAY],
    );
    if (row) message.visible_at = row.visible_at;
    if (queue.fifo && message.group_id !== null) await this.refreshGroup(queue, message.group_id);
  }

  async remove(queue: Queue, message: MessageRow, _now: number): Promise<void> {
    await this.db.query('DELETE FROM sqs_messages WHERE id = $1', [message.id]);
    // A purged message's group is of an older epoch: the sweeper drops it with the last of them.
    if (queue.fifo && message.group_id !== null && message.epoch === queue.purgedThrough) await this.refreshGroup(queue, message.group_id);
  }

  async removePurgedGroups(queue: Queue): Promise<void> {
    await this.db.query('DELETE FROM sqs_fifo_groups WHERE queue_id = $1 AND epoch < $2', [queue.id, queue.purgedThrough]);
  }

  // Counts are counted: there are no tallies to forget.
  async forgetPastTallies(): Promise<void> {}

  async applyQueueDelay(queue: Queue, _now: number): Promise<void> {
    if (!queue.fifo) return;
    await this.db.query('UPDATE sqs_messages SET visible_at = enqueued_at + $1 WHERE queue_id = $2 AND epoch = $3 AND receive_count = 0 AND NOT held', [
      Number(queue.attributes.DelaySeconds) * 1000,
      queue.id,
      queue.purgedThrough,
    ]);
    for (const { group_id: groupId } of await rows<{ group_id: string }>(this.db, 'SELECT group_id FROM sqs_fifo_groups WHERE queue_id = $1 AND epoch = $2', [queue.id, queue.purgedThrough])) {
      await this.refreshGroup(queue, groupId);
    }
  }

  // SQS's counts are approximate: a large queue's are read again only as often as their cost allows.
  async counts(queue: Queue, now: number): Promise<MessageCounts> {
    const kept = this.countsRead.get(queue.id);
    const read = kept?.epoch === queue.purgedThrough ? kept.read : new CostlyRead<MessageCounts>((counts) => counts.visible + counts.inFlight + counts.delayed >= LARGE_COUNT);
    const counts = await read.get(async () => {
      const row = await first<{ visible: number; in_flight: number; delayed: number }>(
        this.db,
        `SELECT count(*) FILTER (WHERE visible_at <= $4) AS visible,
                count(*) FILTER (WHERE visible_at > $4 AND receive_count > 0) AS in_flight,
                count(*) FILTER (WHERE visible_at > $4 AND receive_count = 0) AS delayed
         FROM sqs_messages WHERE queue_id = $1 AND epoch = $2 AND enqueued_at > $3`,
        [queue.id, queue.purgedThrough, this.retentionCutoff(queue, now), now],
      );
      return { visible: row!.visible, inFlight: row!.in_flight, delayed: row!.delayed };
    });
    // Only large counts are kept: a node holds none for its many small queues.
    if (read.costly) this.countsRead.set(queue.id, { epoch: queue.purgedThrough, read });
    else this.countsRead.delete(queue.id);
    return counts;
  }

  async holdForReplay(id: number): Promise<void> {
    await this.db.query('UPDATE sqs_messages SET held = true WHERE id = $1', [id]);
  }

  async anyHeldForReplay(): Promise<boolean> {
    return (await rows(this.db, 'SELECT 1 FROM sqs_messages WHERE held LIMIT 1', [])).length > 0;
  }

  // In a FIFO queue, the held messages of the first one's group: a group stays locked while any of its first messages is held.
  async offerHeld(queue: Queue, limit: number, _now: number): Promise<void> {
    const held = `SELECT ${STATE} FROM sqs_messages WHERE queue_id = $1 AND epoch = $2 AND visible_at = $3`;
    const values = [queue.id, queue.purgedThrough, HELD_FOR_REPLAY];
    let offered = await rows<MessageRow>(this.db, `${held} ORDER BY receive_count, enqueued_at LIMIT $4 FOR UPDATE`, [...values, queue.fifo ? 1 : limit]);
    const group = offered[0]?.group_id;
    if (queue.fifo && group) offered = await rows<MessageRow>(this.db, `${held} AND group_id = $5 ORDER BY id LIMIT $4 FOR UPDATE`, [...values, Math.max(limit, IN_FLIGHT_WINDOW), group]);
    for (const message of offered) await this.moveVisibility(queue, message, OFFERED_FOR_REPLAY);
  }

  async holdUntaken(queue: Queue, _now: number): Promise<void> {
    const offered = await rows<MessageRow>(this.db, `SELECT ${STATE} FROM sqs_messages WHERE held AND queue_id = $1 AND epoch = $2 AND visible_at = $3 FOR UPDATE`, [
      queue.id,
      queue.purgedThrough,
      OFFERED_FOR_REPLAY,
    ]);
    for (const message of offered) await this.moveVisibility(queue, message, HELD_FOR_REPLAY);
  }

  private async moveVisibility(queue: Queue, message: MessageRow, visibleAt: number): Promise<void> {
    await this.db.query('UPDATE sqs_messages SET visible_at = $2 WHERE id = $1', [message.id, visibleAt]);
    message.visible_at = visibleAt;
    if (queue.fifo && message.group_id !== null) await this.refreshGroup(queue, message.group_id);
  }

  private async setGroup(queueId: number, groupId: string, epoch: number, availableAt: number): Promise<void> {
    await this.db.query('UPDATE sqs_fifo_groups SET epoch = $1, available_at = $2 WHERE queue_id = $3 AND group_id = $4', [epoch, availableAt, queueId, groupId]);
  }
}

/** A 64-bit key for an advisory lock on a name (PostgreSQL's own hash of the text). */
const LOCK_OF = 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))';

export class PostgresDeduplication implements DeduplicationPort {
  constructor(private readonly db: Queryable) {}

  // Two nodes taking the same id at once: the second waits for the first to commit, then sees its row.
  async find(queueId: number, scope: string, deduplicationId: string, now: number): Promise<{ message_id: string; sequence_number: string | null } | undefined> {
    await this.db.query(LOCK_OF, [`deduplication:${queueId}:${scope}:${deduplicationId}`]);
    return first(
      this.db,
      'SELECT message_id, sequence_number FROM sqs_deduplication WHERE queue_id = $1 AND scope = $2 AND deduplication_id = $3 AND expires_at > $4',
      [queueId, scope, deduplicationId, now],
    );
  }

  async remember(queueId: number, scope: string, deduplicationId: string, messageId: string, sequenceNumber: string | null, expiresAt: number): Promise<void> {
    await this.db.query(
      `INSERT INTO sqs_deduplication (queue_id, scope, deduplication_id, message_id, sequence_number, expires_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (queue_id, scope, deduplication_id) DO UPDATE SET message_id = EXCLUDED.message_id, sequence_number = EXCLUDED.sequence_number, expires_at = EXCLUDED.expires_at`,
      [queueId, scope, deduplicationId, messageId, sequenceNumber, expiresAt],
    );
  }

  forgetExpired(now: number, limit: number): Promise<number> {
    return changes(
      this.db,
      `DELETE FROM sqs_deduplication WHERE (queue_id, scope, deduplication_id) IN
         (SELECT queue_id, scope, deduplication_id FROM sqs_deduplication WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [now, limit],
    );
  }
}

export class PostgresReceiveAttempts implements ReceiveAttemptPort {
  constructor(private readonly db: Queryable) {}

  async find(queueId: number, attemptId: string, now: number): Promise<Attempt | undefined> {
    const row = await first<{ message_ids: string; expires_at: number }>(
      this.db,
      'SELECT message_ids, expires_at FROM sqs_receive_attempts WHERE queue_id = $1 AND attempt_id = $2 AND expires_at > $3',
      [queueId, attemptId, now],
    );
    return row ? { messages: JSON.parse(row.message_ids) as AttemptMessage[], expiresAt: row.expires_at } : undefined;
  }

  async remember(queueId: number, attemptId: string, messages: AttemptMessage[], expiresAt: number): Promise<void> {
    await this.db.query(
      `INSERT INTO sqs_receive_attempts (queue_id, attempt_id, message_ids, expires_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (queue_id, attempt_id) DO UPDATE SET message_ids = EXCLUDED.message_ids, expires_at = EXCLUDED.expires_at`,
      [queueId, attemptId, JSON.stringify(messages), expiresAt],
    );
  }

  forgetExpired(now: number, limit: number): Promise<number> {
    return changes(
      this.db,
      `DELETE FROM sqs_receive_attempts WHERE (queue_id, attempt_id) IN
         (SELECT queue_id, attempt_id FROM sqs_receive_attempts WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [now, limit],
    );
  }
}

export class PostgresMoveTasks implements MoveTaskPort {
  constructor(private readonly db: Queryable) {}

  async insert(task: Pick<MoveTaskRow, 'task_handle' | 'source_arn' | 'destination_arn' | 'max_per_second' | 'to_move' | 'started_at'>): Promise<void> {
    await this.db.query(
      `INSERT INTO sqs_move_tasks (task_handle, source_arn, destination_arn, max_per_second, status, moved, to_move, started_at)
       VALUES ($1, $2, $3, $4, 'RUNNING', 0, $5, $6)`,
      [task.task_handle, task.source_arn, task.destination_arn, task.max_per_second, task.to_move, task.started_at],
    );
  }

  byHandle(handle: string): Promise<MoveTaskRow | undefined> {
    return first<MoveTaskRow>(this.db, 'SELECT * FROM sqs_move_tasks WHERE task_handle = $1', [handle]);
  }

  // One node's mover steps a task at a time: another node's skips the tasks it holds.
  active(): Promise<MoveTaskRow[]> {
    return rows<MoveTaskRow>(this.db, `SELECT * FROM sqs_move_tasks WHERE status IN ('RUNNING', 'CANCELLING') FOR UPDATE SKIP LOCKED`, []);
  }

  activeFor(sourceArn: string): Promise<MoveTaskRow | undefined> {
    return first<MoveTaskRow>(this.db, `SELECT * FROM sqs_move_tasks WHERE source_arn = $1 AND status IN ('RUNNING', 'CANCELLING') LIMIT 1`, [sourceArn]);
  }

  recent(sourceArn: string, since: number, limit: number): Promise<MoveTaskRow[]> {
    return rows<MoveTaskRow>(this.db, 'SELECT * FROM sqs_move_tasks WHERE source_arn = $1 AND started_at >= $2 ORDER BY started_at DESC, task_handle DESC LIMIT $3', [
      sourceArn,
      since,
      limit,
    ]);
  }

  async setStatus(handle: string, status: MoveTaskStatus, failureReason: string | null = null): Promise<void> {
    await this.db.query('UPDATE sqs_move_tasks SET status = $1, failure_reason = $2 WHERE task_handle = $3', [status, failureReason, handle]);
  }

  // The window is in the task's row, which the node stepping the task holds locked (see `active`).
  rateWindow(task: MoveTaskRow, now: number): RateWindow {
    const { rate_window_start: start, rate_window_moved: moved } = task as MoveTaskRow & { rate_window_start: number; rate_window_moved: number };
    return currentRateWindow({ start, moved }, now);
  }

  async addMoved(handle: string, count: number, window?: RateWindow): Promise<void> {
    await this.db.query(
      'UPDATE sqs_move_tasks SET moved = moved + $1, rate_window_start = coalesce($3, rate_window_start), rate_window_moved = coalesce($4, rate_window_moved) WHERE task_handle = $2',
      [count, handle, window?.start ?? null, window?.moved ?? null],
    );
  }

  async forget(before: number): Promise<void> {
    await this.db.query(`DELETE FROM sqs_move_tasks WHERE started_at < $1 AND status NOT IN ('RUNNING', 'CANCELLING')`, [before]);
  }
}
