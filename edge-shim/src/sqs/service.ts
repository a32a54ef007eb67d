import type { CallOptions, SqsBackend } from '../backend.js';
import type { Logger } from 'pino';
import { ACTIONS } from './actions/index.js';
import { readReceiveRequest, receiveMessages, surelyEmpty } from './actions/receive-message.js';
import type { SqsContext } from './context.js';
import type { Availability, EngineStorage, SqsEngine, StoreHealth } from './engine.js';
import { SqsError } from './errors.js';
import { LongPolls } from './long-polls.js';
import { payloadSize } from './message-attributes.js';
import { type ExpiredByQueue, ExpiryLog, type ExpiryRecorder, addExpired } from './expiry.js';
import { MessageMover } from './move-tasks.js';
import { Sweeper } from './sweeper.js';
import { type Step, call } from './storage/step.js';
import type { MessageRow, Queue } from './storage/records.js';

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

export interface SqsServiceOptions<E> {
  /** The storage engine the semantics run on. */
  readonly engine: E;
  readonly logger: Logger;
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
 * A receive's look before any transaction: the request, and whether it surely finds nothing now.
 * Such a receive, the usual one of a consumer polling an empty or locked queue, costs one read.
 * `version` is the queue's count of wake-ups, read before its messages (see `LongPolls`).
 */
function* firstLook(storage: EngineStorage, input: Record<string, unknown>, now: number, polls: LongPolls) {
  const checked = yield* readReceiveRequest(storage.queues, input);
  const version = polls.version(checked.queue.id);
  return { checked, version, empty: yield* surelyEmpty(storage.messages, checked, now) };
}

/**
 * The SQS semantics behind every wire protocol: runs an operation by name on its JSON-shaped input
 * in a transaction of its storage engine (SQLite's group commit, or PostgreSQL's), and keeps a
 * receive waiting (long polling) until a message can be had.
 */
export class SqsService<S extends EngineStorage = EngineStorage, E extends SqsEngine<S> = SqsEngine<S>> implements SqsBackend {
  /** The storage engine beneath. */
  readonly engine: E;
  private readonly polls = new LongPolls();
  private readonly sweeper: Sweeper;
  private readonly mover: MessageMover;
  /** The engine's time, milliseconds since the epoch: the clock that every decision of the engine reads. */
  readonly clock: () => number;
  private readonly expiries: ExpiryLog;
  /** What an operation's context hands on once its transaction is committed. */
  private readonly afterCommitted: CommitHooks;
  private tries = 0;

  constructor(options: SqsServiceOptions<E>) {
    const { engine, logger } = options;
    this.engine = engine;
    this.clock = engine.time.now;
    this.expiries = new ExpiryLog(options.expiryRecorder, logger, options.expiryLogLevel ?? 'info');
    const sweepIntervalMs = options.sweepIntervalMs ?? 1000;
    this.sweeper = new Sweeper(this, { intervalMs: sweepIntervalMs, time: engine.time, expiries: this.expiries, compact: engine.compact }, logger);
    this.mover = new MessageMover(this, logger, engine.shared ? sweepIntervalMs : undefined);
    this.afterCommitted = {
      wake: (availability) => this.wake(availability),
      expired: (expired) => this.expiries.committed(expired),
      moveTasksChanged: () => this.mover.wake(),
    };
    // Background work that rewrites the store stops on corruption: a recovery starts from what was found.
    engine.onCorruption?.(() => {
      this.sweeper.stop();
      this.mover.stop();
    });
    // Another node sharing the database made messages available: its long polls here wake too.
    engine.onAvailable((availability) => this.wake(availability));
  }

  /** Runs work in one transaction of the engine with a context for it; resolves once it is committed. */
  transact<T>(baseUrl: string, work: (context: SqsContext & S) => Step<T>, options: TransactOptions = {}): Promise<T> {
    let context: OperationContext | undefined;
    const transaction = {
      // A transaction the engine runs again starts from nothing.
      run: (storage: S): Step<T> => {
        context = new OperationContext(this.afterCommitted, this.engine.retentionCutoff, this.clock(), baseUrl, options.holdForReplay === true, storage);
        return work(context as unknown as SqsContext & S);
      },
      announcements: (): readonly Availability[] => context!.announcements,
      needsRoom: options.needsRoom === true,
    };
    // Callbacks run after the COMMIT has returned.
    return this.engine.transact(transaction).then((value) => {
      for (const callback of context!.callbacks) callback();
      return value;
    });
  }

