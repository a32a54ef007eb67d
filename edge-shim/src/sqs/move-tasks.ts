import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { SqsContext } from './context.js';
import type { Db } from './database.js';
import type { MoveTaskPort } from './storage/ports.js';
import { type Step, call } from './storage/step.js';
import { invalidParameter } from './errors.js';
import { removeDead } from './expiry.js';
import { isDead } from './messages.js';
import { BackgroundWorkLog } from '../repeated-log.js';
import { transferMessage } from './redrive.js';
import { type AvailableGroup, type MessageRow, type MoveTaskRow, type MoveTaskStatus, type Queue, type RateWindow, currentRateWindow } from './storage/records.js';

/** ListMessageMoveTasks covers the tasks of the last 14 days. */
export const TASK_HISTORY_MS = 14 * 24 * 3600_000;
// Messages moved per transaction: small, so that requests never wait long behind the mover.
const BATCH = 25;
// A step's scan of FIFO groups stops after this many, so that a queue whose groups are all in flight
// cannot make one step scan without end. Larger than a receive's limit on purpose: a step that finds
// nothing to move ends the task, so it must look further than a receive, which can simply look again.
const MAX_GROUPS_PER_STEP = 1000;
const RETRY_AFTER_FAILURE_MS = 1000;

function statementsFor(db: Db) {
  return {
    insert: db.prepare(
      `INSERT INTO move_tasks (task_handle, source_arn, destination_arn, max_per_second, status, moved, to_move, started_at)
       VALUES (@task_handle, @source_arn, @destination_arn, @max_per_second, 'RUNNING', 0, @to_move, @started_at)`,
    ),
    byHandle: db.prepare<[string], MoveTaskRow>('SELECT * FROM move_tasks WHERE task_handle = ?'),
    active: db.prepare<[], MoveTaskRow>(`SELECT * FROM move_tasks WHERE status IN ('RUNNING', 'CANCELLING')`),
    activeFor: db.prepare<[string], MoveTaskRow>(
      `SELECT * FROM move_tasks WHERE source_arn = ? AND status IN ('RUNNING', 'CANCELLING') LIMIT 1`,
    ),
    recent: db.prepare<[string, number, number], MoveTaskRow>(
      'SELECT * FROM move_tasks WHERE source_arn = ? AND started_at >= ? ORDER BY started_at DESC, task_handle DESC LIMIT ?',
    ),
    setStatus: db.prepare('UPDATE move_tasks SET status = ?, failure_reason = ? WHERE task_handle = ?'),
    addMoved: db.prepare('UPDATE move_tasks SET moved = moved + ? WHERE task_handle = ?'),
    forget: db.prepare(`DELETE FROM move_tasks WHERE started_at < ? AND status NOT IN ('RUNNING', 'CANCELLING')`),
  };
}

/** Move tasks in SQLite: the statements on `move_tasks`. */
export class MoveTaskStore implements MoveTaskPort {
  private readonly statements;
  // One process steps the file's tasks: their rate windows are its memory.
  private readonly windows = new Map<string, RateWindow>();

  constructor(db: Db) {
    this.statements = statementsFor(db);
  }

  insert(task: Pick<MoveTaskRow, 'task_handle' | 'source_arn' | 'destination_arn' | 'max_per_second' | 'to_move' | 'started_at'>): void {
    this.statements.insert.run(task);
  }

  byHandle(handle: string): MoveTaskRow | undefined {
    return this.statements.byHandle.get(handle);
  }

  /** Tasks still to be worked on: running, or cancelled and not yet stopped. */
  active(): MoveTaskRow[] {
    return this.statements.active.all();
  }

  activeFor(sourceArn: string): MoveTaskRow | undefined {
    return this.statements.activeFor.get(sourceArn);
  }

  /** A source queue's tasks started at or after `since`, most recent first. */
  recent(sourceArn: string, since: number, limit: number): MoveTaskRow[] {
    return this.statements.recent.all(sourceArn, since, limit);
  }

  setStatus(handle: string, status: MoveTaskStatus, failureReason: string | null = null): void {
    this.statements.setStatus.run(status, failureReason, handle);
    if (status !== 'RUNNING' && status !== 'CANCELLING') this.windows.delete(handle);
  }

