import type { Logger } from 'pino';
import type { ReceivedMessage } from '../sqs/actions/receive-message.js';
import { SqsError } from '../sqs/errors.js';
import type { MetricsRecorder } from '../observability/metrics.js';
import type { SqsService } from '../sqs/service.js';
import type { QueueMirror } from './mirror.js';
import type { ModeMachine } from './mode.js';
import { type Upstream, UpstreamUnavailable } from './upstream.js';

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

// How long a message taken for replay stays invisible at the edge: the time a batch may take.
const TAKEN_FOR_SECONDS = 60;
// A message the region refused for good is set aside this long before it is tried again.
const REFUSED_FOR_SECONDS = 3600;
// SendMessageBatch: at most 10 entries and 1 MiB of bodies and attributes.
const BATCH_ENTRIES = 10;
const BATCH_BYTES = 1_048_576;
// Without a wake-up, queues are looked at again this often (messages in flight at the edge may have become visible).
const IDLE_LOOK_MS = 1000;
const RATE_WINDOW_MS = 10_000;

/**
 * Adaptive rate: at most `ceiling` messages a second; halved when the region throttles, raised by
 * a tenth of the ceiling after each batch it takes (additive increase, multiplicative decrease).
 */
class ReplayRate {
  private rate: number;
  private tokens = 0;
  private last = Date.now();

  constructor(private readonly ceiling: number) {
    this.rate = ceiling;
  }

  async take(count: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      const now = Date.now();
      this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
      if (this.tokens >= count || (this.tokens >= this.rate && count > this.rate)) {
        this.tokens -= count;
        return;
      }
      await sleep(((count - this.tokens) / this.rate) * 1000, signal);
    }
  }

  throttled(): void {
    this.rate = Math.max(1, this.rate / 2);
  }

  accepted(): void {
    this.rate = Math.min(this.ceiling, this.rate + this.ceiling / 10);
  }
}

