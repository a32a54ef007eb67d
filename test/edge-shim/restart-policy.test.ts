import { describe, expect, it } from 'vitest';
import { RestartPolicy } from '../../edge-shim/src/fallback/supervisor/restart-policy.js';

// The supervisor's restart policy on its own: times are given, no process is started.
const STABLE_RUN_MS = 60_000;
const policy = () => new RestartPolicy({ restartDelayMs: 500, maxRestartDelayMs: 5_000, stableRunMs: STABLE_RUN_MS });

/** The decisions for deaths in a row at `at`, the agent never polling between them. */
const deaths = (restarts: RestartPolicy, count: number, at = 0) => Array.from({ length: count }, () => restarts.died(at));

describe('restart policy', () => {
  it('restarts at once after the first death, then waits twice as long each time in a crash loop, up to the longest delay', () => {
    expect(deaths(policy(), 7).map((decision) => [decision.consecutiveFailures, decision.delayMs])).toEqual([
      [1, 0],
      [2, 500],
      [3, 1_000],
      [4, 2_000],
      [5, 4_000],
      [6, 5_000],
      [7, 5_000],
    ]);
  });

  it('ends a crash loop after a stable run: the next death restarts at once, and a new loop starts from the first delay', () => {
    const restarts = policy();
    deaths(restarts, 4);
    restarts.up(1_000);
    expect(restarts.died(1_000 + STABLE_RUN_MS)).toEqual({ consecutiveFailures: 1, delayMs: 0 });
    expect(restarts.died(1_000 + STABLE_RUN_MS)).toEqual({ consecutiveFailures: 2, delayMs: 500 });
  });

  it('keeps backing off after a run shorter than a stable one', () => {
    const restarts = policy();
    deaths(restarts, 3);
    restarts.up(1_000);
    expect(restarts.died(1_000 + STABLE_RUN_MS - 1)).toEqual({ consecutiveFailures: 4, delayMs: 2_000 });
  });

  it('counts a stable run from when the agent began polling: agents that never poll stay in the loop however long it lasts', () => {
    const restarts = policy();
    restarts.died(0);
    expect(restarts.died(10 * STABLE_RUN_MS)).toEqual({ consecutiveFailures: 2, delayMs: 500 });
  });

  it('starts afresh for a new run', () => {
    const restarts = policy();
    deaths(restarts, 5);
    restarts.up(1_000);
    restarts.reset();
    expect(deaths(restarts, 2, 2_000)).toEqual([
      { consecutiveFailures: 1, delayMs: 0 },
      { consecutiveFailures: 2, delayMs: 500 },
    ]);
  });
});
