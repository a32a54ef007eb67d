import type { CallOptions, Health, SqsBackend } from '../backend.js';
import type { Logger } from 'pino';
import { ACTIONS } from './actions/index.js';
import { readReceiveRequest, receiveMessages, surelyEmpty } from './actions/receive-message.js';
import { CommitFailed, CommitGroup } from './commit-group.js';
import type { SqliteContext, SqsContext } from './context.js';
import type { Db } from './database.js';
import { DeduplicationStore } from './deduplication.js';
import { SqsError } from './errors.js';
import { LongPolls } from './long-polls.js';
import { payloadSize } from './message-attributes.js';
import { EngineClock, type EngineTime, givenClock } from './engine-clock.js';
import { type ExpiredByQueue, ExpiryLog, type ExpiryRecorder, addExpired } from './expiry.js';
import { StoreIntegrity } from './integrity.js';
import { MessageStore, retentionCutoff } from './messages.js';
import { MessageMover, MoveTaskStore } from './move-tasks.js';
import { QueueRegistry } from './queues.js';
import { ReceiptHandles } from './receipt-handles.js';
import { ReceiveAttemptStore } from './receive-attempts.js';
import { type StorageGuard, type StorageStatus, isOutOfSpace } from './storage-guard.js';
import { Sweeper } from './sweeper.js';
import { type Step, call, runNow } from './storage/step.js';
import type { MessageCounts, MessageRow, Queue } from './storage/records.js';

/**
 * The operations that add data, with a rough size of what they add; everything else reads,
 * changes in place or deletes, and goes on while storage is short, so that the queues can drain.
 */
const GROWING: Readonly<Record<string, (input: Record<string, unknown>) => number>> = {
  SendMessage: (input) => messageSize(input),
  SendMessageBatch: (input) => (Array.isArray(input.Entries) ? input.Entries.reduce<number>((sum, entry) => sum + messageSize(entry as Record<string, unknown>), 0) : 0),
  CreateQueue: () => QUEUE_CHANGE_BYTES,
  SetQueueAttributes: () => QUEUE_CHANGE_BYTES,
  TagQueue: () => QUEUE_CHANGE_BYTES,
  AddPermission: () => QUEUE_CHANGE_BYTES,
  StartMessageMoveTask: () => QUEUE_CHANGE_BYTES,
};
const QUEUE_CHANGE_BYTES = 4096;
// What storing a message costs beyond its payload: its ids, digests and index entries.
const MESSAGE_OVERHEAD_BYTES = 512;
const messageSize = (input: Record<string, unknown>) => payloadSize(input.MessageBody, input.MessageAttributes) + MESSAGE_OVERHEAD_BYTES;

export interface StoreHealth extends Health {
  readonly storage: StorageStatus;
}

export interface TransactOptions {
  /** Messages sent in the work are held for the replay (see `SqsService.sendHeldForReplay`). */
  readonly holdForReplay?: boolean;
  /**
   * The work needs room of its own: it adds data (a send, a queue), or moves pages through the WAL
   * (the sweeper). When its group fails for lack of space it is not tried again: the room the
   * reserve gave up is for the work that drains.
   */
  readonly needsRoom?: boolean;
}

export interface SqsServiceOptions {
  readonly db: Db;
  /** Refuses what would add data while the disk or the store is full. */
  readonly storage: StorageGuard;
  readonly region: string;
  readonly accountId: string;
  readonly logger: Logger;
  /**
   * Milliseconds since the epoch; tests pass a clock they can move, and it rules as given. By
   * default the engine's own clock (`EngineClock`), which follows `wallClock`.
   */
  readonly clock?: () => number;
  /** The wall clock the engine's clock follows (Date.now by default); tests pass one that jumps. */
  readonly wallClock?: () => number;
  /**
   * Whether messages expire after their queue's MessageRetentionPeriod, as in SQS (true by
   * default); false keeps every message until it is deleted, for a store whose messages are data
   * owed elsewhere.
   */
  readonly expireMessages?: boolean;
  /** Told of the messages expired, by queue, as they are committed. */
  readonly expiryRecorder?: ExpiryRecorder;
  /** The level of the log line for messages expired: warn where expiring loses data owed elsewhere. */
  readonly expiryLogLevel?: 'info' | 'warn';
  /** How often expired messages, deduplication ids and purged messages are reclaimed. */
  readonly sweepIntervalMs?: number;
}


