import { BrokenCircuitError, TaskCancelledError } from 'cockatiel';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type FakeGateway, startFakeGateway } from '../../functions/src/fake-gateway/server.js';
import { HttpStatusError, PermanentError, TransientError, isPermanent, isTransient } from '../../functions/src/runtime/errors.js';
import { runFallbackChain } from '../../functions/src/runtime/fallback.js';
import { postJson } from '../../functions/src/runtime/http.js';
import { type CallPolicy, DeadlineExceededError, breakerState, callDependency, retryPolicy } from '../../functions/src/runtime/resilience.js';

const policy: CallPolicy = {
  timeoutMs: 1_000,
  retry: { attempts: 4, initialDelayMs: 5, maxDelayMs: 20 },
  breaker: { consecutiveFailures: 3, halfOpenAfterMs: 200 },
};
const plenty = { remainingMs: () => 60_000 };

let gateway: FakeGateway;
beforeEach(async () => {
  gateway = await startFakeGateway();
});
afterEach(async () => {
  await gateway.close();
});

const authorize = (dependency: string, callPolicy = policy, deadline = plenty) =>
  callDependency(dependency, callPolicy, deadline, (signal) =>
    postJson<{ authorizationId: string }>('gateway', `${gateway.url}/authorizations`, { paymentId: 'p1', account: 'a1', amountMinor: 100, currency: 'EUR' }, { signal, idempotencyKey: 'k1' }),
  );

describe('error classification', () => {
  it('treats throttling, timeouts, 5xx and broken connections as transient and the rest as permanent', () => {
    expect(isTransient(new HttpStatusError('s', 503, ''))).toBe(true);
    expect(isTransient(new HttpStatusError('s', 429, ''))).toBe(true);
    expect(isTransient(new TaskCancelledError())).toBe(true);
    expect(isTransient(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('x'), { name: 'ThrottlingException' }))).toBe(true);
    expect(isPermanent(new HttpStatusError('s', 404, ''))).toBe(true);
    expect(isPermanent(new HttpStatusError('s', 403, ''))).toBe(true);
    expect(isPermanent(Object.assign(new Error('bad'), { name: 'ValidationException', $fault: 'client' }))).toBe(true);
    expect(isTransient(new BrokenCircuitError())).toBe(false);
    const bug = new TypeError('undefined is not a function');
    expect([isTransient(bug), isPermanent(bug)]).toEqual([false, false]);
  });
});

describe('retry policy', () => {
  it('waits a random time below the capped exponential bound before each retry (full jitter)', async () => {
    const config = { attempts: 7, initialDelayMs: 2, maxDelayMs: 16 };
    const policy = retryPolicy(config);
    const delays: number[] = [];
    policy.onRetry((event) => delays.push(event.delay));
    let calls = 0;
    await expect(
      policy.execute(async () => {
        calls++;
        throw new TransientError('busy');
      }),
    ).rejects.toThrow('busy');
    expect(calls).toBe(config.attempts);
    expect(delays).toHaveLength(config.attempts - 1);
    delays.forEach((delay, retry) => {
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThan(Math.min(config.maxDelayMs, config.initialDelayMs * 2 ** retry));
    });
  });
});

describe('calls to a dependency over a real connection', () => {
  it('retries transient gateway errors and then succeeds', async () => {
    gateway.faults.failNext = 2;
    const answer = await authorize('retry-ok');
    expect(answer.authorizationId).toMatch(/^auth-/);
    expect(gateway.state.requests['POST /authorizations']).toBe(3);
    expect(gateway.state.authorizations).toHaveLength(1);
  });

  it('gives up after the configured attempts', async () => {
    gateway.faults.failNext = 10;
    await expect(authorize('retry-exhausted', { ...policy, breaker: { consecutiveFailures: 100, halfOpenAfterMs: 200 } })).rejects.toMatchObject({ status: 503 });
    expect(gateway.state.requests['POST /authorizations']).toBe(4);
  });

  it('does not retry a permanent error', async () => {
    const invalid = callDependency('permanent', policy, plenty, (signal) =>
      postJson('gateway', `${gateway.url}/authorizations`, { paymentId: 'p1' }, { signal, idempotencyKey: 'k2' }),
    );
    await expect(invalid).rejects.toMatchObject({ status: 422 });
    expect(gateway.state.requests['POST /authorizations']).toBe(1);
  });

  it('times out a slow call, aborting the request, and retries it', async () => {
    gateway.faults.latencyMs = 2_000;
    const slow = { ...policy, timeoutMs: 100, retry: { attempts: 2, initialDelayMs: 1, maxDelayMs: 1 } };
    await expect(authorize('slow', slow)).rejects.toBeInstanceOf(TaskCancelledError);
    expect(gateway.state.requests['POST /authorizations']).toBe(2);
    expect(gateway.state.authorizations).toHaveLength(0);
  });

  it('never waits beyond the time the invocation has left', async () => {
    gateway.faults.latencyMs = 2_000;
    // The gateway would answer within the policy's 10 s timeout, but the invocation has 650 ms left.
    const deadline = { remainingMs: () => 650 };
    await expect(authorize('deadline', { ...policy, timeoutMs: 10_000, retry: { attempts: 1, initialDelayMs: 1, maxDelayMs: 1 } }, deadline)).rejects.toBeInstanceOf(TaskCancelledError);
    await expect(authorize('deadline', policy, { remainingMs: () => 100 })).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(gateway.state.requests['POST /authorizations']).toBe(1);
  });

  it('opens the breaker when the gateway is down, then lets a trial call through and closes when it is back', async () => {
    gateway.faults.down = true;
    const dependency = `breaker ${gateway.url}`;
    await expect(authorize(dependency)).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(breakerState(dependency)).toBe('open');
    const refusedWhenOpened = gateway.state.refusedConnections;
    expect(refusedWhenOpened).toBe(3);
    await expect(authorize(dependency)).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(gateway.state.refusedConnections).toBe(refusedWhenOpened);

    gateway.faults.down = false;
    await new Promise((resolve) => setTimeout(resolve, policy.breaker.halfOpenAfterMs + 50));
    await expect(authorize(dependency)).resolves.toMatchObject({ authorizationId: expect.stringMatching(/^auth-/) });
    expect(breakerState(dependency)).toBe('closed');
  });
});

describe('fallback chains', () => {
  const chain = (primary: () => Promise<unknown>) => [
    { name: 'primary', run: primary },
    { name: 'secondary', run: async () => { throw new TransientError('secondary unavailable'); } },
    { name: 'heuristic', run: async () => 'guess' },
  ];

  it('answers from the first alternative that works and records which one did', async () => {
    gateway.faults.down = true;
    const outcome = await runFallbackChain(chain(() => authorize(`fallback ${gateway.url}`)), {});
    expect(outcome.answeredBy).toBe('heuristic');
    expect(outcome.value).toBe('guess');
    expect(outcome.skipped.map((skip) => skip.name)).toEqual(['primary', 'secondary']);
    expect(outcome.skipped[0]!.reason).toContain('BrokenCircuitError');
  });

  it('stops at a permanent error instead of asking the next alternative', async () => {
    const refused = runFallbackChain(chain(async () => { throw new PermanentError('card blocked'); }), {});
    await expect(refused).rejects.toThrow('card blocked');
  });
});
