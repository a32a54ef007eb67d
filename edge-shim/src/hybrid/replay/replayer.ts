import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { MetricsRecorder } from '../../observability/metrics.js';
import { RepeatedLog } from '../../repeated-log.js';
import { SqsError } from '../../sqs/errors.js';
import { CongestionWindow, type Transfer, type TransferOutcome } from '../link/congestion.js';
import type { LinkEstimates } from '../link/estimates.js';
import type { Lease, QueueView } from '../site/ports.js';
import type { ModeMachine } from '../mode.js';
import { RegionUnavailable } from '../region/client.js';
import type { Region } from '../region/region.js';
import { BATCH_ENTRIES, bySize, replayEntry } from './batches.js';
import { ReplayRate } from './rate.js';
import type { ReplayMessage, ReplayStore } from './store.js';

export interface ReplayOptions {
  /** Messages per second handed to the region at most, all queues together. */
  readonly ratePerSecond: number;
  /** Bytes per second handed to the region at most, all queues together; none when absent. */
  readonly bytesPerSecond?: number;
  /** Batches in flight at most, all queues together: the ceiling of the congestion window. */
  readonly concurrency: number;
  /** The least time a batch is given (the live requests' timeout). */
  readonly minTimeoutMs: number;
}

export interface QueueReplay {
  replayed: number;
  /** Messages the region refused for good (the client's fault), kept at the edge. */
  refused: number;
  /** FIFO messages sent again after SQS's deduplication interval: the region may hold them twice. */
  possiblyDuplicated: number;
  lastError: string | undefined;
  /** Why the queue's replay waits, when it does (the region lacks the queue and refuses to create it...). */
  parked: { readonly reason: string; readonly until: number } | undefined;
}

export interface ReplayerParts {
  readonly store: ReplayStore;
  /** The site's queues and what they hold. */
  readonly view: QueueView;
  /** This node replays only while it holds the site's replay lease (always, for one node). */
  readonly lease: Lease;
  readonly region: Pick<Region, 'resolve' | 'sendBatch' | 'recreate'>;
  readonly mode: Pick<ModeMachine, 'mode' | 'replayDone'>;
  readonly link: LinkEstimates;
  /** Whether a queue's replay must wait (for the sync of the fallback agents' work it depends on). */
  readonly mayReplay: (queueName: string) => boolean;
  /** A queue's replay priority: higher goes first when the path has room for only some. */
  readonly priorityOf: (queueName: string) => number;
  readonly metrics: MetricsRecorder;
  readonly logger: Logger;
  readonly clock?: () => number;
}

// How long a message taken for replay stays invisible at the edge: longer than it may wait for room
// on the path. A crash gives it back at the next start (the lease), whatever is left of this.
const TAKEN_FOR_SECONDS = 900;
// A message the region refused for good is set aside this long before it is tried again.
const REFUSED_FOR_SECONDS = 3600;
// A queue whose replay the region refuses (it cannot create the queue, say) is tried again after this.
const PARKED_FOR_MS = 5 * 60_000;
// Without a wake-up, queues are looked at again this often (messages in flight at the edge may have become visible).
const IDLE_LOOK_MS = 1000;
const RATE_WINDOW_MS = 10_000;
// SQS drops a FIFO message's twin only within 5 minutes of the first; a margin for clocks and transit.
const DEDUPLICATION_SAFE_MS = 4.5 * 60_000;

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
 *
 * The way back is a congestion-controlled transfer (link/congestion.ts): batches in flight and
 * their size follow what the path and the region take, live requests go first, the operator's
 * caps bound it, and higher-priority queues get room first. A batch that got no answer is sent
 * again with the same ids only once its earlier attempt is surely over; a FIFO message that could
 * not be sent again within the deduplication interval is counted as possibly duplicated.
 */
export class Replayer {
  private readonly rate: ReplayRate;
  readonly window: CongestionWindow;
  private readonly perQueue = new Map<string, QueueReplay>();
  private readonly recent: Array<{ at: number; count: number; queue: string }> = [];
  private readonly clock: () => number;
  private readonly log: RepeatedLog;
  /** Messages of an unanswered batch, held back until their attempt is surely over. */
  private readonly heldBack = new WeakSet<ReplayMessage>();
  /** The timers that give back unanswered batches once their attempt is surely over. */
  private readonly quiet = new Set<NodeJS.Timeout>();
  private running: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private readonly stopping = new AbortController();
  replayed = 0;
  possiblyDuplicated = 0;
  lastError: string | undefined;

