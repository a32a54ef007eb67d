import type { LinkEstimates, TransferMark } from './estimates.js';

/**
 * How a transfer ended. `delivered`: the region took it. `refused`: the region answered that it
 * will not take it (nothing learnt of the path). The others are congestion signals.
 */
export type TransferOutcome = 'delivered' | 'refused' | 'timeout' | 'throttled' | 'failed';

export interface CongestionOptions {
  /** Transfers in flight at most, however well the path takes them. */
  readonly maxWindow: number;
  readonly estimates: LinkEstimates;
  /** The shortest time a transfer is given before it counts as lost. */
  readonly minTimeoutMs: number;
  readonly clock?: () => number;
}

/** Room in the window for a transfer: begin it with its bytes, and finish it whatever happened (room not used: `refused`). */
export interface Transfer {
  /** The transfer goes out with `bytes`; how long it may take before it counts as lost: what they need at the rate observed, and more. */
  begin(bytes: number): number;
  finish(outcome: TransferOutcome): void;
}

// Vegas: transfers queued on the path, as the window times the share of a transfer's time spent
// waiting. Below ALPHA the path has room (grow), above BETA it queues (shrink).
const ALPHA = 1;
const BETA = 3;
// Live requests slower than their best by this much: the replay is in their way, and yields.
const LIVE_DELAY_MS = 300;
// A transfer should hold the link no longer than this, so that a live request behind it is not long delayed.
const TARGET_TRANSFER_MS = 500;
const MIN_BATCH_BYTES = 65_536;
const MAX_BATCH_BYTES = 1_048_576;
// Before anything is known of the path: a batch of moderate size, given a generous time.
const FIRST_BATCH_BYTES = 262_144;
const FIRST_TIMEOUT_MS = 15_000;
// However slow, a transfer is abandoned after this: its messages are sent again.
const MAX_TIMEOUT_MS = 120_000;
// Recent transfer times, whose longest sets a floor under the timeout (a region that answers slowly).
const RECENT_DURATIONS = 20;
const MIN_QUIET_MS = 5_000;
const MAX_QUIET_MS = 60_000;

interface Waiter {
  readonly priority: number;
  resolve(transfer: Transfer): void;
}

/**
 * Congestion control for the transfers of the way back (the replay's batches, the sync's writes):
 * how many may be in flight, grown while the path takes them without queueing and shrunk when it
 * queues (TCP Vegas, on whole transfers), halved on a timeout, a throttling answer or a server
 * error, and cut back while live requests slow down. Room goes to the waiting transfer of highest
 * priority first. It also says how long a transfer may take and how large a batch should be, from
 * the rate and round trip the path shows.
 */
export class CongestionWindow {
  private window = 1;
  private slowStart = true;
  private readonly inFlight = new Set<{ bytes: number }>();
  private readonly waiters: Waiter[] = [];
  private readonly recentDurations: number[] = [];
  private lastCutAt = Number.NEGATIVE_INFINITY;
  private readonly clock: () => number;

  constructor(private readonly options: CongestionOptions) {
    this.clock = options.clock ?? Date.now;
  }

  /** Transfers allowed in flight now. */
  get size(): number {
    return Math.floor(this.window);
  }

  /** The most transfers the window may ever allow. */
  get maxSize(): number {
    return this.options.maxWindow;
  }

  get transfersInFlight(): number {
    return this.inFlight.size;
  }

  /**
   * How long to wait after a transfer got no answer before sending its contents again: long
   * enough that the first attempt is surely over (twice the slowest transfer lately, at least 5 s).
   */
  quietMs(): number {
    return Math.min(MAX_QUIET_MS, Math.max(MIN_QUIET_MS, 2 * Math.max(0, ...this.recentDurations)));
  }