/** Waits `ms`, or less if `signal` aborts first. */
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

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
  private running: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private stopping = new AbortController();
  private paused = true;
  replayed = 0;
  lastError: string | undefined;

  constructor(
    private readonly local: SqsService,
    private readonly upstream: Upstream,
    private readonly mirror: QueueMirror,
    private readonly mode: ModeMachine,
    private readonly options: ReplayOptions,
    private readonly metrics: MetricsRecorder,
    private readonly logger: Logger,
  ) {
    this.rate = new ReplayRate(options.ratePerSecond);
  }

  /** Replays whenever the region is there (online or replaying) and the edge holds messages. */
  start(): void {
    this.paused = false;
    this.running ??= this.loop();
  }

  /** Something was stored at the edge, or the mode changed: look again now. */
  wake(): void {
    this.wakeUp?.();
  }

  /** Messages replayed per second over the last 10 seconds, of one queue or all. */
  ratePerSecond(queue?: string): number {
    const since = Date.now() - RATE_WINDOW_MS;
    const counted = this.recent.filter((entry) => entry.at >= since && (queue === undefined || entry.queue === queue));
    return counted.reduce((sum, entry) => sum + entry.count, 0) / (RATE_WINDOW_MS / 1000);
  }

  queueProgress(name: string): QueueReplay | undefined {
    return this.perQueue.get(name);
  }

  /** Whether a send to this queue must go behind messages the edge still holds for it. */
  holdsBacklog(name: string): boolean {
    return this.local.storedMessages(name) > 0;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake();
    await this.running;
  }

  private async loop(): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      if (this.paused || this.mode.mode === 'offline') {
        await this.idle(IDLE_LOOK_MS);
        continue;
      }
      let progressed: boolean[];
      try {
        const queues = this.local.queues
          .all()
          .map((queue) => queue.name)
          .filter((name) => this.local.storedMessages(name) > 0);
        if (queues.length === 0) {
          this.mode.replayDone();
          await this.idle(IDLE_LOOK_MS);
          continue;
        }
        progressed = await Promise.all(queues.map((name) => this.replayQueue(name, signal)));
      } catch (error) {
        // The local store failed (a full disk, the database closing): what was taken stays at the
        // edge, visible again after its visibility timeout or a restart; the loop goes on.
        this.lastError = (error as Error).message;
        this.logger.error({ err: error }, 'the replay failed at the edge; it tries again');
        progressed = [];
      }
      if (!progressed.some(Boolean)) await this.idle(IDLE_LOOK_MS);
    }
  }

  /** Waits `ms`, or until woken or stopped. */
  private async idle(ms: number): Promise<void> {
    const woken = new AbortController();
    this.wakeUp = () => woken.abort();
    await sleep(ms, AbortSignal.any([woken.signal, this.stopping.signal]));
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
      url = await this.mirror.resolve(name, (work) => this.mode.execute(work));
    } catch (error) {
      this.failed(progress, name, error);
      return false;
    }
    let sent = 0;
    const worker = async () => {
      const deletes: Array<Promise<void>> = [];
      let next: Promise<ReceivedMessage[]> | undefined = this.take(name);
      try {
        while (next) {
          const taken = await next;
          next = undefined;
          if (taken.length === 0) return;
          if (signal.aborted || this.mode.mode === 'offline') {
            await this.setVisibility(name, taken, 0);
            return;
          }
          next = this.take(name);
          const finished = new Set<ReceivedMessage>();
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
            await this.setVisibility(name, taken.filter((message) => !finished.has(message)), 0);
            return;
          }
        }
      } finally {
        // Messages taken ahead and not sent go back now, not when their visibility runs out.
        if (next) await this.setVisibility(name, await next, 0);
        await Promise.all(deletes);
      }
    };
    await Promise.all(Array.from({ length: this.options.concurrency }, worker));
    return sent > 0;
  }

  /** Takes the next messages of a queue to replay; a failure is the awaiting worker's, never unhandled meanwhile. */
  private take(name: string): Promise<ReceivedMessage[]> {
    const taken = this.local.takeForReplay(name, BATCH_ENTRIES, TAKEN_FOR_SECONDS);
    taken.catch(() => {});
    return taken;
  }

  /**
   * Sends one batch to the region; the messages done with (acknowledged, or refused for good and
   * set aside), and the delete at the edge of those the region acknowledged, under way.
   */
  private async hand(name: string, url: string, batch: ReceivedMessage[], progress: QueueReplay): Promise<{ done: ReceivedMessage[]; deleted: Promise<void> }> {
    const entries = batch.map((message, index) => replayEntry(message, `m${index}`));
    let answer: { Successful?: Array<{ Id: string }>; Failed?: Array<{ Id: string; SenderFault: boolean; Code: string; Message?: string }> };
    try {
      answer = (await this.mode.execute(() => this.upstream.call('SendMessageBatch', { QueueUrl: url, Entries: entries }, this.stopping.signal))) as typeof answer;
    } catch (error) {
      this.failed(progress, name, error);
      if (error instanceof UpstreamUnavailable && /throttl/i.test(error.message)) this.rate.throttled();
      return { done: [], deleted: Promise.resolve() };
    }
    const byId = (id: string) => batch[Number(id.slice(1))]!;
    const handed = (answer.Successful ?? []).map((entry) => byId(entry.Id));
    let deleted = Promise.resolve();
    if (handed.length > 0) {
      deleted = this.local
        .call(
          'DeleteMessageBatch',
          { QueueUrl: this.localUrl(name), Entries: handed.map((message, index) => ({ Id: `d${index}`, ReceiptHandle: message.ReceiptHandle })) },
          { baseUrl: '' },
        )
        .then(() => this.count(name, progress, handed.length));
      // Awaited by the worker; until then a failure must not count as unhandled.
      deleted.catch(() => {});
      this.rate.accepted();
    }
    const refused: ReceivedMessage[] = [];
    for (const failure of answer.Failed ?? []) {
      if (failure.SenderFault) {
        // The region will never take it: set aside, visible to the operator, not retried in a loop.
        const message = byId(failure.Id);
        refused.push(message);
        progress.refused += 1;
        this.failed(progress, name, new Error(`the region refused message ${message.MessageId}: ${failure.Code} ${failure.Message ?? ''}`));
      } else if (/throttl/i.test(failure.Code)) {
        this.rate.throttled();
      }
    }
    await this.setVisibility(name, refused, REFUSED_FOR_SECONDS);
    return { done: [...handed, ...refused], deleted };
  }

  private async setVisibility(name: string, messages: ReceivedMessage[], seconds: number): Promise<void> {
    if (messages.length === 0) return;
    const QueueUrl = this.localUrl(name);
    const Entries = messages.map((message, index) => ({ Id: `v${index}`, ReceiptHandle: message.ReceiptHandle, VisibilityTimeout: seconds }));
    await this.local.call('ChangeMessageVisibilityBatch', { QueueUrl, Entries }, { baseUrl: '' }).catch((error: unknown) => {
      this.logger.warn({ queue: name, err: error }, 'cannot make messages taken for replay visible again; they will be when their visibility times out');
    });
  }

  private localUrl(name: string): string {
    return `/${this.local.queues.accountId}/${encodeURIComponent(name)}`;
  }

  private count(queue: string, progress: QueueReplay, count: number): void {
    if (count === 0) return;
    progress.replayed += count;
    this.replayed += count;
    this.metrics.messagesReplayed(queue, count);
    const now = Date.now();
    this.recent.push({ at: now, count, queue });
    while (this.recent.length > 0 && this.recent[0]!.at < now - RATE_WINDOW_MS) this.recent.shift();
  }

  private failed(progress: QueueReplay, name: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    progress.lastError = message;
    this.lastError = `${name}: ${message}`;
    const level = error instanceof UpstreamUnavailable || error instanceof SqsError ? 'warn' : 'error';
    this.logger[level]({ queue: name, err: error }, 'replay of a batch failed; its messages stay at the edge');
  }
}

/** Splits taken messages into batches the region takes: at most 10 and 1 MiB each, in order. */
function bySize(messages: ReceivedMessage[]): ReceivedMessage[][] {
  const batches: ReceivedMessage[][] = [];
  let current: ReceivedMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = payloadSize(message);
    if (current.length > 0 && (current.length === BATCH_ENTRIES || bytes + size > BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

function payloadSize(message: ReceivedMessage): number {
  let size = Buffer.byteLength(message.Body);
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    size += Buffer.byteLength(name) + Buffer.byteLength(value.DataType);
    if (value.StringValue !== undefined) size += Buffer.byteLength(value.StringValue);
    if (value.BinaryValue !== undefined) size += Buffer.from(value.BinaryValue, 'base64').length;
  }
  return size;
}

/** The SendMessageBatch entry that sends a message to the region as it was sent to the edge. */
function replayEntry(message: ReceivedMessage, id: string): Record<string, unknown> {
  const attributes = (message.Attributes ?? {}) as Record<string, string | undefined>;
  return {
    Id: id,
    MessageBody: message.Body,
    ...(message.MessageAttributes ? { MessageAttributes: message.MessageAttributes } : {}),
    ...(attributes.AWSTraceHeader ? { MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: attributes.AWSTraceHeader } } } : {}),
    ...(attributes.MessageGroupId ? { MessageGroupId: attributes.MessageGroupId } : {}),
    ...(attributes.MessageDeduplicationId ? { MessageDeduplicationId: attributes.MessageDeduplicationId } : {}),
  };
}
