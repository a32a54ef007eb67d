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
const RATE_MIN_BYTES = 16_384;

/** Where a transfer started: when, and how many bytes the link had delivered by then. */
export interface TransferMark {
  readonly at: number;
  readonly delivered: number;
}

interface Sample {
  readonly at: number;
  readonly value: number;
}

/** The least (or most) of samples over a sliding window of time. */
class WindowedExtreme {
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

  /** A transfer begins. */
  startTransfer(): TransferMark {
    return { at: this.clock(), delivered: this.delivered };
  }

  /**
   * A transfer that began at `mark` delivered `bytes`. Its rate sample is every byte delivered while
   * it was on its way over the time it was (less a round trip): with several transfers on a
   * saturated link, that is the link's rate, not this transfer's share of it.
   */
  noteTransfer(mark: TransferMark, bytes: number): void {
    const now = this.clock();
    this.delivered += bytes;
    const ms = now - mark.at;
    this.roundTrip.add(ms, now);
    const deliveredMeanwhile = this.delivered - mark.delivered;
    if (deliveredMeanwhile < RATE_MIN_BYTES) return;
    const onTheWire = Math.max(1, ms - (this.roundTrip.value(now) ?? 0));
    this.rate.add((deliveredMeanwhile / onTheWire) * 1000, now);
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
    return (this.roundTripMs ?? 0) + ((bytes + bytesAhead) / (this.bytesPerSecond ?? this.assumedBytesPerSecond)) * 1000;
  }
}
