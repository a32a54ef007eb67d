import type { Db } from './database.js';
import { SqsError } from './errors.js';
import type { QueueAttributes } from './queue-attributes.js';
import type { QueuePort } from './storage/ports.js';
import { type Step, call } from './storage/step.js';
import type { Permission, Queue } from './storage/records.js';

interface QueueRow {
  id: number;
  name: string;
  fifo: number;
  attributes: string;
  tags: string;
  permissions: string;
  created_at: number;
  modified_at: number;
  purged_at: number;
  purged_through: number;
}

const STANDARD_NAME = /^[A-Za-z0-9_-]{1,80}$/;
// The .fifo suffix counts toward the 80 characters.
const FIFO_NAME = /^[A-Za-z0-9_-]{1,75}\.fifo$/;

/** Queue names: 1 to 80 alphanumerics, hyphens and underscores; a FIFO queue's name ends in `.fifo`. */
export function checkQueueName(name: string, fifo: boolean): void {
  if (fifo && !FIFO_NAME.test(name)) {
    throw new SqsError(
      'InvalidParameterValue',
      'The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.',
    );
  }
  if (!fifo && !STANDARD_NAME.test(name)) {
    throw new SqsError('InvalidParameterValue', 'Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length');
  }
}

/**
 * The account and queue name a queue URL names, with any host (clients reach the server under many
 * names), or a path alone; undefined when it names no queue (a broken percent-escape included).
 */