/** Makes every message of a queue that is in flight visible again at once; how many (see `SqsService.releaseInFlight`). */
function* releaseInFlight(context: SqsContext, queueName: string): Step<number> {
  const queue = yield* call(context.queues.byName(queueName));
  if (!queue) return 0;
  const messages = yield* call(context.messages.inFlight(queue, context.now));
  for (const message of messages) yield* call(context.messages.setVisibleAt(queue, message, context.now, context.now));
  if (messages.length > 0) context.messagesAvailable(queue, messages.length);
  return messages.length;
}

/**
 * The SQS semantics behind every wire protocol: runs an operation by name on its JSON-shaped input
 * inside a group commit, and keeps a receive waiting (long polling) until a message can be had.
 */
export class SqsService implements SqsBackend {
  readonly queues: QueueRegistry;
  private readonly db: Db;
  private readonly messages: MessageStore;
  private readonly deduplication: DeduplicationStore;
  private readonly receiveAttempts: ReceiveAttemptStore;
  private readonly moveTasks: MoveTaskStore;
  private readonly receipts: ReceiptHandles;
  private readonly commits: CommitGroup;
  private readonly polls = new LongPolls();
  private readonly sweeper: Sweeper;
  private readonly mover: MessageMover;
  /** The engine's time, milliseconds since the epoch: the clock that every decision of the engine reads. */
  readonly clock: () => number;
  private readonly time: EngineTime;
  private readonly expiries: ExpiryLog;
  private readonly logger: Logger;
  private readonly storage: StorageGuard;
  private readonly integrity: StoreIntegrity;
  private tries = 0;

  constructor(options: SqsServiceOptions) {
    this.db = options.db;
    this.time = options.clock ? givenClock(options.clock) : new EngineClock(options.db, options.logger, { wall: options.wallClock });
    this.clock = this.time.now;
    this.logger = options.logger;
    this.storage = options.storage;
    this.expiries = new ExpiryLog(options.expiryRecorder, options.logger, options.expiryLogLevel ?? 'info');
    this.queues = new QueueRegistry(options.db, options.region, options.accountId);
    this.messages = new MessageStore(options.db, retentionCutoff(options.expireMessages ?? true, this.time));
    this.deduplication = new DeduplicationStore(options.db);
    this.receiveAttempts = new ReceiveAttemptStore(options.db);
    this.moveTasks = new MoveTaskStore(options.db);
    this.receipts = ReceiptHandles.of(options.db);
    // Background work that rewrites the store stops on corruption: a recovery starts from what was found.
    this.integrity = new StoreIntegrity(options.logger, () => {
      this.sweeper.stop();
      this.mover.stop();
    });
    this.commits = new CommitGroup(options.db, (error) => {
      this.logger.error({ err: error }, 'commit failed; the operations in it are answered with an error, or on a full disk those that drain are run again');
      this.storage.writeFailed(error);
      try {
        this.queues.reload();
      } catch (reloadError) {
        this.logger.error({ err: reloadError }, 'cannot reload the queues after a failed commit');
      }
    });
    this.sweeper = new Sweeper(
      this,
      { intervalMs: options.sweepIntervalMs ?? 1000, time: this.time, expiries: this.expiries, shrinkPace: () => this.storage.shrinkPace },
      options.logger,
    );
    this.mover = new MessageMover(this, options.logger);
  }

  /**
   * Runs work inside a group commit with a context for it; resolves once it is committed. SQLite
   * answers every storage call at once: the work runs to its end synchronously, in its savepoint.
   */
  transact<T>(baseUrl: string, work: (context: SqliteContext) => Step<T>, options: TransactOptions = {}): Promise<T> {
    const job = () => {
      const callbacks: Array<() => void> = [];
      let expired: ExpiredByQueue | undefined;
      const context: SqliteContext = {
        db: this.db,
        queues: this.queues,
        messages: this.messages,
        deduplication: this.deduplication,
        receiveAttempts: this.receiveAttempts,
        moveTasks: this.moveTasks,
        receipts: this.receipts,
        now: this.clock(),
        baseUrl,
        holdForReplay: options.holdForReplay === true,
        afterCommit: (callback) => callbacks.push(callback),
        messagesAvailable: (queue: Queue, count = 1) => callbacks.push(() => this.polls.wake(queue.id, count)),
        messagesAvailableAt: (queue: Queue, at: number) => callbacks.push(() => this.polls.wakeIn(queue.id, at - this.clock(), this.clock())),
        messageExpired: (queue: Queue, message: MessageRow) => {
          if (!expired) {
            const committed = (expired = new Map());
            callbacks.push(() => this.expiries.committed(committed));
          }
          addExpired(expired, queue.name, 1, context.now - message.enqueued_at);
        },
        moveTasksChanged: () => callbacks.push(() => this.mover.wake()),
      };
      const value = this.queues.undoingOnFailure(() => runNow(work(context)));
      // Runs after this savepoint is released and the group's COMMIT has returned.
      return { value, callbacks };
    };
    return this.committed(job, options.needsRoom === true).then(({ value, callbacks }) => {
      for (const callback of callbacks) callback();
      return value;
    });
  }