  /** Waits for room for a transfer; higher `priority` goes first. */
  acquire(priority = 0, signal?: AbortSignal): Promise<Transfer> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { priority, resolve };
      // Behind every waiter of the same or higher priority.
      const at = this.waiters.findIndex((other) => other.priority < priority);
      this.waiters.splice(at < 0 ? this.waiters.length : at, 0, waiter);
      signal?.addEventListener(
        'abort',
        () => {
          const index = this.waiters.indexOf(waiter);
          if (index < 0) return;
          this.waiters.splice(index, 1);
          reject(signal.reason);
        },
        { once: true },
      );
      this.admit();
    });
  }

  /** How large a batch should be: what the link carries in about half a second, within SQS's 1 MiB. */
  batchBytes(): number {
    const rate = this.options.estimates.bytesPerSecond;
    if (rate === undefined) return FIRST_BATCH_BYTES;
    return Math.min(MAX_BATCH_BYTES, Math.max(MIN_BATCH_BYTES, (rate * TARGET_TRANSFER_MS) / 1000));
  }

  private admit(): void {
    while (this.waiters.length > 0 && this.inFlight.size < this.size) {
      const waiter = this.waiters.shift()!;
      waiter.resolve(this.room());
    }
  }

  private room(): Transfer {
    const entry = { bytes: 0 };
    this.inFlight.add(entry);
    let mark: TransferMark | undefined;
    let finished = false;
    return {
      begin: (bytes) => {
        const bytesAhead = [...this.inFlight].reduce((sum, other) => sum + other.bytes, 0);
        entry.bytes = bytes;
        mark = this.options.estimates.startTransfer();
        return this.timeoutFor(bytes, bytesAhead);
      },
      finish: (outcome) => {
        if (finished) return;
        finished = true;
        this.inFlight.delete(entry);
        if (mark) this.learn(outcome, entry.bytes, mark);
        // Room freed goes to the waiters on the next turn of the event loop: the transfer's own
        // worker, if it has more to send, asks again by then and is weighed by its priority
        // instead of losing the room to whoever waited first.
        setImmediate(() => this.admit());
      },
    };
  }

  /** Three times what the transfer should take, never less than the slowest recent transfer took twice over. */
  private timeoutFor(bytes: number, bytesAhead: number): number {
    const { estimates, minTimeoutMs } = this.options;
    if (estimates.roundTripMs === undefined) return Math.max(minTimeoutMs, FIRST_TIMEOUT_MS);
    const expected = estimates.transferMs(bytes, bytesAhead);
    const slowest = Math.max(0, ...this.recentDurations);
    return Math.min(MAX_TIMEOUT_MS, Math.max(minTimeoutMs, 3 * expected + 1000, 2 * slowest));
  }

  private learn(outcome: TransferOutcome, bytes: number, mark: TransferMark): void {
    const now = this.clock();
    if (outcome === 'refused') return;
    if (outcome !== 'delivered') {
      this.slowStart = false;
      this.cut(0.5, now);
      return;
    }
    const { estimates } = this.options;
    const took = now - mark.at;
    // The time it should have taken alone, at the rate and round trip known before it.
    const alone = estimates.transferMs(bytes);
    estimates.noteTransfer(mark, bytes);
    this.recentDurations.push(took);
    if (this.recentDurations.length > RECENT_DURATIONS) this.recentDurations.shift();
    if (estimates.liveDelayMs > LIVE_DELAY_MS) {
      this.slowStart = false;
      this.cut(0.75, now);
      return;
    }
    const queued = this.window * Math.max(0, 1 - alone / Math.max(took, 1));
    if (this.slowStart && queued < ALPHA) this.window += 1;
    else if (queued < ALPHA) this.window += 1 / this.window;
    else if (queued > BETA) this.window -= 1 / this.window;
    if (queued >= ALPHA) this.slowStart = false;
    this.window = Math.min(this.options.maxWindow, Math.max(1, this.window));
  }

  /** Shrinks the window by `factor`, once per round trip: transfers failing together are one signal. */
  private cut(factor: number, now: number): void {
    const roundTrip = this.options.estimates.roundTripMs ?? 0;
    if (now - this.lastCutAt < roundTrip) return;
    this.lastCutAt = now;
    this.window = Math.max(1, this.window * factor);
  }
}