  rateWindow(task: MoveTaskRow, now: number): RateWindow {
    return currentRateWindow(this.windows.get(task.task_handle), now);
  }

  addMoved(handle: string, count: number, window?: RateWindow): void {
    this.statements.addMoved.run(count, handle);
    if (window) this.windows.set(handle, window);
  }

  /** Forgets finished tasks started before this instant. */
  forget(before: number): void {
    this.statements.forget.run(before);
  }
}

/** TaskHandle, as SQS makes it: base64 of a JSON object naming the task and its source queue. */
export function encodeTaskHandle(sourceArn: string): string {
  return Buffer.from(JSON.stringify({ taskId: randomUUID(), sourceArn })).toString('base64');
}

export function decodeTaskHandle(handle: string): { taskId: string; sourceArn: string } {
  try {
    const decoded = JSON.parse(Buffer.from(handle, 'base64').toString('utf8')) as Record<string, unknown>;
    if (typeof decoded.taskId === 'string' && typeof decoded.sourceArn === 'string') {
      return { taskId: decoded.taskId, sourceArn: decoded.sourceArn };
    }
  } catch {
    // not base64 JSON: answered below
  }
  throw invalidParameter('Value for parameter TaskHandle is invalid.');
}

interface Transactor {
  transact<T>(baseUrl: string, work: (context: SqsContext) => Step<T>): Promise<T>;
}

/**
 * The messages a step may move now, oldest first: visible ones; from a FIFO queue only from the
 * front of groups with nothing in flight, so that each group keeps its order. Messages past their
 * retention period or purged that it comes across are deleted, as a receive would.
 */
function* movableMessages(context: SqsContext, queue: Queue, limit: number): Step<MessageRow[]> {
  const { messages, now } = context;
  const taken = new Map<number, MessageRow>();
  if (!queue.fifo) {
    // Messages taken stay in front until moved, so a round after one that deleted some asks again.
    for (let round = 0; round < 3 && taken.size < limit; round++) {
      let deleted = false;
      for (const message of yield* call(messages.visible(queue, now, limit))) {
        if (taken.has(message.id)) continue;
        if (isDead(context, queue, message)) {
          yield* removeDead(context, queue, message);
          deleted = true;
        } else if (taken.size < limit) {
          taken.set(message.id, message);
        }
      }
      if (!deleted) break;
    }
    return [...taken.values()].sort((a, b) => a.id - b.id);
  }
  const visited = new Set<string>();
  let after: AvailableGroup | undefined;
  while (taken.size < limit && visited.size < MAX_GROUPS_PER_STEP) {
    const groups = yield* call(messages.availableGroups(queue, now, after, 20));
    if (groups.length === 0) break;
    for (const group of groups) {
      after = group;
      if (visited.has(group.group_id)) continue;
      visited.add(group.group_id);
      for (const message of yield* call(messages.groupMessages(queue, group.group_id, limit - taken.size))) {
        if (isDead(context, queue, message)) {
          yield* removeDead(context, queue, message);
          continue;
        }
        if (message.visible_at > now) break; // in flight or delayed: nothing behind it goes first
        taken.set(message.id, message);
      }
      if (taken.size >= limit) break;
    }
  }
  return [...taken.values()];
}

/**
 * Redrives a message: SQS treats it as a new message of the destination, with a new message id,
 * SentTimestamp and enqueue time and no receives yet; body, attributes, trace header, message
 * group and deduplication id go with it.
 */
function redrive(context: SqsContext, from: Queue, message: MessageRow, to: Queue): Step<void> {
  return transferMessage(context, from, message, to, () => ({
    message_id: randomUUID(),
    dead_letter_source: null,
    sent_at: context.now,
    enqueued_at: context.now,
  }));
}

/**
 * Runs message move tasks in the background of the server: each step moves a small batch in its
 * own transaction and counts it in the same one, so a task's progress is exactly what is committed.
 * Tasks live in `move_tasks`, so one that was RUNNING when the server stopped resumes at start.
 * MaxNumberOfMessagesPerSecond is kept per second of the service clock.
 */