export function parseQueueUrl(queueUrl: string): { account: string; name: string } | undefined {
  const match = /^(?:[a-z][a-z0-9+.-]*:\/\/[^/]*)?\/([^/]+)\/([^/?#]+)\/?$/i.exec(queueUrl);
  if (!match) return undefined;
  try {
    return { account: match[1]!, name: decodeURIComponent(match[2]!) };
  } catch {
    return undefined;
  }
}

/**
 * The queue a client's QueueUrl names: a queue URL, or, as SQS takes it too, a queue's name alone
 * (its own account's queue of that name); undefined when it names no queue.
 */
export function queueReference(queueUrl: string): { account: string | undefined; name: string } | undefined {
  return parseQueueUrl(queueUrl) ?? (STANDARD_NAME.test(queueUrl) || FIFO_NAME.test(queueUrl) ? { account: undefined, name: queueUrl } : undefined);
}

/** The queue a QueueUrl names (see queueReference). Any host is accepted (clients reach the server under many names). */
export function* queueByUrl(queues: QueuePort, queueUrl: string, purpose: 'read' | 'change' = 'read'): Step<Queue> {
  const parsed = queueReference(queueUrl);
  const inAccount = parsed && (parsed.account ?? queues.accountId) === queues.accountId;
  const queue = inAccount ? yield* call(purpose === 'change' ? queues.byNameToChange(parsed.name) : queues.byName(parsed.name)) : undefined;
  if (!queue) throw new SqsError('QueueDoesNotExist', 'The specified queue does not exist.');
  return queue;
}

/**
 * The queues of the one account this server holds, kept in memory in front of the `queues` table
 * (every request resolves a queue; none should pay a query for it). Writes go to the table first and
 * to the cache after, inside the caller's transaction: `undoingOnFailure` puts the cache back when
 * one operation's savepoint rolls back, `reload` when a whole commit does.
 */
export class QueueRegistry implements QueuePort {
  private readonly byNameCache = new Map<string, Queue>();
  /** Queues deleted (or possibly so) whose messages may not all be reclaimed yet. */
  private readonly deletedIds = new Set<number>();
  private lookForLeftovers = true;
  /** How to put back the cache changes of the operation running now, last first. */
  private undo: Array<() => void> | undefined;
  private readonly statements;

  constructor(
    db: Db,
    readonly region: string,
    readonly accountId: string,
  ) {
    this.statements = {
      all: db.prepare<[], QueueRow>('SELECT * FROM queues'),
      one: db.prepare<[number], QueueRow>('SELECT * FROM queues WHERE id = ?'),
      insert: db.prepare(
        `INSERT INTO queues (name, fifo, attributes, tags, created_at, modified_at)
         VALUES (@name, @fifo, @attributes, @tags, @now, @now)`,
      ),
      update: db.prepare(
        `UPDATE queues SET attributes = @attributes, tags = @tags, permissions = @permissions,
         modified_at = @modifiedAt, purged_at = @purgedAt, purged_through = @purgedThrough WHERE id = @id`,
      ),
      remove: db.prepare('DELETE FROM queues WHERE id = ?'),
      exists: db.prepare<[number], { id: number }>('SELECT id FROM queues WHERE id = ?'),
      // Index seeks, one per queue id present: cheap however many messages there are.
      messagesQueueAfter: db.prepare<[number], { queue_id: number }>('SELECT queue_id FROM message_states WHERE queue_id > ? ORDER BY queue_id LIMIT 1'),
      groupsQueueAfter: db.prepare<[number], { queue_id: number }>('SELECT queue_id FROM fifo_groups WHERE queue_id > ? ORDER BY queue_id LIMIT 1'),
      talliesQueueAfter: db.prepare<[number], { queue_id: number }>('SELECT queue_id FROM invisible_tallies WHERE queue_id > ? ORDER BY queue_id LIMIT 1'),
      // Deleting a message's state deletes the message too (a trigger).
      reclaimMessages: db.prepare('DELETE FROM message_states WHERE id IN (SELECT id FROM message_states WHERE queue_id = ? LIMIT ?)'),
      reclaimTallies: db.prepare(
        'DELETE FROM invisible_tallies WHERE (queue_id, epoch, second) IN (SELECT queue_id, epoch, second FROM invisible_tallies WHERE queue_id = ? LIMIT ?)',
      ),
      reclaimGroups: db.prepare(
        'DELETE FROM fifo_groups WHERE queue_id = @id AND group_id IN (SELECT group_id FROM fifo_groups WHERE queue_id = @id LIMIT @limit)',
      ),
      recordDeletion: db.prepare('INSERT OR REPLACE INTO deleted_queues (name, deleted_at) VALUES (?, ?)'),
      deletedAt: db.prepare<[string], { deleted_at: number }>('SELECT deleted_at FROM deleted_queues WHERE name = ?'),
      forgetDeletions: db.prepare('DELETE FROM deleted_queues WHERE deleted_at <= ?'),
      nextSequence: db.prepare<[number], { last_sequence: number }>(
        'UPDATE queues SET last_sequence = last_sequence + 1 WHERE id = ? RETURNING last_sequence',
      ),
    };
    this.reload();
  }

  reload(): void {
    this.lookForLeftovers = true;
    this.byNameCache.clear();
    for (const row of this.statements.all.all()) this.byNameCache.set(row.name, this.fromRow(row));
  }

  /** Runs one operation; if it throws (its savepoint then rolls back), its cache changes are undone too. */
  undoingOnFailure<T>(work: () => T): T {
    const undo: Array<() => void> = [];
    this.undo = undo;
    try {
      return work();
    } catch (error) {
      for (const step of undo.reverse()) step();
      throw error;
    } finally {
      this.undo = undefined;
    }
  }

  arnOf(name: string): string {
    return `arn:aws:sqs:${this.region}:${this.accountId}:${name}`;
  }

  byName(name: string): Queue | undefined {
    return this.byNameCache.get(name);
  }

  // One process writes the file, in one transaction at a time: nothing else can change the queue meanwhile.
  byNameToChange(name: string): Queue | undefined {
    return this.byName(name);
  }

  byArn(arn: string): Queue | undefined {
    const prefix = `arn:aws:sqs:${this.region}:${this.accountId}:`;
    return arn.startsWith(prefix) ? this.byNameCache.get(arn.slice(prefix.length)) : undefined;
  }

  all(): Queue[] {
    return [...this.byNameCache.values()];
  }

  /** When the name was last deleted, for the 60-second wait before it can be created again. */
  deletedAt(name: string): number | undefined {
    return this.statements.deletedAt.get(name)?.deleted_at;
  }

  /** Forgets deletions made at or before this instant. */
  forgetDeletions(before: number): void {
    this.statements.forgetDeletions.run(before);
  }

  /** The next number of the queue's counter of FIFO sequence numbers. */
  nextSequence(queue: Queue): number {
    return this.statements.nextSequence.get(queue.id)!.last_sequence;
  }

  create(name: string, fifo: boolean, attributes: QueueAttributes, tags: Record<string, string>, now: number): Queue {
    const { lastInsertRowid } = this.statements.insert.run({
      name,
      fifo: fifo ? 1 : 0,
      attributes: JSON.stringify(attributes),
      tags: JSON.stringify(tags),
      now,
    });
    const queue = this.fromRow(this.statements.one.get(Number(lastInsertRowid))!);
    this.cache(name, queue);
    return queue;
  }

  update(queue: Queue, changes: Partial<Pick<Queue, 'attributes' | 'tags' | 'permissions' | 'modifiedAt' | 'purgedAt' | 'purgedThrough'>>): Queue {
    const next: Queue = { ...queue, ...changes };
    this.statements.update.run({
      id: next.id,
      attributes: JSON.stringify(next.attributes),
      tags: JSON.stringify(next.tags),
      permissions: JSON.stringify(next.permissions),
      modifiedAt: next.modifiedAt,
      purgedAt: next.purgedAt,
      purgedThrough: next.purgedThrough,
    });
    this.cache(next.name, next);
    return next;
  }

  /**
   * Deletes a queue. Its messages and FIFO groups stay behind, unreachable (queue ids are never
   * given again), for `reclaimDeleted` to delete in small batches: deleting a million messages in
   * the request would hold up every other request for seconds. Its deduplication ids and receive
   * attempts, as unreachable, go when they expire, with everyone else's (the sweeper).
   */
  remove(queue: Queue, now: number): void {
    this.deletedIds.add(queue.id);
    this.statements.remove.run(queue.id);
    this.statements.recordDeletion.run(queue.name, now);
    this.cache(queue.name, undefined);
  }

  /**
   * Deletes up to `limit` messages and FIFO groups of each deleted queue; returns whether any are
   * left. After a start or a rolled-back commit it first looks for what deleted queues left behind.
   */
  reclaimDeleted(limit: number): boolean {
    if (this.lookForLeftovers) {
      this.lookForLeftovers = false;
      for (const after of [this.statements.messagesQueueAfter, this.statements.groupsQueueAfter, this.statements.talliesQueueAfter]) {
        for (let row = after.get(0); row; row = after.get(row.queue_id)) this.deletedIds.add(row.queue_id);
      }
    }
    let more = false;
    for (const id of this.deletedIds) {
      // A queue that is there (never deleted, or its deletion rolled back) keeps its messages.
      const reclaimed = this.statements.exists.get(id)
        ? 0
        : this.statements.reclaimMessages.run(id, limit).changes +
          this.statements.reclaimGroups.run({ id, limit }).changes +
          this.statements.reclaimTallies.run(id, limit).changes;
      if (reclaimed === 0) this.deletedIds.delete(id);
      more ||= reclaimed > 0;
    }
    return more;
  }

  private cache(name: string, queue: Queue | undefined): void {
    const before = this.byNameCache.get(name);
    this.undo?.push(() => (before ? this.byNameCache.set(name, before) : this.byNameCache.delete(name)));
    if (queue) this.byNameCache.set(name, queue);
    else this.byNameCache.delete(name);
  }

  private fromRow(row: QueueRow): Queue {
    return {
      id: row.id,
      name: row.name,
      fifo: row.fifo === 1,
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
