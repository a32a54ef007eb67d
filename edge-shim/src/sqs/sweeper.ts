import type { Logger } from 'pino';
import { BackgroundWorkLog } from '../repeated-log.js';
import type { SqsContext } from './context.js';
import type { EngineTime } from './engine-clock.js';
import { type ExpiryLog, removeDead } from './expiry.js';
import { isDead } from './messages.js';
import { type Step, call } from './storage/step.js';
import type { MessageRow, Queue } from './storage/records.js';

// A sweep is one slice of work in the group commit that requests share: it stops once it has run
// this long, so that no request waits behind it for more than a few milliseconds, and the next
// slice follows at once while work is left.
const SLICE_MS = 3;
// Rows read or deleted per statement; the slice's clock is looked at between them.
const BATCH = 100;

interface Transactor {
  transact<T>(baseUrl: string, work: (context: SqsContext) => Step<T>, options?: { needsRoom?: boolean }): Promise<T>;
}

export interface SweeperSettings {
  /** How long between sweeps: a sweep goes on, slice after slice, until nothing is left to reclaim. */
  readonly intervalMs: number;
  /** The engine's clock, which each sweep first brings up to the wall clock. */
  readonly time: EngineTime;
  /** The messages expired, logged at the end of each sweep. */
  readonly expiries: ExpiryLog;
  /** Compacts the store at the end of a slice, for an engine that does it itself (see `SqsEngine.compact`). */
  readonly compact: ((more: boolean) => boolean) | undefined;
}

/**
 * Reclaims what no request will read again: messages past their retention period or purged,
 * deduplication ids and receive attempts past their 5 minutes, tallies of seconds gone by, and
 * what deleted queues left. It works in slices of a few milliseconds, each in the transaction of
 * a group commit, and goes on at once while it has more to do. Each sweep first keeps the engine's
 * clock up with the wall clock; what expired is logged once it is over.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Where the next slice starts among the queues, so that every queue gets its turn. */
  private nextQueue = 0;
  /** Queues the current pass has visited, and whether any of them has more left to reclaim. */
  private visited = 0;
  private queuesLeftMore = false;
  /** Whether slices are left of the current sweep. */
  private midSweep = false;
  /** The last slice asked for, which the next one waits for. */
  private sliced: Promise<unknown> = Promise.resolve();
  private readonly log: BackgroundWorkLog;

  constructor(
    private readonly service: Transactor,
    private readonly settings: SweeperSettings,
    logger: Logger,
  ) {
    this.log = new BackgroundWorkLog(logger, 'the sweep');
    this.schedule(settings.intervalMs);
  }

  /**
   * One slice of sweeping; resolves to whether there is more left to reclaim right away. Slices run
   * one after the other: on an engine whose transactions overlap, a slice would otherwise skip the
   * rows another one holds and end as if nothing were left.
   */
  sweepOnce(): Promise<boolean> {
    const slice = this.sliced.then(() => this.sweepSlice());
    this.sliced = slice.catch(() => {});
    return slice;
  }

  private async sweepSlice(): Promise<boolean> {
    // A sweep first brings the engine's clock up to the wall clock, so that its slices see that time.
    if (!this.midSweep) await this.service.transact('', (context) => this.followWallClock(context));
    this.midSweep = false;
    const more = await this.slice();
    this.midSweep = more;
    if (!more) this.settings.expiries.flush();
    return more;
  }

  private *followWallClock(context: SqsContext): Step<void> {
    this.settings.time.followWallClock((callback) => context.afterCommit(callback));
  }

  private slice(): Promise<boolean> {
    // On a full disk a slice that fails is not run again at once: it takes none of the room that the
    // reserve gave up for requests, and the next sweep does its work.
    return this.service.transact('', (context) => this.sliceIn(context), { needsRoom: true });
  }

  private *sliceIn(context: SqsContext): Step<boolean> {
    const deadline = performance.now() + SLICE_MS;
    const inTime = () => performance.now() < deadline;
    const queues = yield* call(context.queues.all());
    // A pass visits every queue once, over as many slices as it takes, then reclaims the rest.
    while (this.visited < queues.length) {
      if (!inTime()) return true;
      const index = this.nextQueue % queues.length;
      this.nextQueue = index + 1;
      this.visited += 1;
      this.queuesLeftMore = (yield* sweepQueue(context, queues[index]!, inTime)) || this.queuesLeftMore;
    }
    while (yield* call(context.queues.reclaimDeleted(BATCH))) if (!inTime()) return true;
    let more = this.queuesLeftMore;
    more = (yield* call(context.deduplication.forgetExpired(context.now, BATCH))) === BATCH || more;
    more = (yield* call(context.receiveAttempts.forgetExpired(context.now, BATCH))) === BATCH || more;
    yield* call(context.queues.forgetDeletions(context.now - 60_000));
    if (this.settings.compact && inTime() && this.settings.compact(more)) more = true;
    this.visited = 0;
    this.queuesLeftMore = false;
    return more;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.sweepOnce().then(
        (more) => {
          this.log.succeeded();
          this.schedule(more ? 0 : this.settings.intervalMs);
        },
        (error: unknown) => {
          this.log.failed(error, 'sweep failed; trying again at the next interval');
          this.schedule(this.settings.intervalMs);
        },
      );
    }, delayMs);
    this.timer.unref();
  }
}

/** Deletes a queue's expired and purged messages while the slice lasts; whether any are left. */
function* sweepQueue(context: SqsContext, queue: Queue, inTime: () => boolean): Step<boolean> {
  const { messages, now } = context;
  let deleted = 0;
  function* sweep(rows: MessageRow[]): Step<boolean> {
    for (const message of rows) {
      if (!inTime()) return false;
      if (isDead(context, queue, message)) yield* removeDead(context, queue, message);
      deleted += 1;
    }
    return rows.length < BATCH;
  }
  const expiredDone = yield* sweep(yield* call(messages.expired(queue, now, BATCH)));
  const purgedDone = expiredDone && (yield* sweep(yield* call(messages.purged(queue, BATCH))));
  if (purgedDone && queue.fifo) yield* call(messages.removePurgedGroups(queue));
  yield* call(messages.forgetPastTallies(queue, now));
  // Messages in flight were deleted: their FIFO groups may be unlocked.
  if (queue.fifo && deleted > 0) context.messagesAvailable(queue);
  return !(expiredDone && purgedDone);
}
