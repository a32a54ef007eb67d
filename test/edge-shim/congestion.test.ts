import { describe, expect, it } from 'vitest';
import { CongestionWindow, type Transfer } from '../../edge-shim/src/hybrid/link/congestion.js';
import { LinkEstimates } from '../../edge-shim/src/hybrid/link/estimates.js';

// The way back's congestion control on a simulated path: a clock the test moves, transfers that
// take what a link of a given rate and round trip would give them. No sockets and no waiting: the
// window's decisions are a function of what it is told.

class Clock {
  now = 1_000_000;
  readonly read = () => this.now;
}

interface Path {
  readonly bytesPerSecond: number;
  readonly roundTripMs: number;
}

function setup(maxWindow = 16) {
  const clock = new Clock();
  const estimates = new LinkEstimates({ clock: clock.read });
  const window = new CongestionWindow({ maxWindow, estimates, minTimeoutMs: 2000, clock: clock.read });
  return { clock, estimates, window };
}

/**
 * Runs `rounds` rounds on a path: each round fills the window with transfers of `bytes`, which
 * share the link (each takes the round trip plus all their bytes at the link's rate), then finishes
 * them. Returns the window's size after each round.
 */
async function run(window: CongestionWindow, clock: Clock, path: Path, bytes: number, rounds: number): Promise<number[]> {
  const sizes: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const count = window.size;
    const transfers: Transfer[] = [];
    for (let i = 0; i < count; i += 1) {
      const transfer = await window.acquire();
      transfer.begin(bytes);
      transfers.push(transfer);
    }
    clock.now += path.roundTripMs + ((count * bytes) / path.bytesPerSecond) * 1000;
    for (const transfer of transfers) transfer.finish('delivered');
    sizes.push(window.size);
  }
  return sizes;
}

describe('congestion window', () => {
  it('grows while the path takes more at once without queueing (a fast link to a region far away)', async () => {
    const { clock, estimates, window } = setup();
    // 100 MB/s and 80 ms: ten batches of 100 KB in flight barely add to each one's time.
    estimates.noteRoundTrip(80);
    const sizes = await run(window, clock, { bytesPerSecond: 100e6, roundTripMs: 80 }, 100_000, 12);
    // Here every batch of a round shares the link, so sixteen add a fifth to each one's time: it
    // stops growing a little short of the ceiling, far above a thin link's one or two.
    expect(sizes.at(-1)).toBeGreaterThanOrEqual(12);
    // Slow start: it doubles at first rather than creeping.
    expect(sizes.slice(0, 3)).toEqual([2, 4, 8]);
  });

  it('stays at one or two batches on a thin link, where more in flight only queues', async () => {
    const { clock, estimates, window } = setup();
    // 128 KiB/s and 150 ms: a 64 KiB batch holds the link for half a second.
    estimates.noteRoundTrip(150);
    const sizes = await run(window, clock, { bytesPerSecond: 131_072, roundTripMs: 150 }, 65_536, 30);
    expect(Math.max(...sizes.slice(10))).toBeLessThanOrEqual(3);
    expect(estimates.bytesPerSecond).toBeGreaterThan(131_072 * 0.8);
    expect(estimates.bytesPerSecond).toBeLessThan(131_072 * 1.5);
    // Batches sized for the link: about half a second of it each.
    expect(window.batchBytes()).toBe(65_536);
  });

  it('halves on a timeout, a throttling answer or a server error, once per round trip, never below one', async () => {
    const { clock, estimates, window } = setup();
    estimates.noteRoundTrip(50);
    await run(window, clock, { bytesPerSecond: 100e6, roundTripMs: 50 }, 10_000, 6);
    expect(window.size).toBe(16);
    const transfers = await Promise.all(Array.from({ length: 16 }, () => window.acquire()));
    for (const transfer of transfers) transfer.begin(10_000);
    clock.now += 60;
    // Sixteen transfers failing together are one signal, not sixteen halvings.
    for (const transfer of transfers) transfer.finish('throttled');
    expect(window.size).toBe(8);
    for (const outcome of ['timeout', 'failed', 'timeout', 'timeout', 'timeout'] as const) {
      clock.now += 60;
      const transfer = await window.acquire();
      transfer.begin(10_000);
      transfer.finish(outcome);
    }
    expect(window.size).toBe(1);
  });

  it('learns nothing from a transfer the region refused: the path was fine', async () => {
    const { clock, estimates, window } = setup();
    estimates.noteRoundTrip(50);
    await run(window, clock, { bytesPerSecond: 100e6, roundTripMs: 50 }, 10_000, 3);
    const before = window.size;
    clock.now += 5000;
    const refused = await window.acquire();
    refused.begin(10_000);
    refused.finish('refused');
    expect(window.size).toBe(before);
  });

  it('yields to live requests: shrinks while they take much longer than their best lately', async () => {
    const { clock, estimates, window } = setup();
    estimates.noteRoundTrip(50);
    await run(window, clock, { bytesPerSecond: 100e6, roundTripMs: 50 }, 10_000, 6);
    const before = window.size;
    for (let i = 0; i < 8; i += 1) estimates.noteLive(60);
    await run(window, clock, { bytesPerSecond: 100e6, roundTripMs: 50 }, 10_000, 1);
    expect(window.size).toBe(before);
    // Live sends now take a second more than their best: the replay is in their way.
    for (let i = 0; i < 8; i += 1) estimates.noteLive(1060);
    await run(window, clock, { bytesPerSecond: 100e6, roundTripMs: 50 }, 10_000, 1);
    expect(window.size).toBeLessThan(before);
  });

  it('gives room to the waiting transfer of highest priority first, in order within a priority', async () => {
    const { window } = setup(1);
    const holding = await window.acquire();
    const order: string[] = [];
    const acquire = (name: string, priority: number) =>
      window.acquire(priority).then((transfer) => {
        order.push(name);
        return transfer;
      });
    const telemetry = acquire('telemetry', 0);
    const first = acquire('payments 1', 10);
    const second = acquire('payments 2', 10);
    holding.finish('delivered');
    (await first).finish('delivered');
    (await second).finish('delivered');
    (await telemetry).finish('delivered');
    expect(order).toEqual(['payments 1', 'payments 2', 'telemetry']);
  });

  it('gives a transfer what its bytes need at the rate seen, and never less than the slowest lately took twice', async () => {
    const { clock, estimates, window } = setup();
    // Nothing known yet: a generous first time.
    const first = await window.acquire();
    expect(first.begin(1_048_576)).toBe(15_000);
    first.finish('refused');
    const fresh = setup();
    fresh.estimates.noteRoundTrip(150);
    await run(fresh.window, fresh.clock, { bytesPerSecond: 131_072, roundTripMs: 150 }, 65_536, 10);
    // A 1 MiB batch over 128 KiB/s needs 8 s: it is given three times that and more.
    const big = await fresh.window.acquire();
    expect(big.begin(1_048_576)).toBeGreaterThan(3 * 8000);
    big.finish('delivered');
    // A region that answers in 4 s whatever the size: no batch is cut before 8 s.
    estimates.noteRoundTrip(5);
    for (let i = 0; i < 3; i += 1) {
      const transfer = await window.acquire();
      transfer.begin(1000);
      clock.now += 4000;
      transfer.finish('delivered');
    }
    expect((await window.acquire()).begin(1000)).toBeGreaterThanOrEqual(8000);
    expect(window.quietMs()).toBeGreaterThanOrEqual(8000);
  });
});
