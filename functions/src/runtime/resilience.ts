import {
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  TimeoutStrategy,
  circuitBreaker,
  fullJitterGenerator,
  handleWhen,
  retry,
  timeout,
} from 'cockatiel';
import { isTransient } from './errors.js';

/** Exponential backoff with full jitter: attempt n waits a random time in [0, min(maxDelay, initialDelay * 2^n)). */
export interface RetryConfig {
  /** Attempts in all, the first one included. */
  readonly attempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

export interface BreakerConfig {
  /** Consecutive transient failures that open the circuit. */
  readonly consecutiveFailures: number;
  /** Time the circuit stays open before one trial call is let through (half-open). */
  readonly halfOpenAfterMs: number;
}

/** How an agent calls one downstream dependency. */
export interface CallPolicy {
  /** Per attempt; never more than the invocation has left. */
  readonly timeoutMs: number;
  readonly retry: RetryConfig;
  readonly breaker: BreakerConfig;
}

/** Time left in the current invocation (Lambda's context.getRemainingTimeInMillis). */
export interface Deadline {
  remainingMs(): number;
}

/** Time kept back from every downstream call so the handler can still record the outcome. */
const DEADLINE_RESERVE_MS = 500;

/** The invocation has no time left for another downstream call: the message goes back to its queue. */
export class DeadlineExceededError extends Error {
  override readonly name = 'DeadlineExceededError';
}

export function retryPolicy(config: RetryConfig) {
  return retry(handleWhen(isTransient), {
    maxAttempts: Math.max(0, config.attempts - 1),
    backoff: new ExponentialBackoff({
      generator: fullJitterGenerator,
      initialDelay: config.initialDelayMs,
      maxDelay: config.maxDelayMs,
    }),
  });
}

// Module scope on purpose: a Lambda container reuses the module, so a breaker opened by one
// invocation still protects the dependency in the next.
const breakers = new Map<string, CircuitBreakerPolicy>();

function breakerFor(dependency: string, config: BreakerConfig): CircuitBreakerPolicy {
  let breaker = breakers.get(dependency);
  if (!breaker) {
    breaker = circuitBreaker(handleWhen(isTransient), {
      halfOpenAfter: config.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(config.consecutiveFailures),
    });
    breakers.set(dependency, breaker);
  }
  return breaker;
}

export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

const STATE_NAMES: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/** State of a dependency's breaker in this container; `closed` for one never called. */
export function breakerState(dependency: string): BreakerState {
  const breaker = breakers.get(dependency);
  return breaker ? STATE_NAMES[breaker.state] : 'closed';
}

function attemptTimeout(policy: CallPolicy, deadline: Deadline): number {
  const available = deadline.remainingMs() - DEADLINE_RESERVE_MS;
  if (available <= 0) throw new DeadlineExceededError('no time left in the invocation for another downstream call');
  return Math.min(policy.timeoutMs, available);
}

/**
 * Calls a downstream dependency: retries transient failures with backoff, each attempt through the
 * dependency's circuit breaker and under a timeout whose signal aborts the request.
 */
export function callDependency<T>(
  dependency: string,
  policy: CallPolicy,
  deadline: Deadline,
  call: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const breaker = breakerFor(dependency, policy.breaker);
  return retryPolicy(policy.retry).execute(() =>
    breaker.execute(() =>
      timeout(attemptTimeout(policy, deadline), TimeoutStrategy.Aggressive).execute(({ signal }) => call(signal)),
    ),
  );
}