  /**
   * Runs a job in the group commit. A group that failed for lack of space made the storage guard
   * give up its disk reserve: a job that needs no room of its own is run once more, in the room
   * that made, so that receives, deletes and purges go through on a full disk whoever filled it;
   * one that needs room is answered as its group failed (a send: a retryable ServiceUnavailable),
   * and the next send is refused up front while the disk is full.
   */
  private async committed<R>(job: () => R, needsRoom: boolean): Promise<R> {
    try {
      return await this.commits.run(job);
    } catch (error) {
      if (needsRoom || !(error instanceof CommitFailed && isOutOfSpace(error.cause))) throw this.integrity.judge(error);
    }
    try {
      return await this.commits.run(job);
    } catch (error) {
      throw this.integrity.judge(error);
    }
  }

  async call(action: string, input: Record<string, unknown>, options: CallOptions): Promise<Record<string, unknown>> {
    options.carriedOut?.('local');
    try {
      if (action === 'ReceiveMessage') return await this.receive(input, options);
      const run = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
      if (!run) throw new SqsError('InvalidAction', `The action ${action} is not valid for this endpoint.`);
      const growth = GROWING[action];
      if (growth) this.admit(growth(input));
      return await this.transact(options.baseUrl, (context) => run(context, input), { needsRoom: growth !== undefined });
    } catch (error) {
      // Reads outside a transaction (a receive's look for messages) meet corruption too.
      throw this.integrity.judge(error);
    }
  }

  /** Refuses, before it runs, an operation that would add `bytes` to a store that cannot take them. */
  private admit(bytes: number): void {
    this.integrity.admit();
    this.storage.admit(bytes);
  }

  /**
   * SendMessage or SendMessageBatch whose messages are held for the replay: stored and answered as
   * any send, but only the replay's take takes them (hybrid/replay/store.ts): no receive does (nor,
   * in a FIFO queue, anything after them in their group). The hybrid edge stores so a send the region may have taken after
   * all: the replay hands it over with its deduplication id, and no consumer at the edge runs it
   * meanwhile beside its twin in the region.
   */
  sendHeldForReplay(action: 'SendMessage' | 'SendMessageBatch', input: Record<string, unknown>, options: CallOptions): Promise<Record<string, unknown>> {
    options.carriedOut?.('local');
    this.admit(GROWING[action]!(input));
    return this.transact(options.baseUrl, (context) => ACTIONS[action]!(context, input), { holdForReplay: true, needsRoom: true });
  }

  /**
   * Makes every message of a queue that is in flight visible again at once, as if each receiver had
   * set its visibility to 0; how many. For when every consumer of the queue is known to be gone (the
   * edge's fallback agents, stopped): a receive whose answer its consumer never read would otherwise
   * hold its messages for their whole visibility timeout.
   */
  releaseInFlight(queueName: string): Promise<number> {
    return this.transact('', (context) => releaseInFlight(context, queueName));
  }

  /** How many messages a queue holds now (visible, in flight or delayed): a running total, no count. */
  storedMessages(queueName: string): number {
    const queue = this.queues.byName(queueName);
    return queue ? this.messages.total(queue) : 0;
  }

  /** A queue's approximate counts, as GetQueueAttributes gives them. */
  counts(queueName: string): MessageCounts {
    const queue = this.queues.byName(queueName);
    return queue ? this.messages.counts(queue, this.clock()) : { visible: 0, inFlight: 0, delayed: 0 };
  }

  /** When the oldest message a queue holds was enqueued, if it holds any. */
  oldestMessageAt(queueName: string): number | undefined {
    const queue = this.queues.byName(queueName);
    return queue ? this.messages.oldestEnqueuedAt(queue) : undefined;
  }

