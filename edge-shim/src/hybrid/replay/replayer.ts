import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { MetricsRecorder } from '../../observability/metrics.js';
import { SqsError } from '../../sqs/errors.js';
import type { LocalQueues } from '../local-queues.js';
import type { ModeMachine } from '../mode.js';
import { RegionUnavailable } from '../region/client.js';
import type { Region } from '../region/region.js';
import { BATCH_ENTRIES, bySize, replayEntry } from './batches.js';
import { ReplayRate } from './rate.js';
import type { ReplayMessage, ReplayStore } from './store.js';

export interface ReplayOptions {
  /** Messages per second handed to the region at most, all queues together. */
  readonly ratePerSecond: number;
  /** Batches in flight per queue; a FIFO group is never in two at once (it is locked while taken). */
  readonly concurrency: number;
}

export interface QueueReplay {
  replayed: number;
  /** Messages the region refused for good (the client's fault), kept at the edge. */
  refused: number;
  lastError: string | undefined;
}

export interface ReplayerParts {
  readonly store: ReplayStore;
  readonly local: Pick<LocalQueues, 'queues' | 'storedMessages'>;
  readonly region: Pick<Region, 'resolve' | 'sendBatch'>;
  readonly mode: Pick<ModeMachine, 'mode' | 'replayDone'>;
  readonly metrics: MetricsRecorder;
  readonly logger: Logger;
  readonly clock?: () => number;
}

// How long a message taken for replay stays invisible at the edge: the time a batch may take.
const TAKEN_FOR_SECONDS = 60;
// A message the region refused for good is set aside this long before it is tried again.
const REFUSED_FOR_SECONDS = 3600;
// Without a wake-up, queues are looked at again this often (messages in flight at the edge may have become visible).
const IDLE_LOOK_MS = 1000;
const RATE_WINDOW_MS = 10_000;

interface SendAnswer {
  Successful?: Array<{ Id: string }>;
  Failed?: Array<{ Id: string; SenderFault: boolean; Code: string; Message?: string }>;
}

/**
 * Hands what the edge stored to the region, queue by queue, whenever the region is there: FIFO
 * groups strictly in order (a group is taken, and locked, by one batch at a time), SendMessageBatch
 * of up to 10, each message with its body, attributes, trace header, group and deduplication id as
 * sent (for FIFO the explicit id or the content hash the edge computed), so that the region's
 * 5-minute deduplication drops anything sent twice. A message leaves the edge only once the region
 * acknowledged it: the edge's store is the durable cursor, and a crash or a new outage in the
 * middle resumes where it stopped. Messages in flight at the edge are left alone until deleted
 * (never replayed) or visible again (replayed).
 */
export class Replayer {
  private readonly rate: ReplayRate;
  private readonly perQueue = new Map<string, QueueReplay>();
  private readonly recent: Array<{ at: number; count: number; queue: string }> = [];
  private readonly clock: () => number;
  private running: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private stopping = new AbortController();
  replayed = 0;
  lastError: string | undefined;

  constructor(
    private readonly parts: ReplayerParts,
    private readonly options: ReplayOptions,
  ) {
    this.clock = parts.clock ?? Date.now;
    this.rate = new ReplayRate(options.ratePerSecond, this.clock);
  }

  /** Replays whenever the region is there (online or replaying) and the edge holds messages. */
  start(): void {
    this.running ??= this.loop();
  }

  /** Something was stored at the edge, or the mode changed: look again now. */
  wake(): void {
    this.wakeUp?.();
  }

  /** Messages replayed per second over the last 10 seconds, of one queue or all. */
  ratePerSecond(queue?: string): number {
    const since = this.clock() - RATE_WINDOW_MS;
    const counted = this.recent.filter((entry) => entry.at >= since && (queue === undefined || entry.queue === queue));
    return counted.reduce((sum, entry) => sum + entry.count, 0) / (RATE_WINDOW_MS / 1000);
  }

  queueProgress(name: string): QueueReplay | undefined {
    return this.perQueue.get(name);
  }

