import { type Db, explainStatements } from './database.js';
import type { EngineTime } from './engine-clock.js';
import { StoreCorruption } from './integrity.js';
import type { MessagePort } from './storage/ports.js';
import type { AvailableGroup, MessageContent, MessageCounts, MessageRow, NewMessage, Queue } from './storage/records.js';

// A FIFO group's messages in flight are always among its first ten: a receive takes at most ten
// from the head of an available group, and the group stays locked while any of them is in flight.
export const IN_FLIGHT_WINDOW = 10;
// The epoch of a group left with purged messages only: none a request looks at.
export const RETIRED = -1;

/**
 * When a FIFO group can next be received from, given its first messages in order as [visible_at,
 * receive_count]: once its first message is visible and none of them is in flight.
 */
export function groupAvailableAt(window: ReadonlyArray<readonly [number, number]>): number {
  let availableAt = window[0]![0];
  for (const [visibleAt, receiveCount] of window) {
    if (receiveCount > 0) availableAt = Math.max(availableAt, visibleAt);
  }
  return availableAt;
}
// Expired messages the counts look at one by one before the sweeper has deleted them. The sweeper
// keeps them few; past this many (a retention period just shortened on a huge queue) the counts
// are approximate until it catches up.
const MAX_EXPIRED_COUNTED = 10_000;

const secondOf = (ms: number) => Math.floor(ms / 1000);

/** When, at the `now` given, messages of a queue are past its retention period. */
export interface RetentionClock {
  readonly retentionCutoff: RetentionCutoff;
  readonly now: number;
}

/** Whether a message is past its queue's retention period. */
function isExpired(clock: RetentionClock, queue: Queue, message: MessageRow): boolean {
  return message.enqueued_at <= clock.retentionCutoff(queue, clock.now);
}

/** Whether a message is purged or past its retention period, and so must never be returned. */
export function isDead(clock: RetentionClock, queue: Queue, message: MessageRow): boolean {
  return message.epoch !== queue.purgedThrough || isExpired(clock, queue, message);
}

/**
 * Messages enqueued at or before the instant this gives are past the queue's retention period at
 * `now` (see `retentionCutoff`).
 */
export type RetentionCutoff = (queue: Queue, now: number) => number;

/** The visibility of a message held for the replay: never, until the replay takes it. */
export const HELD_FOR_REPLAY = Number.MAX_SAFE_INTEGER;
/** The visibility of a held message offered to the replay's take: before any other. */
const OFFERED_FOR_REPLAY = 0;

/**
 * Message storage for one database: every statement the queue operations run against messages and
 * `fifo_groups`, keeping a FIFO group's availability and the invisible tallies in step with its
 * messages. Every query a request runs walks an index from where its answer starts (see
 * `test/edge-shim/receive.test.ts`), so a request on a queue of millions costs what it costs on an
 * empty one. The current epoch of a queue is its `purgedThrough` (see the schema): messages of
 * older epochs are purged, and only the sweeper looks at them.
 */
export class MessageStore implements MessagePort {
  private readonly statements;

