import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The replay's adaptive rate: a token bucket of at most `ceiling` messages a second; halved when
 * the region throttles, raised by a tenth of the ceiling after each batch it takes (additive
 * increase, multiplicative decrease).
 */
export class ReplayRate {
  private rate: number;
  private tokens = 0;
  private last: number;

  constructor(
    private readonly ceiling: number,
    private readonly clock: () => number = Date.now,
  ) {
    this.rate = ceiling;
    this.last = clock();
  }

  /** Waits until `count` messages may go (a count over the rate goes once the bucket is full), or `signal` aborts. */
  async take(count: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      const now = this.clock();
      this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
      this.last = now;
      if (this.tokens >= count || (this.tokens >= this.rate && count > this.rate)) {
        this.tokens -= count;
        return;
      }
      await sleep(((count - this.tokens) / this.rate) * 1000, undefined, { signal }).catch(() => {});
      if (signal.aborted) return;
    }
  }

  throttled(): void {
    this.rate = Math.max(1, this.rate / 2);
  }

  accepted(): void {
    this.rate = Math.min(this.ceiling, this.rate + this.ceiling / 10);
  }
}
