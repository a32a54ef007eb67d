import { setTimeout as sleep } from 'node:timers/promises';

/** A token bucket: `rate` a second, at most a second's worth saved up. */
class TokenBucket {
  private tokens = 0;
  private last: number;

  constructor(
    private readonly rate: number,
    private readonly clock: () => number,
  ) {
    this.last = clock();
  }

  /** How long to wait before `count` may go (a count above the rate goes once the bucket is full); takes them when none. */
  waitFor(count: number): number {
    const now = this.clock();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    const needed = Math.min(count, this.rate);
    if (this.tokens >= needed) {
      this.tokens -= count;
      return 0;
    }
    return ((needed - this.tokens) / this.rate) * 1000;
  }
}

export interface ReplayRateOptions {
  /** Messages a second at most, all queues together. */
  readonly messagesPerSecond: number;
  /** Bytes a second at most (bodies and attributes), all queues together; none when absent. */
  readonly bytesPerSecond?: number;
  readonly clock?: () => number;
}

/**
 * The operator's caps on the replay: messages and bytes a second, all queues together (what share
 * of a thin uplink the replay may take). The congestion window adapts to the path below them.
 */
export class ReplayRate {
  private readonly messages: TokenBucket;
  private readonly bytes: TokenBucket | undefined;

  constructor(options: ReplayRateOptions) {
    const clock = options.clock ?? Date.now;
    this.messages = new TokenBucket(options.messagesPerSecond, clock);
    this.bytes = options.bytesPerSecond === undefined ? undefined : new TokenBucket(options.bytesPerSecond, clock);
  }

  /** Waits until a batch of `count` messages and `bytes` may go, or `signal` aborts. */
  async take(count: number, bytes: number, signal: AbortSignal): Promise<void> {
    for (const [bucket, amount] of [[this.messages, count], [this.bytes, bytes]] as const) {
      for (let wait = bucket?.waitFor(amount) ?? 0; wait > 0 && !signal.aborted; wait = bucket!.waitFor(amount)) {
        await sleep(wait, undefined, { signal }).catch(() => {});
      }
    }
  }
}
