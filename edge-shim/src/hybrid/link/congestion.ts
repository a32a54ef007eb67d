import { setTimeout as sleep } from 'node:timers/promises';
import { type LinkEstimates, RATE_MIN_BYTES, type TransferMark } from './estimates.js';

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
  /** Waits `ms` (a test's clock moves instead); resolves early when `signal` aborts. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Room in the window for a transfer: begin it with its bytes, and finish it whatever happened (room not used: `refused`). */
export interface Transfer {
  /**
   * The transfer goes out with `bytes` once the link has carried the large transfers before it
   * (paced at the rate observed: the way back keeps no queue of its own in the link, so a live
   * request waits behind one batch at most); how long it may take before it counts as lost: what
   * its bytes need at the rate observed, and more. An abort of `signal` ends the wait early.
   */
  begin(bytes: number, signal?: AbortSignal): Promise<number>;
  finish(outcome: TransferOutcome): void;
}

// The queueing the way back may add on the path (LEDBAT's target, RFC 6817): what a live request
// sent meanwhile waits behind it. Batches on a thin link are themselves tenths of a second long, so
// a smaller target would leave the link idle between them.
const TARGET_QUEUEING_MS = 250;
// A region whose answers take a second or more is given a target of this share of that: jitter of
// a few hundred ms in its answers is no sign of a queue the way back made.
const TARGET_SHARE_OF_BASE = 0.5;
// A transfer's queueing is the least over the last few (LEDBAT's current delay filter): one slow
// answer is noise, several in a row are a queue.
const CURRENT_SAMPLES = 4;
// The least time a transfer's bytes did not explain is taken over this long, from the least of
// each second: a path that became slower for good (another route, a region that answers slowly
// now) is learnt again.
const BASE_WINDOW_MS = 60_000;
const BASE_BUCKET_MS = 1000;
// Large transfers are paced at the rate observed times these, in turn (BBR's gain cycle): one
// goes a little early, to find out whether the link now carries more, the next a little late, to
// drain what that queued, then six at the rate.
const PACING_GAINS = [1.25, 0.75, 1, 1, 1, 1, 1, 1];
// While the window still doubles (slow start), the pace doubles too: BBR's startup gain, 2/ln 2.
const STARTUP_PACING_GAIN = 2 / Math.LN2;
// Large transfers, paced, need no more in flight than twice what the path holds (its rate times its
// base time) and two more (BBR's cwnd gain): more would only wait for the pace, or queue if the rate
// was taken too high.
const PATH_HOLDS_GAIN = 2;
// Live requests slower than their best by this much: something the transfers' own times do not
// show is in their way (other traffic of the site), and the way back yields.
const LIVE_DELAY_MS = 600;
// A transfer should hold the link no longer than this, so that a live request behind it is not long delayed.
const TARGET_TRANSFER_MS = 500;
const MIN_BATCH_BYTES = 65_536;
const MAX_BATCH_BYTES = 1_048_576;
// Before anything is known of the path, a transfer is given a generous time.
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
 * how many may be in flight. A transfer's queueing is its time beyond the least that transfers took
 * lately, once its bytes on the wire are accounted for; the window grows while that stays below a
 * target and shrinks as it passes it, in proportion (LEDBAT, on whole transfers), so the way back
 * keeps the path busy with a short queue whatever the path is made of: a thin link's bytes, a far
 * region's round trip, a slow region's work. Large transfers are also paced at the link's rate
 * (BBR's pacing), so that they follow one another on the link instead of queueing in it. The window
 * halves on a timeout, a throttling answer or a server error, and is cut back while live requests
 * slow down. Room goes to the waiting transfer of highest priority first. It also says how long a transfer may take and how large a batch should be, from
 * the rate and round trip the path shows.
 */
export class CongestionWindow {
  private window = 1;
  private slowStart = true;
  private readonly inFlight = new Set<{ bytes: number; begun: boolean }>();
  private readonly waiters: Waiter[] = [];
  private readonly recentDurations: number[] = [];
  /** Of each recent second, the delivered transfer that took least beyond what its bytes need on the wire: the path's base. */
  private readonly baseSamples: Array<{ readonly second: number; took: number; bytes: number }> = [];
  /** The last few delivered transfers, whose least time beyond the base is the queueing now. */
  private readonly currentSamples: Array<{ readonly took: number; readonly bytes: number }> = [];
  private lastCutAt = Number.NEGATIVE_INFINITY;
  /** When the link will have carried the large transfers begun so far, and the turn in the pacing gains. */
  private linkFreeAt = Number.NEGATIVE_INFINITY;
  private pacingTurn = 0;
  private readonly clock: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(private readonly options: CongestionOptions) {
    this.clock = options.clock ?? Date.now;
    this.sleep = options.sleep ?? ((ms, signal) => sleep(ms, undefined, { signal }).catch(() => {}));
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
      const abandon = () => {
        const index = this.waiters.indexOf(waiter);
        if (index < 0) return;
        this.waiters.splice(index, 1);
        reject(signal!.reason);
      };
      // The signal lives as long as the replay: admitted, a waiter stops listening to it.
      const waiter: Waiter = {
        priority,
        resolve: (transfer) => {
          signal?.removeEventListener('abort', abandon);
          resolve(transfer);
        },
      };
      // Behind every waiter of the same or higher priority.
      const at = this.waiters.findIndex((other) => other.priority < priority);
      this.waiters.splice(at < 0 ? this.waiters.length : at, 0, waiter);
      signal?.addEventListener('abort', abandon, { once: true });
      this.admit();
    });
  }

  /** How large a batch should be: what the link carries in about half a second, within SQS's 1 MiB. */
  batchBytes(): number {
    const rate = this.options.estimates.bytesPerSecond;
    // Before anything is known of the link: the smallest batch, half a second of the thinnest link a site should have.
    if (rate === undefined) return MIN_BATCH_BYTES;
    return Math.min(MAX_BATCH_BYTES, Math.max(MIN_BATCH_BYTES, (rate * TARGET_TRANSFER_MS) / 1000));
  }

  private admit(): void {
    while (this.waiters.length > 0 && this.inFlight.size < this.size) {
      const waiter = this.waiters.shift()!;
      waiter.resolve(this.room());
    }
  }

  private room(): Transfer {
    const entry = { bytes: 0, begun: false };
    this.inFlight.add(entry);
    let mark: TransferMark | undefined;
    let finished = false;
    return {
      begin: async (bytes, signal) => {
        await this.pace(bytes, signal);
        const bytesAhead = [...this.inFlight].reduce((sum, other) => sum + other.bytes, 0);
        entry.bytes = bytes;
        entry.begun = true;
        mark = this.options.estimates.startTransfer(bytes);
        return this.timeoutFor(bytes, bytesAhead);
      },
      finish: (outcome) => {
        if (finished) return;
        finished = true;
        this.inFlight.delete(entry);
        // Fewer on their way than the window allows (the rest wait for the link's pace, or there is
        // nothing more to send): it is not the window that limits, and growing it would tell nothing.
        const windowLimited = [...this.inFlight].filter((other) => other.begun).length + 1 >= this.size;
        if (mark) this.learn(outcome, mark, windowLimited);
        // Room freed goes to the waiters on the next turn of the event loop: the transfer's own
        // worker, if it has more to send, asks again by then and is weighed by its priority
        // instead of losing the room to whoever waited first.
        setImmediate(() => this.admit());
      },
    };
  }

  /**
   * Waits until the link has carried the large transfers begun before: a transfer large enough to
   * tell the link's rate by itself (a batch of big messages) goes when the one before it has left
   * the link, not all at once behind it. Small ones (the sync's writes) are not paced: their rate
   * samples are the region's pace, not the link's, and pacing by them would hold them to it.
   */
  private async pace(bytes: number, signal?: AbortSignal): Promise<void> {
    const { estimates } = this.options;
    if (bytes < RATE_MIN_BYTES || estimates.bytesPerSecond === undefined) return;
    const now = this.clock();
    const startAt = Math.max(now, this.linkFreeAt);
    const gain = this.slowStart ? STARTUP_PACING_GAIN : PACING_GAINS[this.pacingTurn++ % PACING_GAINS.length]!;
    this.linkFreeAt = startAt + estimates.wireMs(bytes) / gain;
    if (startAt > now) await this.sleep(startAt - now, signal);
  }

  /** Three times what the transfer should take, never less than the slowest recent transfer took twice over. */
  private timeoutFor(bytes: number, bytesAhead: number): number {
    const { estimates, minTimeoutMs } = this.options;
    if (estimates.roundTripMs === undefined) return Math.max(minTimeoutMs, FIRST_TIMEOUT_MS);
    const expected = estimates.transferMs(bytes, bytesAhead);
    const slowest = Math.max(0, ...this.recentDurations);
    return Math.min(MAX_TIMEOUT_MS, Math.max(minTimeoutMs, 3 * expected + 1000, 2 * slowest));
  }

  private learn(outcome: TransferOutcome, mark: TransferMark, windowLimited: boolean): void {
    const now = this.clock();
    const { estimates } = this.options;
    if (outcome !== 'delivered') {
      estimates.endTransfer(mark, false);
      if (outcome === 'refused') return;
      this.slowStart = false;
      this.cut(0.5, now);
      return;
    }
    const took = now - mark.at;
    estimates.endTransfer(mark, true);
    this.recentDurations.push(took);
    if (this.recentDurations.length > RECENT_DURATIONS) this.recentDurations.shift();
    const { queueing, latest, target, base } = this.queueingOf(took, mark.bytes, now);
    if (estimates.liveDelayMs > LIVE_DELAY_MS) {
      this.slowStart = false;
      this.cut(0.75, now);
      return;
    }
    // Slow start ends at the first transfer that queued (HyStart's way): a window that doubles
    // overshoots by the time a filtered measure shows it.
    if (this.slowStart && latest < target / 2) {
      if (windowLimited) this.window += 1;
    } else {
      this.slowStart = false;
      // In proportion to how far from the target, at most one transfer either way per window's worth of transfers.
      const offTarget = Math.max(-1, Math.min(1, (target - queueing) / target));
      // Grown only where the window is what limits: room unused is no sign that more would be taken.
      if (offTarget < 0 || windowLimited) this.window += offTarget / this.window;
    }
    // Once slow start is over: during it the rate is still being found, and is taken low.
    const ceiling = this.slowStart ? this.options.maxWindow : Math.min(this.options.maxWindow, this.pacedCeiling(mark.bytes, base));
    this.window = Math.min(ceiling, Math.max(1, this.window));
  }

  /** The most large paced transfers worth having in flight (see PATH_HOLDS_GAIN); no bound for small ones. */
  private pacedCeiling(bytes: number, baseMs: number): number {
    const rate = this.options.estimates.bytesPerSecond;
    if (bytes < RATE_MIN_BYTES || rate === undefined) return Number.POSITIVE_INFINITY;
    return 2 + (PATH_HOLDS_GAIN * rate * Math.max(0, baseMs)) / 1000 / bytes;
  }

  /**
   * How long transfers queue now (and the latest one did), and the target for it. The queueing is
   * the least, over the last few delivered transfers, of the time each took beyond what its bytes
   * need on the wire, less the base: the least such time over the last minute (round trip and the
   * region's work), all at the rate known now, so that an early, rough rate does not skew the base.
   */
  private queueingOf(took: number, bytes: number, now: number): { queueing: number; latest: number; target: number; base: number } {
    const { estimates } = this.options;
    const beyondWire = (sample: { took: number; bytes: number }) => sample.took - (estimates.bytesPerSecond === undefined ? 0 : estimates.wireMs(sample.bytes));
    const second = Math.floor(now / BASE_BUCKET_MS);
    const samples = this.baseSamples;
    const thisSecond = samples.at(-1);
    if (thisSecond?.second !== second) samples.push({ second, took, bytes });
    else if (beyondWire({ took, bytes }) < beyondWire(thisSecond)) Object.assign(thisSecond, { took, bytes });
    while (samples[0]!.second < second - BASE_WINDOW_MS / BASE_BUCKET_MS) samples.shift();
    this.currentSamples.push({ took, bytes });
    if (this.currentSamples.length > CURRENT_SAMPLES) this.currentSamples.shift();
    const base = Math.min(...samples.map(beyondWire));
    return {
      queueing: Math.min(...this.currentSamples.map(beyondWire)) - base,
      latest: beyondWire({ took, bytes }) - base,
      target: Math.max(TARGET_QUEUEING_MS, TARGET_SHARE_OF_BASE * base),
      base,
    };
  }

  /** Shrinks the window by `factor`, once per round trip: transfers failing together are one signal. */
  private cut(factor: number, now: number): void {
    const roundTrip = this.options.estimates.roundTripMs ?? 0;
    if (now - this.lastCutAt < roundTrip) return;
    this.lastCutAt = now;
    this.window = Math.max(1, this.window * factor);
  }
}