  constructor(
    private readonly db: Db,
    private readonly retentionCutoff: RetentionCutoff,
  ) {
    this.statements = {
      // The two statements every send runs bind by position: by name, better-sqlite3 looks each
      // parameter up in an object, measurably slower on this hottest path.
      insertContent: db.prepare(
        `INSERT INTO messages (message_id, body, body_md5, attributes, attributes_md5, trace_header, deduplication_id, sequence_number, dead_letter_source, sent_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertState: db.prepare('INSERT INTO message_states (id, queue_id, epoch, group_id, enqueued_at, visible_at) VALUES (?, ?, ?, ?, ?, ?)'),
      byId: db.prepare<[number], MessageRow>('SELECT * FROM message_states WHERE id = ?'),
      content: db.prepare<[number], MessageContent>(
        `SELECT message_id, body, body_md5, attributes, attributes_md5, trace_header, deduplication_id, sequence_number, dead_letter_source, sent_at
         FROM messages WHERE id = ?`,
      ),
      visible: db.prepare<[number, number, number, number], MessageRow>(
        'SELECT * FROM message_states WHERE queue_id = ? AND epoch = ? AND visible_at <= ? ORDER BY visible_at LIMIT ?',
      ),
      expired: db.prepare<[number, number, number], MessageRow>('SELECT * FROM message_states WHERE queue_id = ? AND enqueued_at <= ? LIMIT ?'),
      purged: db.prepare<[number, number, number], MessageRow>('SELECT * FROM message_states WHERE queue_id = ? AND epoch < ? LIMIT ?'),
      markReceived: db.prepare(
        `UPDATE message_states SET visible_at = @visibleAt, receive_count = receive_count + 1,
           first_received_at = coalesce(first_received_at, @now), received_at = @now, receipt_nonce = @nonce
         WHERE id = @id`,
      ),
      setVisibleAt: db.prepare('UPDATE message_states SET visible_at = ? WHERE id = ?'),
      remove: db.prepare('DELETE FROM message_states WHERE id = ?'),
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
      nextGroupAvailableAt: db.prepare<[number, number, number], { at: number | null }>(
        'SELECT min(available_at) AS at FROM fifo_groups WHERE queue_id = ? AND epoch = ? AND available_at > ?',
      ),
      groupMessages: db.prepare<[number, string, number, number, number], MessageRow>(
        'SELECT * FROM message_states WHERE queue_id = ? AND group_id = ? AND epoch = ? AND id > ? ORDER BY id LIMIT ?',
      ),
      // A group's first messages, as [visible_at, receive_count]: all that its availability depends on.
      groupWindow: db
        .prepare<[number, string, number, number], [number, number]>(
          'SELECT visible_at, receive_count FROM message_states WHERE queue_id = ? AND group_id = ? AND epoch = ? ORDER BY id LIMIT ?',
        )
        .raw(true),
      groupHasMessages: db.prepare<[number, string], { one: number }>('SELECT 1 AS one FROM message_states WHERE queue_id = ? AND group_id = ? LIMIT 1'),
      setGroup: db.prepare('UPDATE fifo_groups SET epoch = ?, available_at = ? WHERE queue_id = ? AND group_id = ?'),
      removeGroup: db.prepare('DELETE FROM fifo_groups WHERE queue_id = ? AND group_id = ?'),
      removeRetiredGroups: db.prepare('DELETE FROM fifo_groups WHERE queue_id = ? AND epoch < ?'),
      groupsOf: db.prepare<[number, number], { group_id: string }>('SELECT group_id FROM fifo_groups WHERE queue_id = ? AND epoch = ?'),
      redelay: db.prepare(
        'UPDATE message_states SET visible_at = enqueued_at + ? WHERE queue_id = ? AND epoch = ? AND receive_count = 0 AND id NOT IN (SELECT id FROM replay_holds)',
      ),
      hold: db.prepare('INSERT OR IGNORE INTO replay_holds (id) VALUES (?)'),
      inFlight: db.prepare<[number, number, number, number], MessageRow>(
        'SELECT * FROM message_states WHERE queue_id = ? AND epoch = ? AND visible_at > ? AND visible_at < ? AND receive_count > 0',
      ),
      anyHold: db.prepare<[], { one: number }>('SELECT 1 AS one FROM replay_holds LIMIT 1'),
      isHeld: db.prepare<[number], { one: number }>('SELECT 1 AS one FROM replay_holds WHERE id = ?'),
      // Only held messages are visible at HELD_FOR_REPLAY: the visibility index finds them.
      held: db.prepare<[number, number, number, number], MessageRow>(
        'SELECT * FROM message_states WHERE queue_id = ? AND epoch = ? AND visible_at = ? ORDER BY receive_count, enqueued_at LIMIT ?',
      ),
      heldOfGroup: db.prepare<[number, number, number, string, number], MessageRow>(
        'SELECT * FROM message_states WHERE queue_id = ? AND epoch = ? AND visible_at = ? AND group_id = ? ORDER BY id LIMIT ?',
      ),
      heldVisibleAt: db.prepare<[number, number, number], MessageRow>(
        'SELECT message_states.* FROM message_states JOIN replay_holds USING (id) WHERE queue_id = ? AND epoch = ? AND visible_at = ?',
      ),
      total: db.prepare<[number, number], { total: number }>('SELECT total FROM message_totals WHERE queue_id = ? AND epoch = ?'),
      expiredStates: db.prepare<[number, number, number, number], { visible_at: number; receive_count: number }>(
        'SELECT visible_at, receive_count FROM message_states WHERE queue_id = ? AND enqueued_at <= ? AND epoch = ? LIMIT ?',
      ),
      tallied: db.prepare<[number, number, number], { inFlight: number | null; delayed: number | null }>(
        'SELECT sum(in_flight) AS inFlight, sum(delayed) AS delayed FROM invisible_tallies WHERE queue_id = ? AND epoch = ? AND second > ?',
      ),
      // The messages that turn visible later in the current second: the one tally row not to trust.
      invisibleThisSecond: db.prepare<{ queue: number; epoch: number; now: number; end: number }, { inFlight: number | null; delayed: number | null }>(
        `SELECT sum(receive_count > 0) AS inFlight, sum(receive_count = 0) AS delayed FROM message_states
         WHERE queue_id = @queue AND epoch = @epoch AND visible_at > @now AND visible_at < @end`,
      ),
      tally: db.prepare(
        `INSERT INTO invisible_tallies (queue_id, epoch, second, in_flight, delayed) VALUES (@queue, @epoch, @second, @inFlight, @delayed)
         ON CONFLICT (queue_id, epoch, second) DO UPDATE SET in_flight = in_flight + @inFlight, delayed = delayed + @delayed`,
      ),
      clearTallies: db.prepare('DELETE FROM invisible_tallies WHERE queue_id = ? AND epoch = ?'),
      rebuildTallies: db.prepare(
        `INSERT INTO invisible_tallies (queue_id, epoch, second, in_flight, delayed)
         SELECT queue_id, epoch, visible_at / 1000, sum(receive_count > 0), sum(receive_count = 0) FROM message_states
         WHERE queue_id = ? AND epoch = ? AND visible_at > ? GROUP BY visible_at / 1000`,
      ),
      olderEpochTallies: db.prepare('DELETE FROM invisible_tallies WHERE queue_id = ? AND epoch < ?'),
      pastTallies: db.prepare('DELETE FROM invisible_tallies WHERE queue_id = ? AND epoch = ? AND second < ?'),
      oldestEnqueuedAt: db.prepare<[number, number], { at: number | null }>('SELECT min(enqueued_at) AS at FROM message_states WHERE queue_id = ? AND epoch = ?'),
      // The highest row id ever given, from SQLite's one-row-per-table record of AUTOINCREMENT.
      lastId: db.prepare<[], { id: number }>(`SELECT seq AS id FROM sqlite_sequence WHERE name = 'messages'`),
      nextVisibleAt: db.prepare<[number, number, number], { at: number | null }>(
        'SELECT min(visible_at) AS at FROM message_states WHERE queue_id = ? AND epoch = ? AND visible_at > ?',
      ),
    };
  }

  /** The query plan of every statement (see `explainStatements`). */
  queryPlans(): Record<string, string[]> {
    return explainStatements(this.db, this.statements);
  }

  insert(queue: Queue, message: NewMessage, now: number): number {
    const epoch = queue.purgedThrough;
    const id = Number(
      this.statements.insertContent.run(
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
      ).lastInsertRowid,
    );
    this.statements.insertState.run(id, queue.id, epoch, message.group_id, message.enqueued_at, message.visible_at);
    this.tally(queue.id, epoch, message.visible_at, 0, 1, now);
    if (queue.fifo) this.statements.groupInsert.run({ queue: queue.id, group: message.group_id, epoch, at: message.visible_at });
    return id;
  }

  /** A queue's messages received and not yet visible again (those held for the replay aside). */
  inFlight(queue: Queue, now: number): MessageRow[] {
    return this.statements.inFlight.all(queue.id, queue.purgedThrough, now, HELD_FOR_REPLAY);
  }

  /** See MessagePort.holdForReplay. */
  holdForReplay(id: number): void {
    this.statements.hold.run(id);
  }

  anyHeldForReplay(): boolean {
    return this.statements.anyHold.get() !== undefined;
  }

  /**
   * Makes up to `limit` of a queue's held messages visible, for the replay's take in this same
   * transaction: visible since the epoch, so that the take prefers them (they are the sends the
   * region may have taken, best handed over while its 5-minute deduplication may still see them).
   * In a FIFO queue, the held messages of the first one's group, in the group's order: a group stays
   * locked while any of its first messages is held, so all of them are offered at once.
   */
  offerHeld(queue: Queue, limit: number, now: number): void {
    const { held, heldOfGroup } = this.statements;
    let offered = held.all(queue.id, queue.purgedThrough, HELD_FOR_REPLAY, queue.fifo ? 1 : limit);
    const group = offered[0]?.group_id;
    if (queue.fifo && group) offered = heldOfGroup.all(queue.id, queue.purgedThrough, HELD_FOR_REPLAY, group, Math.max(limit, IN_FLIGHT_WINDOW));
    for (const message of offered) this.moveVisibility(queue, message, OFFERED_FOR_REPLAY, now);
  }

  /** Holds again the held messages that `offerHeld` offered and the take left. */
  holdUntaken(queue: Queue, now: number): void {
    for (const message of this.statements.heldVisibleAt.all(queue.id, queue.purgedThrough, OFFERED_FOR_REPLAY)) this.moveVisibility(queue, message, HELD_FOR_REPLAY, now);
  }

  byId(id: number): MessageRow | undefined {
    return this.statements.byId.get(id);
  }

  /** What a message is: body, attributes and ids. */
  content(message: MessageRow): MessageContent {
    const content = this.statements.content.get(message.id);
    // A state owns its message (a trigger deletes both): one without it is damage SQLite did not see.
    if (!content) throw new StoreCorruption(`message ${message.id} has a state but no content`);
    return content;
  }

  /**
   * Visible unpurged messages of a standard queue, oldest visibility first, including any past
   * their retention period: the caller deletes those it meets (see `isDead`), so it never meets
   * them twice.
   */
  visible(queue: Queue, now: number, limit: number): MessageRow[] {
    return this.statements.visible.all(queue.id, queue.purgedThrough, now, limit);
  }

  /** Messages past their retention period (purged or not), for the sweeper. */
  expired(queue: Queue, now: number, limit: number): MessageRow[] {
    return this.statements.expired.all(queue.id, this.retentionCutoff(queue, now), limit);
  }

  /** Purged messages not yet deleted, for the sweeper. */
  purged(queue: Queue, limit: number): MessageRow[] {
    return this.statements.purged.all(queue.id, queue.purgedThrough, limit);
  }

  /** The highest message row id ever given: the cut-off of a purge. */
  lastId(): number {
    return this.statements.lastId.get()?.id ?? 0;
  }

  /**
   * When a receive that finds nothing now could next find something: the next invisible message
   * of a standard queue becomes visible, or the next locked or delayed group of a FIFO queue
   * becomes available.
   */
  nextAvailableAt(queue: Queue, now: number): number | undefined {
    const next = queue.fifo ? this.statements.nextGroupAvailableAt : this.statements.nextVisibleAt;
    return next.get(queue.id, queue.purgedThrough, now)?.at ?? undefined;
  }

  /** Whether a receive could take something now, without taking it: a read outside any transaction. */
  anyAvailable(queue: Queue, now: number): boolean {
    return queue.fifo ? this.availableGroups(queue, now, undefined, 1).length > 0 : this.visible(queue, now, 1).length > 0;
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
    this.tally(message.queue_id, message.epoch, message.visible_at, message.receive_count, -1, now);
    message.visible_at = visibleAt;
    message.receive_count += 1;
    message.first_received_at ??= now;
    message.received_at = now;
    message.receipt_nonce = nonce;
    this.tally(message.queue_id, message.epoch, visibleAt, message.receive_count, 1, now);
  }

  /** Locks a FIFO group whose first messages were just received until they are visible again. */
  lockGroup(queue: Queue, groupId: string, until: number): void {
    this.statements.setGroup.run(queue.purgedThrough, until, queue.id, groupId);
  }

  /** Sets when a message is visible again; a message held for the replay that would be visible now stays held. */
  setVisibleAt(queue: Queue, message: MessageRow, visibleAt: number, now: number): void {
    const held = visibleAt <= now && this.statements.isHeld.get(message.id) !== undefined;
    this.moveVisibility(queue, message, held ? HELD_FOR_REPLAY : visibleAt, now);
  }

  private moveVisibility(queue: Queue, message: MessageRow, visibleAt: number, now: number): void {
    this.statements.setVisibleAt.run(visibleAt, message.id);
    this.tally(message.queue_id, message.epoch, message.visible_at, message.receive_count, -1, now);
    this.tally(message.queue_id, message.epoch, visibleAt, message.receive_count, 1, now);
    message.visible_at = visibleAt;
    if (queue.fifo && message.group_id !== null) this.refreshGroup(queue, message.group_id);
  }

  remove(queue: Queue, message: MessageRow, now: number): void {
    this.statements.remove.run(message.id);
    this.tally(message.queue_id, message.epoch, message.visible_at, message.receive_count, -1, now);
    // A purged message's group is of an older epoch: the sweeper drops it with the last of them.
    if (queue.fifo && message.group_id !== null && message.epoch === queue.purgedThrough) this.refreshGroup(queue, message.group_id);
  }

  /**
   * After the last purged message of a FIFO queue is deleted: the groups still of an older epoch (or
   * retired) hold nothing any more.
   */
  removePurgedGroups(queue: Queue): void {
    this.statements.removeRetiredGroups.run(queue.id, queue.purgedThrough);
  }

  /** Drops the tally rows no count will read again: past seconds and older epochs. */
  forgetPastTallies(queue: Queue, now: number): void {
    this.statements.olderEpochTallies.run(queue.id, queue.purgedThrough);
    this.statements.pastTallies.run(queue.id, queue.purgedThrough, secondOf(now));
  }

  /**
   * A FIFO queue applies a new DelaySeconds to the messages already in it that were never received;
   * a standard queue does not (Developer Guide, "Amazon SQS delay queues"). One pass over the queue:
   * changing the delay of a queue is rare.
   */
  applyQueueDelay(queue: Queue, now: number): void {
    if (!queue.fifo) return;
    this.statements.redelay.run(Number(queue.attributes.DelaySeconds) * 1000, queue.id, queue.purgedThrough);
    this.statements.clearTallies.run(queue.id, queue.purgedThrough);
    this.statements.rebuildTallies.run(queue.id, queue.purgedThrough, now);
    for (const { group_id: groupId } of this.statements.groupsOf.all(queue.id, queue.purgedThrough)) this.refreshGroup(queue, groupId);
  }

  /**
   * The approximate counts, without counting the messages themselves: the running total of the
   * queue's current epoch; in flight and delayed from the tallies of the seconds to come, plus the
   * few messages turning visible later in this second; less the messages past retention that the
   * sweeper has yet to delete. Visible is the rest.
   */
  counts(queue: Queue, now: number): MessageCounts {
    const epoch = queue.purgedThrough;
    const second = secondOf(now);
    const total = this.statements.total.get(queue.id, epoch)?.total ?? 0;
    const tallied = this.statements.tallied.get(queue.id, epoch, second)!;
    const thisSecond = this.statements.invisibleThisSecond.get({ queue: queue.id, epoch, now, end: (second + 1) * 1000 })!;
    let inFlight = (tallied.inFlight ?? 0) + (thisSecond.inFlight ?? 0);
    let delayed = (tallied.delayed ?? 0) + (thisSecond.delayed ?? 0);
    const expired = this.statements.expiredStates.all(queue.id, this.retentionCutoff(queue, now), epoch, MAX_EXPIRED_COUNTED);
    for (const message of expired) {
      if (message.visible_at <= now) continue;
      if (message.receive_count > 0) inFlight -= 1;
      else delayed -= 1;
    }
    return { visible: Math.max(0, total - expired.length - inFlight - delayed), inFlight, delayed };
  }

  /** How many messages the queue's current epoch holds, from the running total. */
  total(queue: Queue): number {
    return this.statements.total.get(queue.id, queue.purgedThrough)?.total ?? 0;
  }

  /** When the oldest message of the queue's current epoch was enqueued. */
  oldestEnqueuedAt(queue: Queue): number | undefined {
    return this.statements.oldestEnqueuedAt.get(queue.id, queue.purgedThrough)?.at ?? undefined;
  }

  /**
   * Recomputes when a FIFO group can next be received from: once its first message is visible and
   * none of its messages is in flight. A group left without messages goes; one left with purged
   * messages only is retired until a message is sent to it or the sweeper deletes them.
   */
  refreshGroup(queue: Queue, groupId: string): void {
    const window = this.statements.groupWindow.all(queue.id, groupId, queue.purgedThrough, IN_FLIGHT_WINDOW);
    if (window.length === 0) {
      if (this.statements.groupHasMessages.get(queue.id, groupId)) this.statements.setGroup.run(RETIRED, 0, queue.id, groupId);
      else this.statements.removeGroup.run(queue.id, groupId);
      return;
    }
    this.statements.setGroup.run(queue.purgedThrough, groupAvailableAt(window), queue.id, groupId);
  }

  /**
   * Adds `delta` to the tally of the second a message turns visible in, if that is still to come:
   * a message visible already is counted as visible, and a tally row of a second gone by is never
   * read again, so it need not be kept right.
   */
  private tally(queueId: number, epoch: number, visibleAt: number, receiveCount: number, delta: number, now: number): void {
    if (visibleAt <= now) return;
    const inFlight = receiveCount > 0 ? delta : 0;
    this.statements.tally.run({ queue: queueId, epoch, second: secondOf(visibleAt), inFlight, delayed: delta - inFlight });
  }
}

// Before every message: the cut-off of a store whose messages never expire.
const NOTHING_EXPIRES = Number.MIN_SAFE_INTEGER;

/**
 * When messages expire: MessageRetentionPeriod after they were enqueued, as in SQS, their ages by
 * the engine's time (which leaves out the jumps of the wall clock); or never, where every message is
 * data owed elsewhere (a hybrid edge's backlog, waiting for the replay).
 */
export function retentionCutoff(expire: boolean, time: Pick<EngineTime, 'ageCutoff'>): RetentionCutoff {
  if (!expire) return () => NOTHING_EXPIRES;
  return (queue, now) => time.ageCutoff(now, Number(queue.attributes.MessageRetentionPeriod) * 1000);
}
