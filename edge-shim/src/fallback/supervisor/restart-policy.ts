import { ExponentialBackoff, type IBackoff, noJitterGenerator } from 'cockatiel';

export interface RestartPolicyOptions {
  /** Delay before the second restart in a row (the first is immediate); it doubles each time. */
  readonly restartDelayMs: number;
  /** Longest delay between restarts. */
  readonly maxRestartDelayMs: number;
  /** A run this long ends a crash loop: the next death restarts at once again. */
  readonly stableRunMs: number;
}

export interface RestartDecision {
  /** Deaths in a row without a stable run between them, this one included. */
  readonly consecutiveFailures: number;
  /** How long to wait before starting the next agent (0: at once). */
  readonly delayMs: number;
}

/**
 * When to restart one stage's agent after it dies: the first death after a stable run at once, then,
 * in a crash loop, after delays that double up to the longest. Times are given by the caller.
 */
export class RestartPolicy {
  private readonly delays: ExponentialBackoff<number>;
  private consecutiveFailures = 0;
  private backoff: IBackoff<unknown> | undefined;
  /** When the current agent began polling. */
  private upSince: number | undefined;

  constructor(private readonly options: RestartPolicyOptions) {
    this.delays = new ExponentialBackoff({ generator: noJitterGenerator, initialDelay: options.restartDelayMs, maxDelay: options.maxRestartDelayMs });
  }

  /** A new run (an outage): its crash loop starts afresh. */
  reset(): void {
    this.consecutiveFailures = 0;
    this.backoff = undefined;
    this.upSince = undefined;
  }

  /** The stage's agent began polling. */
  up(now: number): void {
    this.upSince = now;
  }

  /** The stage's agent died: when to start the next. */
  died(now: number): RestartDecision {
    if (this.upSince !== undefined && now - this.upSince >= this.options.stableRunMs) {
      this.consecutiveFailures = 0;
      this.backoff = undefined;
    }
    this.upSince = undefined;
    this.consecutiveFailures += 1;
    // The first death after a stable run is restarted at once; a loop waits longer each time.
    let delayMs = 0;
    if (this.consecutiveFailures > 1) {
      this.backoff = this.backoff ? this.backoff.next(undefined) : this.delays.next();
      delayMs = this.backoff.duration;
    }
    return { consecutiveFailures: this.consecutiveFailures, delayMs };
  }
}