  /** Whether a send to this queue must go behind messages the edge still holds for it. */
  holdsBacklog(name: string): boolean {
    return this.parts.local.storedMessages(name) > 0;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { local, mode, logger } = this.parts;
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      if (mode.mode === 'offline') {
        await this.idle(IDLE_LOOK_MS);
        continue;
      }
      let progressed: boolean[];
      try {
        const queues = local.queues
          .all()
          .map((queue) => queue.name)
          .filter((name) => local.storedMessages(name) > 0);
        if (queues.length === 0) {
          mode.replayDone();
          await this.idle(IDLE_LOOK_MS);
          continue;
        }
        progressed = await Promise.all(queues.map((name) => this.replayQueue(name, signal)));
      } catch (error) {
        // The local store failed (a full disk, the database closing): what was taken stays at the
        // edge, visible again after its visibility timeout or a restart; the loop goes on.
        this.lastError = (error as Error).message;
        logger.error({ err: error }, 'the replay failed at the edge; it tries again');
        progressed = [];
      }
      if (!progressed.some(Boolean)) await this.idle(IDLE_LOOK_MS);
    }
  }

  /** Waits `ms`, or until woken or stopped. */
  private async idle(ms: number): Promise<void> {
    const woken = new AbortController();
    this.wakeUp = () => woken.abort();
    await sleep(ms, undefined, { signal: AbortSignal.any([woken.signal, this.stopping.signal]) }).catch(() => {});
  }

  /**
   * Replays what is visible of one queue now, with `concurrency` batches in flight; whether any
   * went. Each worker keeps the edge's own work off the round trip to the region: it takes its next
   * messages while a batch is on its way, and deletes what the region acknowledged while the next
   * batch goes out. A FIFO group stays locked while its messages are taken and until their delete
   * is committed, so no later take overtakes them.
   */
  private async replayQueue(name: string, signal: AbortSignal): Promise<boolean> {
    const progress = this.perQueue.get(name) ?? { replayed: 0, refused: 0, lastError: undefined };
    this.perQueue.set(name, progress);
    let url: string;
    try {
      url = await this.parts.region.resolve(name);
    } catch (error) {
      this.failed(progress, name, error);
      return false;
    }
    let sent = 0;
    const worker = async () => {
      const deletes: Array<Promise<void>> = [];
      let next: Promise<ReplayMessage[]> | undefined = this.take(name);
      try {
        while (next) {
          const taken = await next;
          next = undefined;
          if (taken.length === 0) return;
          if (signal.aborted || this.parts.mode.mode === 'offline') {
            await this.giveBack(name, taken);
            return;
          }
          next = this.take(name);
          const finished = new Set<ReplayMessage>();
          for (const batch of bySize(taken)) {
            await this.rate.take(batch.length, signal);
            const { done, deleted } = await this.hand(name, url, batch, progress);
            deletes.push(deleted);
            for (const message of done) finished.add(message);
            // The rest waits: a later batch must not overtake what this one could not hand over.
            if (done.length < batch.length) break;
          }
          sent += finished.size;
          if (finished.size < taken.length) {
            // What was not handed over goes back, in order, for the next round.
            await this.giveBack(name, taken.filter((message) => !finished.has(message)));
            return;
          }
        }
      } finally {
        // Messages taken ahead and not sent go back now, not when their visibility runs out.
        if (next) await this.giveBack(name, await next);
        await Promise.all(deletes);
      }
    };
    await Promise.all(Array.from({ length: this.options.concurrency }, worker));
    return sent > 0;
  }

  /** Takes the next messages of a queue to replay; a failure is the awaiting worker's, never unhandled meanwhile. */
  private take(name: string): Promise<ReplayMessage[]> {
    const taken = this.parts.store.take(name, BATCH_ENTRIES, TAKEN_FOR_SECONDS);
    taken.catch(() => {});
    return taken;
  }

  /**
   * Sends one batch to the region; the messages done with (acknowledged, or refused for good and
   * set aside), and the delete at the edge of those the region acknowledged, under way.
   */
  private async hand(name: string, url: string, batch: ReplayMessage[], progress: QueueReplay): Promise<{ done: ReplayMessage[]; deleted: Promise<void> }> {
    const entries = batch.map((message, index) => replayEntry(message, `m${index}`));
    let answer: SendAnswer;
    try {
      answer = (await this.parts.region.sendBatch(url, entries, this.stopping.signal)) as SendAnswer;
    } catch (error) {
      this.failed(progress, name, error);
      if (error instanceof RegionUnavailable && /throttl/i.test(error.message)) this.rate.throttled();
      return { done: [], deleted: Promise.resolve() };
    }
    const byId = (id: string) => batch[Number(id.slice(1))]!;
    const handed = (answer.Successful ?? []).map((entry) => byId(entry.Id));
    let deleted = Promise.resolve();
    if (handed.length > 0) {
      deleted = this.parts.store.handedOver(name, handed).then(() => this.count(name, progress, handed.length));
      // Awaited by the worker; until then a failure must not count as unhandled.
      deleted.catch(() => {});
      this.rate.accepted();
    }
    const refused: ReplayMessage[] = [];
    for (const failure of answer.Failed ?? []) {
      if (failure.SenderFault) {
        // The region will never take it: set aside, visible to the operator, not retried in a loop.
        const message = byId(failure.Id);
        refused.push(message);
        progress.refused += 1;
        this.failed(progress, name, new Error(`the region refused message ${message.messageId}: ${failure.Code} ${failure.Message ?? ''}`));
      } else if (/throttl/i.test(failure.Code)) {
        this.rate.throttled();
      }
    }
    await this.giveBack(name, refused, REFUSED_FOR_SECONDS);
    return { done: [...handed, ...refused], deleted };
  }

  /** Gives taken messages back to the edge's store, visible after `seconds`; a failure leaves them to their visibility timeout. */
  private async giveBack(name: string, messages: ReplayMessage[], seconds = 0): Promise<void> {
    await this.parts.store.giveBack(name, messages, seconds).catch((error: unknown) => {
      this.parts.logger.warn({ queue: name, err: error }, 'cannot make messages taken for replay visible again; they will be when their visibility times out');
    });
  }

  private count(queue: string, progress: QueueReplay, count: number): void {
    if (count === 0) return;
    progress.replayed += count;
    this.replayed += count;
    this.parts.metrics.messagesReplayed(queue, count);
    const now = this.clock();
    this.recent.push({ at: now, count, queue });
    while (this.recent.length > 0 && this.recent[0]!.at < now - RATE_WINDOW_MS) this.recent.shift();
  }

  private failed(progress: QueueReplay, name: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    progress.lastError = message;
    this.lastError = `${name}: ${message}`;
    const level = error instanceof RegionUnavailable || error instanceof SqsError ? 'warn' : 'error';
    this.parts.logger[level]({ queue: name, err: error }, 'replay of a batch failed; its messages stay at the edge');
  }
}
