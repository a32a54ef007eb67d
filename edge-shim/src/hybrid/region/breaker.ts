import { CircuitBreakerPolicy, CircuitState, ConsecutiveBreaker, type IBreaker, SamplingBreaker, circuitBreaker, handleWhen } from 'cockatiel';
import type { RegionUnavailable } from './client.js';

export interface BreakerOptions {
  /** The breaker opens after this many failures in a row... */
  readonly consecutiveFailures: number;
  /** ...or when this share of requests (0 to 1) failed over `failureRateWindowMs`, at `failureRateMinimumRps` or more. */
  readonly failureRate: number;
  readonly failureRateWindowMs: number;
  readonly failureRateMinimumRps: number;
  /** How long it stays open before a request (the probe) may test it. */
  readonly halfOpenAfterMs: number;
}

/** Opens when any of its breakers would: cockatiel's consecutive-failure and failure-rate breakers together. */
class EitherBreaker implements IBreaker {
  constructor(private readonly breakers: readonly IBreaker[]) {}

  get state(): unknown {
    return this.breakers.map((breaker) => breaker.state);
  }

  set state(value: unknown) {
    (value as unknown[]).forEach((state, index) => (this.breakers[index]!.state = state));
  }

  success(state: CircuitState): void {
    for (const breaker of this.breakers) breaker.success(state);
  }

  failure(state: CircuitState): boolean {
    // Every breaker hears of every failure, so none is left behind by the one that opened.
    return this.breakers.map((breaker) => breaker.failure(state)).some(Boolean);
  }
}

/** A failure that says the region is away, as Region judged it: what the breaker counts. */
export class OutageSignal extends Error {
  constructor(readonly failure: RegionUnavailable) {
    super(failure.message, { cause: failure });
  }
}

/** The circuit breaker in front of the region: it counts only OutageSignals; everything else says the region is there. */
export function regionBreaker(options: BreakerOptions): CircuitBreakerPolicy {
  return circuitBreaker(
    handleWhen((error) => error instanceof OutageSignal),
    {
      halfOpenAfter: options.halfOpenAfterMs,
      breaker: new EitherBreaker([
        new ConsecutiveBreaker(options.consecutiveFailures),
        new SamplingBreaker({ threshold: options.failureRate, duration: options.failureRateWindowMs, minimumRps: options.failureRateMinimumRps }),
      ]),
    },
  );
}