  /**
   * ReceiveMessage with long polling: while nothing is received and the wait is not over, the
   * receive sleeps until a commit makes a message available on the queue (a send, a delete that
   * unlocks a FIFO group, a visibility change) and the wake-up falls to it, or until the queue's
   * next invisible message or locked group becomes available, whichever is first, then tries again.
   * It never polls on a timer, and a try that cannot find anything costs one read, no transaction.
   */
  private async receive(input: Record<string, unknown>, options: CallOptions): Promise<Record<string, unknown>> {
    let deadline: number | undefined;
    // Set while this receive holds a wake-up it has not used: it must pass it on if it stops.
    let woken = false;
    let queueId: number | undefined;
    const passOn = () => woken && queueId !== undefined && this.polls.wake(queueId);
    for (;;) {
      // A client gone while its receive waited must not be handed messages it will never see.
      if (deadline !== undefined && options.signal?.aborted) {
        passOn();
        return {};
      }
      const checked = runNow(readReceiveRequest(this.queues, input));
      this.tries += 1;
      const now = this.clock();
      deadline ??= now + checked.waitSeconds * 1000;
      const round = runNow(surelyEmpty(this.messages, checked, now))
        ? { output: {}, more: false, request: checked, version: this.polls.version(checked.queue.id) }
        : // Read again in the transaction: a purge or deletion committed meanwhile changes the queue.
          await this.transact(options.baseUrl, (context) => this.receiveRound(context, input));
      const { request } = round;
      queueId = request.queue.id;
      const taken = round.output.Messages?.length ?? 0;
      if (taken > 0) {
        // A full batch may have left more behind: the next waiter gets its turn.
        if (taken === request.limit) this.polls.wake(queueId);
        return round.output;
      }
      woken = false;
      const remainingMs = deadline - this.clock();
      if (remainingMs <= 0 || this.polls.isClosed || options.signal?.aborted) return round.output;
      if (round.more) continue;
      const waited = this.polls.wait(queueId, round.version, remainingMs, options.signal);
      const nextAvailableAt = this.messages.nextAvailableAt(request.queue, this.clock());
      if (nextAvailableAt !== undefined) this.polls.wakeIn(queueId, nextAvailableAt - this.clock(), this.clock());
      woken = await waited;
    }
  }

  /** One try of a receive, in a transaction; with the version of the queue's long polls it saw. */
  private *receiveRound(context: SqsContext, input: Record<string, unknown>) {
    const request = yield* readReceiveRequest(context.queues, input);
    return { ...(yield* receiveMessages(context, request)), request, version: this.polls.version(request.queue.id) };
  }

  /**
   * Reclaims expired and purged messages, deduplication ids and receive attempts now instead of at
   * the next sweep, slice after slice until nothing is left; resolves to the number of slices. For
   * tests and tools that move the clock.
   */
  async sweep(): Promise<number> {
    let slices = 1;
    while (await this.sweeper.sweepOnce()) slices += 1;
    return slices;
  }

  /** How many times receives have looked for messages, each try of a long poll counted. */
  get receiveTries(): number {
    return this.tries;
  }

  /** How many receives are waiting for messages now (long polls). */
  get waitingReceives(): number {
    return this.polls.size;
  }

  /** Whether the service can take messages, and why not; for health checks. */
  health(): StoreHealth {
    const storage = this.storage.status;
    const corruption = this.integrity.corruption;
    if (corruption !== undefined) {
      return { status: 'unavailable', reason: `the database is corrupt (${corruption}): sends are refused until an operator recovers it`, storage };
    }
    try {
      this.db.prepare('SELECT 1').get();
    } catch (error) {
      return { status: 'unavailable', reason: `the database does not answer: ${(error as Error).message}`, storage };
    }
    if (storage.state === 'disk-full') return { status: 'unavailable', reason: 'the disk is full: sends are refused until there is room', storage };
    if (storage.state === 'store-full') return { status: 'unavailable', reason: 'the store is at its bound: sends are refused until it drains', storage };
    return { status: 'ok', storage };
  }

  /** Stops background work and answers every long poll now; requests in flight still run. */
  close(): void {
    this.sweeper.stop();
    this.mover.stop();
    this.polls.close();
  }

  /**
   * After close(): refuses new work and resolves once queued work is committed, before the database
   * closes; logs what expired since the last sweep.
   */
  async drain(): Promise<void> {
    await this.commits.close();
    this.expiries.flush();
  }
}
