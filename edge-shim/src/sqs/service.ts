import type { Logger } from 'pino';
import { ACTIONS } from './actions/index.js';
import { receive } from './actions/receive-message.js';
import { CommitGroup } from './commit-group.js';
import type { SqsContext } from './context.js';
import type { Db } from './database.js';
import { DeduplicationStore } from './deduplication.js';
import { SqsError } from './errors.js';
import { LongPolls } from './long-polls.js';
import { MessageStore } from './messages.js';
import { MessageMover } from './move-tasks.js';
import type { Queue } from './queues.js';
import { QueueRegistry } from './queues.js';
import { ReceiveAttemptStore } from './receive-attempts.js';
import { Sweeper } from './sweeper.js';

export interface SqsServiceOptions {
  readonly db: Db;
  readonly region: string;
  readonly accountId: string;
  readonly logger: Logger;
  /** Milliseconds since the epoch; tests pass a clock they can move. */
  readonly clock?: () => number;
  /** How often expired messages, deduplication ids and purged messages are reclaimed. */
  readonly sweepIntervalMs?: number;
}

export interface CallOptions {
  /** Scheme and authority the client used, for the queue URLs in responses. */
  readonly baseUrl: string;
  /** Ends a long poll early when the client has gone. */
  readonly signal?: AbortSignal;
}

/**
 * The SQS semantics behind every wire protocol: runs an operation by name on its JSON-shaped input
 * inside a group commit, and keeps a receive waiting (long polling) until a message can be had.
 */
export class SqsService {
  readonly queues: QueueRegistry;
  private readonly db: Db;
  private readonly messages: MessageStore;
  private readonly deduplication: DeduplicationStore;
  private readonly receiveAttempts: ReceiveAttemptStore;
  private readonly commits: CommitGroup;
  private readonly polls = new LongPolls();
  private readonly sweeper: Sweeper;
  private readonly mover: MessageMover;
  private readonly clock: () => number;
  private readonly logger: Logger;

  constructor(options: SqsServiceOptions) {
    this.db = options.db;
    this.clock = options.clock ?? Date.now;
    this.logger = options.logger;
    this.queues = new QueueRegistry(options.db, options.region, options.accountId);
    this.messages = new MessageStore(options.db);
    this.deduplication = new DeduplicationStore(options.db);
    this.receiveAttempts = new ReceiveAttemptStore(options.db);
    this.commits = new CommitGroup(options.db, (error) => {
      this.logger.error({ err: error }, 'commit failed; the operations in it were answered with an error');
      try {
        this.queues.reload();
      } catch (reloadError) {
        this.logger.error({ err: reloadError }, 'cannot reload the queues after a failed commit');
      }
    });
    this.sweeper = new Sweeper(this, options.sweepIntervalMs ?? 1000, options.logger);
    this.mover = new MessageMover(this, options.db, options.logger);
  }

  /** Runs work inside a group commit with a context for it; resolves once it is committed. */
  transact<T>(baseUrl: string, work: (context: SqsContext) => T): Promise<T> {
    return this.commits.run(() => {
      const callbacks: Array<() => void> = [];
      const context: SqsContext = {
        db: this.db,
        queues: this.queues,
        messages: this.messages,
        deduplication: this.deduplication,
        receiveAttempts: this.receiveAttempts,
        now: this.clock(),
        baseUrl,
        afterCommit: (callback) => callbacks.push(callback),
        messagesAvailable: (queue: Queue) => callbacks.push(() => this.polls.wake(queue.id)),
      };
      const value = this.queues.undoingOnFailure(() => work(context));
      // Runs after this savepoint is released and the group's COMMIT has returned.
      return { value, callbacks };
    }).then(({ value, callbacks }) => {
      for (const callback of callbacks) callback();
      return value;
    });
  }

  async call(action: string, input: Record<string, unknown>, options: CallOptions): Promise<Record<string, unknown>> {
    if (action === 'ReceiveMessage') return this.receive(input, options);
    const run = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
    if (!run) throw new SqsError('InvalidAction', `The action ${action} is not valid for this endpoint.`);
    return this.transact(options.baseUrl, (context) => run(context, input));
  }

  /**
   * ReceiveMessage with long polling: while nothing is received and the wait is not over, the
   * receive sleeps until a commit may have made a message available on the queue (a send, a delete
   * that unlocks a FIFO group, a visibility change) or until the next invisible message's time comes,
   * whichever is first, then tries again. It never polls on a timer.
   */
  private async receive(input: Record<string, unknown>, options: CallOptions): Promise<Record<string, unknown>> {
    let deadline: number | undefined;
    for (;;) {
      // A client gone while its receive waited must not be handed messages it will never see.
      if (deadline !== undefined && options.signal?.aborted) return {};
      const round = await this.transact(options.baseUrl, (context) => {
        const { output, queue, waitSeconds, more } = receive(context, input);
        deadline ??= context.now + waitSeconds * 1000;
        const waiting = output.Messages === undefined && context.now < deadline;
        return {
          output,
          queueId: queue.id,
          version: this.polls.version(queue.id),
          more,
          remainingMs: waiting ? deadline - context.now : 0,
          nextVisibleAt: waiting ? context.messages.nextVisibleAt(queue, context.now) : undefined,
        };
      });
      if (round.remainingMs <= 0 || this.polls.isClosed || options.signal?.aborted) return round.output;
      if (round.more) continue;
      const untilVisible = round.nextVisibleAt === undefined ? Infinity : round.nextVisibleAt - this.clock();
      await this.polls.wait(round.queueId, round.version, Math.min(round.remainingMs, untilVisible), options.signal);
    }
  }

  /**
   * Reclaims expired and purged messages, deduplication ids and receive attempts now instead of at
   * the next sweep; resolves to whether more is left. For tests and tools that move the clock.
   */
  sweep(): Promise<boolean> {
    return this.sweeper.sweepOnce();
  }

  /** How many receives are waiting for messages now (long polls). */
  get waitingReceives(): number {
    return this.polls.size;
  }

  /** Whether the database answers; for health checks. */
  healthy(): boolean {
    try {
      this.db.prepare('SELECT 1').get();
      return true;
    } catch {
      return false;
    }
  }

  /** Stops background work and answers every long poll now; requests in flight still run. */
  close(): void {
    this.sweeper.stop();
    this.mover.stop();
    this.polls.close();
  }

  /** After close(): refuses new work and resolves once queued work is committed, before the database closes. */
  drain(): Promise<void> {
    return this.commits.close();
  }
}