  constructor(
    private readonly parts: ReplayerParts,
    options: ReplayOptions,
  ) {
    this.clock = parts.clock ?? Date.now;
    this.rate = new ReplayRate({ messagesPerSecond: options.ratePerSecond, bytesPerSecond: options.bytesPerSecond, clock: this.clock });
    this.window = new CongestionWindow({ maxWindow: options.concurrency, estimates: parts.link, minTimeoutMs: options.minTimeoutMs, clock: this.clock });
    this.log = new RepeatedLog(parts.logger, undefined, this.clock);
    // Every worker of every queue being replayed may wait on it for room at once: more than Node's
    // default of 10 listeners is the design, not a leak (each stops listening once it has room).
    setMaxListeners(0, this.stopping.signal);
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

  /** Why a queue's replay waits now, if it does. */
  waitReason(name: string): string | undefined {
    if (!this.parts.mayReplay(name)) return 'the sync of the fallback agents\' work, which its tasks depend on';
    const parked = this.perQueue.get(name)?.parked;
    return parked && parked.until > this.clock() ? parked.reason : undefined;
  }

  async stop(): Promise<void> {
    // Batches waiting out their quiet time stay taken: the next replay's start makes them visible again, held.
    for (const timer of this.quiet) clearTimeout(timer);
    this.quiet.clear();
    this.stopping.abort();
    this.wake();
    await this.running;
  }

  private async loop(): Promise<void> {
    const { lease, store, logger } = this.parts;
    const signal = this.stopping.signal;
    let leaseHeld = false;
    while (!signal.aborted) {
      let progressed = false;
      try {
        if (lease.held && !leaseHeld) {
          // What the replay had taken when it last stopped, here or on the node that held the lease before.
          const released = await store.releaseLeases();
          if (released > 0) logger.info({ released }, 'made visible again the messages the replay had taken when it last stopped');
        }
        leaseHeld = lease.held;
        progressed = await this.replayReady(signal);
      } catch (error) {
        // The local store failed (a full disk, the database closing): what was taken stays at the
        // edge, visible again after its visibility timeout or a restart; the loop goes on.
        this.lastError = (error as Error).message;
        logger.error({ err: error }, 'the replay failed at the edge; it tries again');
      }
      if (!progressed) await this.idle(IDLE_LOOK_MS);
    }
  }

  /** One look at the site's backlog: hands over what is ready, if the region is there and this node replays; whether anything moved. */
  private async replayReady(signal: AbortSignal): Promise<boolean> {
    const { view, lease, mode } = this.parts;
    if (mode.mode === 'offline') return false;
    const backlogged = view
      .queues()
      .map((queue) => queue.name)
      .filter((name) => view.storedMessages(name) > 0);
    if (backlogged.length === 0) {
      mode.replayDone();
      return false;
    }
    // Another node of the site replays: this one only sees the backlog go.
    if (!lease.held) return false;
    const now = this.clock();
    // Started in priority order: the first to ask for room gets it at once, before any other waits.
    const ready = backlogged
      .filter((name) => this.parts.mayReplay(name) && !((this.perQueue.get(name)?.parked?.until ?? 0) > now))
      .sort((a, b) => this.parts.priorityOf(b) - this.parts.priorityOf(a));
    const progressed = await Promise.all(ready.map((name) => this.replayQueue(name, signal)));
    return progressed.some(Boolean);
  }

  /** Waits `ms`, or until woken or stopped. */
  private async idle(ms: number): Promise<void> {
    const woken = new AbortController();
    this.wakeUp = () => woken.abort();
    await sleep(ms, undefined, { signal: AbortSignal.any([woken.signal, this.stopping.signal]) }).catch(() => {});
  }

  private progressOf(name: string): QueueReplay {
    let progress = this.perQueue.get(name);
    if (!progress) {
      progress = { replayed: 0, refused: 0, possiblyDuplicated: 0, lastError: undefined, parked: undefined };
      this.perQueue.set(name, progress);
    }
    return progress;
  }

  /**
   * Replays what is visible of one queue now, with as many workers as the window may ever allow;
   * whether any went. A worker first waits for room in the window, then takes its messages, so
   * that nothing is taken from the edge's store to wait for room. It keeps the edge's own work off
   * the round trip to the region: it takes its next messages while a batch is on its way, and
   * deletes what the region acknowledged while the next batch goes out. A FIFO group stays locked
   * while its messages are taken and until their delete is committed, so no later take overtakes them.
   */
  private async replayQueue(name: string, signal: AbortSignal): Promise<boolean> {
    const progress = this.progressOf(name);
    progress.parked = undefined;
    let url: string;
    try {
      url = await this.parts.region.resolve(name);
    } catch (error) {
      // The region refuses the queue for good (it will not be created, or is not this edge's): wait, saying why.
      if (error instanceof SqsError && error.code !== 'QueueDoesNotExist') this.park(progress, name, `the region refuses this queue: ${error.code} (${error.message})`);
      else this.failed(progress, name, error);
      return false;
    }
    const priority = this.parts.priorityOf(name);
    let sent = 0;
    const worker = async () => {
      const deletes: Array<Promise<void>> = [];
      let next: Promise<ReplayMessage[]> | undefined;
      try {
        for (;;) {
          let room = await this.window.acquire(priority, signal).catch(() => undefined);
          if (!room) return;
          const taken = await (next ?? this.take(name)).catch((error: unknown) => {
            room!.finish('refused');
            throw error;
          });
          next = undefined;
          if (taken.length === 0 || signal.aborted || this.parts.mode.mode === 'offline' || progress.parked) {
            room.finish('refused');
            await this.giveBack(name, taken);
            return;
          }
          next = this.take(name);
          const finished = new Set<ReplayMessage>();
          for (const batch of bySize(taken, this.window.batchBytes())) {
            room ??= await this.window.acquire(priority, signal).catch(() => undefined);
            if (!room) break;
            const handed = await this.hand(name, url, batch, room, progress);
            room = undefined;
            if (!handed) break;
            deletes.push(handed.deleted);
            url = handed.url;
            for (const message of handed.done) finished.add(message);
            // The rest waits: a later batch must not overtake what this one could not hand over.
            if (handed.done.length < batch.length) break;
          }
          room?.finish('refused');
          sent += finished.size;
          if (finished.size < taken.length) {
            // What was not handed over (nor held back after an unanswered attempt) goes back, in order, for the next round.
            await this.giveBack(name, taken.filter((message) => !finished.has(message) && !this.heldBack.has(message)));
            return;
          }
        }
      } finally {
        // Messages taken ahead and not sent go back now, not when their lease runs out.
        if (next) await this.giveBack(name, await next.catch(() => []));
        await Promise.all(deletes);
      }
    };
    await Promise.all(Array.from({ length: this.window.maxSize }, worker));
    return sent > 0;
  }

  /** Takes the next messages of a queue to replay; a failure is the awaiting worker's, never unhandled meanwhile. */
  private take(name: string): Promise<ReplayMessage[]> {
    const taken = this.parts.store.take(name, BATCH_ENTRIES, TAKEN_FOR_SECONDS);
    taken.catch(() => {});
    return taken;
  }

  /**
   * Sends one batch to the region in the room it was given, once the operator's caps allow; the
   * messages done with (acknowledged, or refused for good and set aside), the delete at the edge
   * of those the region acknowledged, under way, and the queue's URL in the region (new if it had
   * to be created again). Undefined when the batch did not go out or got no usable answer.
   */
  private async hand(
    name: string,
    url: string,
    batch: ReplayMessage[],
    room: Transfer,
    progress: QueueReplay,
  ): Promise<{ done: ReplayMessage[]; deleted: Promise<void>; url: string } | undefined> {
    const signal = this.stopping.signal;
    const bytes = batch.reduce((sum, message) => sum + message.size, 0);
    await this.rate.take(batch.length, bytes, signal);
    const transfer = room;
    const timeoutMs = await transfer.begin(bytes, signal);
    if (signal.aborted) {
      transfer.finish('refused');
      return undefined;
    }
    const entries = batch.map((message, index) => replayEntry(message, `m${index}`));
    let answer: SendAnswer;
    let outcome: TransferOutcome = 'delivered';
    try {
      answer = (await this.parts.region.sendBatch(url, entries, { signal, timeoutMs })) as SendAnswer;
    } catch (error) {
      transfer.finish(error instanceof RegionUnavailable ? (error.kind === 'throttled' ? 'throttled' : error.kind === 'timeout' ? 'timeout' : 'failed') : 'refused');
      if (error instanceof SqsError && error.code === 'QueueDoesNotExist') {
        const recreated = await this.recreate(name, progress);
        return recreated === undefined ? undefined : { done: [], deleted: Promise.resolve(), url: recreated };
      }
      this.failed(progress, name, error);
      if (error instanceof RegionUnavailable && error.maybeDone && !signal.aborted) await this.holdBack(name, batch);
      else if (error instanceof SqsError) this.park(progress, name, `the region refuses this queue's messages: ${error.code} (${error.message})`);
      return undefined;
    }
    const byId = (id: string) => batch[Number(id.slice(1))]!;
    const handed = (answer.Successful ?? []).map((entry) => byId(entry.Id));
    const deleted = handed.length > 0 ? this.parts.store.handedOver(name, handed).then(() => this.count(name, progress, handed)) : Promise.resolve();
    // Awaited by the worker; until then a failure must not count as unhandled.
    deleted.catch(() => {});
    const refused: ReplayMessage[] = [];
    for (const failure of answer.Failed ?? []) {
      if (failure.SenderFault) {
        // The region will never take it: set aside, visible to the operator, not retried in a loop.
        const message = byId(failure.Id);
        refused.push(message);
        progress.refused += 1;
        this.failed(progress, name, new Error(`the region refused message ${message.messageId}: ${failure.Code} ${failure.Message ?? ''}`));
      } else if (/throttl/i.test(failure.Code)) {
        outcome = 'throttled';
      }
    }
    transfer.finish(outcome);
    this.parts.logger.debug({ queue: name, handed: handed.length, refused: refused.length, bytes, window: this.window.size }, 'replay batch answered');
    await this.giveBack(name, refused, REFUSED_FOR_SECONDS);
    return { done: [...handed, ...refused], deleted, url };
  }

  /**
   * A batch got no answer (or a server error): the region may have taken it. Its messages are held
   * for the replay, as a client's send that got no answer is: no receive at the edge (a fallback
   * agent, once the edge is offline) runs them beside their twins in the region. They are sent
   * again with the same ids, but only once the attempt is surely over (after a quiet time the
   * length of the slowest transfers lately), so that two attempts of one message are never on
   * their way at once; and the time of the first attempt is kept for the deduplication interval.
   */
  private async holdBack(name: string, batch: ReplayMessage[]): Promise<void> {
    for (const message of batch) this.heldBack.add(message);
    try {
      // Held from every receive at the edge from now on: the region may be running them already.
      await this.parts.store.unanswered(batch);
    } catch (error) {
      // Left under this take until their lease ends or the replay restarts, rather than given back unheld.
      this.parts.logger.warn({ queue: name, err: error }, 'cannot record an unanswered replay batch');
      return;
    }
    // Still under this take for the quiet time, then offered to the replay alone.
    const timer = setTimeout(() => {
      this.quiet.delete(timer);
      void this.giveBack(name, batch);
    }, this.window.quietMs());
    this.quiet.add(timer);
  }

  /** The region lost the queue: it is created again from the edge's copy, or the queue's replay is parked with why. */
  private async recreate(name: string, progress: QueueReplay): Promise<string | undefined> {
    try {
      return await this.parts.region.recreate(name);
    } catch (error) {
      const reason = error instanceof SqsError ? `${error.code} (${error.message})` : error instanceof Error ? error.message : String(error);
      this.park(progress, name, `the region lacks this queue and the edge cannot create it again: ${reason}`);
      return undefined;
    }
  }

  private park(progress: QueueReplay, name: string, reason: string): void {
    progress.parked = { reason, until: this.clock() + PARKED_FOR_MS };
    progress.lastError = reason;
    this.lastError = `${name}: ${reason}`;
    this.log.log('error', `${name}:parked`, { queue: name, retryInSeconds: PARKED_FOR_MS / 1000 }, `the replay of ${name} waits: ${reason}`);
  }

  /** Gives taken messages back to the edge's store, visible after `seconds`; a failure leaves them to their lease. */
  private async giveBack(name: string, messages: ReplayMessage[], seconds = 0): Promise<void> {
    await this.parts.store.giveBack(name, messages, seconds).catch((error: unknown) => {
      this.parts.logger.warn({ queue: name, err: error }, 'cannot make messages taken for replay visible again; they will be when their lease ends');
    });
  }

  private count(queue: string, progress: QueueReplay, handed: ReplayMessage[]): void {
    const now = this.clock();
    // A FIFO message first sent (maybe taken) more than the deduplication interval ago may now be in the region twice.
    const late = handed.filter((message) => message.groupId !== undefined && message.mayBeInRegionSince !== undefined && now - message.mayBeInRegionSince > DEDUPLICATION_SAFE_MS);
    if (late.length > 0) {
      progress.possiblyDuplicated += late.length;
      this.possiblyDuplicated += late.length;
      this.parts.metrics.messagesPossiblyDuplicated(queue, late.length);
      this.parts.logger.warn(
        { queue, messageIds: late.map((message) => message.messageId), count: late.length },
        'FIFO messages replayed more than 5 minutes after an unanswered attempt: the region may hold them twice (its deduplication interval had passed)',
      );
    }
    progress.replayed += handed.length;
    this.replayed += handed.length;
    this.parts.metrics.messagesReplayed(queue, handed.length);
    this.recent.push({ at: now, count: handed.length, queue });
    while (this.recent.length > 0 && this.recent[0]!.at < now - RATE_WINDOW_MS) this.recent.shift();
  }

  private failed(progress: QueueReplay, name: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    progress.lastError = message;
    this.lastError = `${name}: ${message}`;
    const level = error instanceof RegionUnavailable || error instanceof SqsError ? 'warn' : 'error';
    const cause = error instanceof RegionUnavailable ? error.kind : error instanceof SqsError ? error.code : 'error';
    this.log.log(level, `${name}:${cause}`, { queue: name, err: error }, 'replay of a batch failed; its messages stay at the edge');
  }
}
