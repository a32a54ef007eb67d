/**
 * What the edge knows of its path to the region, from what goes over it: the round trip (the
 * probe's and the shortest transfers'), the rate it delivers bytes at (the replay's and the sync's
 * transfers), and how long small live requests take now against their usual time. Estimates age
 * out, so that a link that changed (LTE to DSL, a region that recovered) is learnt again.
 */

export interface LinkEstimatesOptions {
  /** What the rate is taken to be before anything was measured: a slow site uplink. */
  readonly assumedBytesPerSecond?: number;
  readonly clock?: () => number;
}

// The shortest round trip is the least over this long: long enough to see a quiet moment.
const ROUND_TRIP_WINDOW_MS = 60_000;
// The delivery rate is the most bytes a second seen over this long.
const RATE_WINDOW_MS = 20_000;
// The time of live requests now: the mean of the last ones.
const RECENT_LIVE = 8;
// How slowly the region answers now: the slowest of the last probes.
const RECENT_PROBES = 10;
// 128 KiB/s: a 1 Mbit/s uplink, the thinnest a site should have.
const ASSUMED_BYTES_PER_SECOND = 131_072;
// Transfers shorter than this tell nothing of the rate (their time is the round trip).
export const RATE_MIN_BYTES = 16_384;

/** Where a transfer started: when, its bytes, how many bytes the link had delivered by then and when it last delivered. */
export interface TransferMark {
  readonly at: number;
  readonly bytes: number;
  readonly delivered: number;
  readonly lastDeliveryAt: number;
}

interface Sample {
  readonly at: number;
  readonly value: number;
}

/** The least (or most) of samples over a sliding window of time. */
export class WindowedExtreme {
  private samples: Sample[] = [];

  constructor(
    private readonly windowMs: number,
    private readonly better: (a: number, b: number) => boolean,
  ) {}

  add(value: number, at: number): void {
    // A sample no better than a newer one can never be the extreme again: drop it.
    while (this.samples.length > 0 && !this.better(this.samples.at(-1)!.value, value)) this.samples.pop();
    this.samples.push({ at, value });
  }

  value(now: number): number | undefined {
    while (this.samples.length > 0 && this.samples[0]!.at < now - this.windowMs) this.samples.shift();
    return this.samples[0]?.value;
  }
}

export class LinkEstimates {
  private readonly roundTrip = new WindowedExtreme(ROUND_TRIP_WINDOW_MS, (a, b) => a < b);
  private readonly rate = new WindowedExtreme(RATE_WINDOW_MS, (a, b) => a > b);
  private readonly liveBaseline = new WindowedExtreme(ROUND_TRIP_WINDOW_MS, (a, b) => a < b);
  private readonly recentLive: number[] = [];
  private readonly recentProbes: number[] = [];
  /** Bytes of transfers delivered since the start: a transfer's rate sample is what was delivered while it was on its way. */
  private delivered = 0;
  private lastDeliveryAt: number | undefined;
  /** Bytes of the way back's transfers on their way now: what a live request may find queued ahead of it. */
  private inFlight = 0;
  private readonly clock: () => number;
  private readonly assumedBytesPerSecond: number;

  constructor(options: LinkEstimatesOptions = {}) {
    this.clock = options.clock ?? Date.now;
    this.assumedBytesPerSecond = options.assumedBytesPerSecond ?? ASSUMED_BYTES_PER_SECOND;
  }

  /** A round trip with next to no payload (the probe), answered in time or late. */
  noteRoundTrip(ms: number): void {
    this.roundTrip.add(ms, this.clock());
    this.recentProbes.push(ms);
    if (this.recentProbes.length > RECENT_PROBES) this.recentProbes.shift();
  }

  /** The slowest answer to the last probes: how slowly the region answers now; 0 before any. */
  get slowestRecentAnswerMs(): number {
    return Math.max(0, ...this.recentProbes);
  }

  /** A transfer of `bytes` begins. */
  startTransfer(bytes: number): TransferMark {
    this.inFlight += bytes;
    const at = this.clock();
    return { at, bytes, delivered: this.delivered, lastDeliveryAt: this.lastDeliveryAt ?? at };
  }

  /**
   * A transfer that began at `mark` ended. Delivered, a large one is a sample of the rate (BBR's
   * delivery rate): the bytes delivered since the delivery before it began, over the time since
   * then. That is the link's rate while transfers keep it busy, and less when they do not (the
   * estimate is the most seen lately). A small one's time is a round trip, and tells nothing of
   * the rate: it is the region's pace.
   */
  endTransfer(mark: TransferMark, delivered: boolean): void {
    this.inFlight -= mark.bytes;
    if (!delivered) return;
    const now = this.clock();
    this.delivered += mark.bytes;
    this.lastDeliveryAt = now;
    if (mark.bytes < RATE_MIN_BYTES) {
      this.roundTrip.add(now - mark.at, now);
      return;
    }
    if (now > mark.lastDeliveryAt) this.rate.add(((this.delivered - mark.delivered) / (now - mark.lastDeliveryAt)) * 1000, now);
  }

  /** A small live request (a client's, passed through) and how long the region took. */
  noteLive(ms: number): void {
    this.liveBaseline.add(ms, this.clock());
    this.recentLive.push(ms);
    if (this.recentLive.length > RECENT_LIVE) this.recentLive.shift();
  }

  /** The shortest round trip seen lately; undefined before any. */
  get roundTripMs(): number | undefined {
    return this.roundTrip.value(this.clock());
  }

  /** The bytes a second the link delivered at best lately; undefined before any large transfer. */
  get bytesPerSecond(): number | undefined {
    return this.rate.value(this.clock());
  }

  /** How much longer small live requests take now than at their best lately: queueing on the path. */
  get liveDelayMs(): number {
    const baseline = this.liveBaseline.value(this.clock());
    if (baseline === undefined || this.recentLive.length === 0) return 0;
    return Math.max(0, this.recentLive.reduce((sum, ms) => sum + ms, 0) / this.recentLive.length - baseline);
  }

  /** How long `bytes` take on the link with `bytesAhead` queued before them, at the rate measured or a slow one assumed. */
  transferMs(bytes: number, bytesAhead = 0): number {
    return (this.roundTripMs ?? 0) + this.wireMs(bytes + bytesAhead);
  }

  /** How long `bytes` hold the link, at the rate measured or a slow one assumed. */
  wireMs(bytes: number): number {
    return (bytes / (this.bytesPerSecond ?? this.assumedBytesPerSecond)) * 1000;
  }

  /** Bytes of the way back's transfers on their way now. */
  get bytesInFlight(): number {
    return this.inFlight;
  }
}