export class MessageMover {
  private timer: NodeJS.Timeout | undefined;
  private stepping = false;
  private wokenWhileStepping = false;
  private stopped = false;

  private readonly log: BackgroundWorkLog;

  /**
   * `lookEveryMs`: on a database other nodes share, how often to look for tasks with nothing to
   * do here: one started through another node, or left by a node that stopped, is taken over.
   */
  constructor(
    private readonly service: Transactor,
    logger: Logger,
    private readonly lookEveryMs?: number,
  ) {
    this.log = new BackgroundWorkLog(logger, 'the message move tasks');
    this.wake(); // resumes what was running when the server stopped
  }

  /** Looks at the tasks now (a task was started or cancelled). */
  wake(): void {
    if (this.stopped) return;
    if (this.stepping) {
      this.wokenWhileStepping = true;
      return;
    }
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.step(), delayMs);
    this.timer.unref();
  }

  private async step(): Promise<void> {
    this.stepping = true;
    let next: number | undefined;
    try {
      next = await this.service.transact('', (context) => this.advanceAll(context));
      this.log.succeeded();
    } catch (error) {
      this.log.failed(error, 'message move step failed; retrying');
      next = RETRY_AFTER_FAILURE_MS;
    } finally {
      this.stepping = false;
    }
    if (this.stopped) return;
    if (this.wokenWhileStepping) {
      this.wokenWhileStepping = false;
      next = 0;
    }
    next ??= this.lookEveryMs;
    if (next !== undefined) this.schedule(next);
  }

  /** Advances every active task; resolves to how long to wait before the next step, if any is left. */
  private *advanceAll(context: SqsContext): Step<number | undefined> {
    let next: number | undefined;
    for (const task of yield* call(context.moveTasks.active())) {
      const wait = yield* this.advance(context, task);
      if (wait !== undefined) next = Math.min(next ?? wait, wait);
    }
    return next;
  }

  /** One step of one task; undefined once the task has ended. */
  private *advance(context: SqsContext, task: MoveTaskRow): Step<number | undefined> {
    const handle = task.task_handle;
    const end = (status: MoveTaskStatus, failureReason: string | null = null) => this.end(context, handle, status, failureReason);
    if (task.status === 'CANCELLING') return yield* end('CANCELLED');
    const source = yield* call(context.queues.byArn(task.source_arn));
    if (!source) return yield* end('FAILED', 'SourceQueueDoesNotExist');

    const window = task.max_per_second === null ? undefined : yield* call(context.moveTasks.rateWindow(task, context.now));
    const allowed = window ? Math.min(BATCH, task.max_per_second! - window.moved) : BATCH;
    if (allowed <= 0) return window!.start + 1000 - context.now;

    const messages = yield* movableMessages(context, source, Math.min(allowed, task.to_move - task.moved));
    let moved = 0;
    let failure: string | undefined;
    for (const message of messages) {
      const destinationArn = task.destination_arn ?? (yield* call(context.messages.content(message))).dead_letter_source;
      const destination = destinationArn === null ? undefined : yield* call(context.queues.byArn(destinationArn));
      if (!destination) {
        failure = task.destination_arn === null ? 'CouldNotDetermineMessageSource' : 'DestinationQueueDoesNotExist';
        break;
      }
      yield* redrive(context, source, message, destination);
      moved += 1;
    }
    const windowNow = window && { start: window.start, moved: window.moved + moved };
    if (moved > 0) yield* call(context.moveTasks.addMoved(handle, moved, windowNow));
    if (failure) return yield* end('FAILED', failure);
    // Done when all counted at the start are moved, or when nothing more can be moved now.
    if (task.moved + moved >= task.to_move || messages.length < allowed) return yield* end('COMPLETED');
    return windowNow && windowNow.moved >= task.max_per_second! ? windowNow.start + 1000 - context.now : 0;
  }

  /** Ends a task; undefined, as `advance` answers for a task that has ended. */
  private *end(context: SqsContext, handle: string, status: MoveTaskStatus, failureReason: string | null): Step<undefined> {
    yield* call(context.moveTasks.setStatus(handle, status, failureReason));
    return undefined;
  }
}