  /** Wakes the long polls that messages made available can serve. */
  private wake({ queueId, count, at }: Availability): void {
    if (at === undefined) this.polls.wake(queueId, count);
    else this.polls.wakeIn(queueId, at - this.clock(), this.clock());
  }

  async call(action: string, input: Record<string, unknown>, options: CallOptions): Promise<Record<string, unknown>> {
    options.carriedOut?.('local');
    try {
      if (action === 'ReceiveMessage') return await this.receive(input, options);
      const run = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
      if (!run) throw new SqsError('InvalidAction', `The action ${action} is not valid for this endpoint.`);
      const growth = GROWING[action];
      if (growth) this.engine.admit(growth(input));
      return await this.transact(options.baseUrl, (context) => run(context, input), { needsRoom: growth !== undefined });
    } catch (error) {
      // Reads outside a transaction (a receive's look for messages) meet the store's errors too.
      throw this.engine.judge(error);
    }
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
    this.engine.admit(GROWING[action]!(input));
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
      this.tries += 1;
      const now = this.clock();
      const { checked, version, empty } = await this.engine.read((storage) => firstLook(storage, input, now, this.polls));
      deadline ??= now + checked.waitSeconds * 1000;
      const round = empty
        ? { output: {}, more: false, request: checked, version }
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
      const nextAvailableAt = await this.engine.read((storage) => call(storage.messages.nextAvailableAt(request.queue, this.clock())));
      if (nextAvailableAt !== undefined) this.polls.wakeIn(queueId, nextAvailableAt - this.clock(), this.clock());
      woken = await waited;
    }
  }

  /** One try of a receive, in a transaction; with the queue's count of wake-ups read before its messages. */
  private *receiveRound(context: SqsContext, input: Record<string, unknown>) {
    const request = yield* readReceiveRequest(context.queues, input);
    const version = this.polls.version(request.queue.id);
    return { ...(yield* receiveMessages(context, request)), request, version };
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
    return this.engine.health();
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
    await this.engine.drain();
    this.expiries.flush();
  }
}

/** What a committed operation tells its service. */
interface CommitHooks {
  wake(availability: Availability): void;
  expired(expired: ExpiredByQueue): void;
  moveTasksChanged(): void;
}

/**
 * An operation's context in one run of its transaction (see SqsContext): its methods live on the
 * prototype and the storage's ports are assigned last, so that making one per operation creates no
 * closures and every context of an engine has one shape.
 */
class OperationContext {
  readonly callbacks: Array<() => void> = [];
  readonly announcements: Availability[] = [];
  private expired: ExpiredByQueue | undefined;

  constructor(
    private readonly hooks: CommitHooks,
    readonly retentionCutoff: SqsContext['retentionCutoff'],
    readonly now: number,
    readonly baseUrl: string,
    readonly holdForReplay: boolean,
    storage: EngineStorage,
  ) {
    Object.assign(this, storage);
  }

  afterCommit(callback: () => void): void {
    this.callbacks.push(callback);
  }

  messagesAvailable(queue: Queue, count = 1): void {
    this.available({ queueId: queue.id, count });
  }

  messagesAvailableAt(queue: Queue, at: number): void {
    this.available({ queueId: queue.id, count: 1, at });
  }

  messageExpired(queue: Queue, message: MessageRow): void {
    if (!this.expired) {
      const committed: ExpiredByQueue = (this.expired = new Map());
      this.callbacks.push(() => this.hooks.expired(committed));
    }
    addExpired(this.expired, queue.name, 1, this.now - message.enqueued_at);
  }

  moveTasksChanged(): void {
    this.callbacks.push(() => this.hooks.moveTasksChanged());
  }

  private available(availability: Availability): void {
    this.announcements.push(availability);
    this.callbacks.push(() => this.hooks.wake(availability));
  }
}
