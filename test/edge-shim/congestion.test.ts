import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { CongestionWindow } from '../../edge-shim/src/hybrid/link/congestion.js';
import { LinkEstimates } from '../../edge-shim/src/hybrid/link/estimates.js';
import { seededRandom } from '../../testkit/fault-modes.js';

// The way back's congestion control on a simulated path: a clock the test moves, transfers that
// take what a link of a given rate and round trip would give them. No sockets and no waiting: the
// window's decisions are a function of what it is told.

/** The test's time: it moves only when told, running what falls due on the way, in order. */
class Clock {
  now = 1_000_000;
  private readonly due: Array<{ readonly at: number; readonly run: () => void }> = [];
  readonly read = () => this.now;

  /** Runs `run` once the clock reaches `at`. */
  at(at: number, run: () => void): void {
    this.due.push({ at, run });
    this.due.sort((a, b) => a.at - b.at);
  }

  /** Moves to the next thing due and runs it; false when nothing is. */
  step(): boolean {
    const next = this.due.shift();
    if (!next) return false;
    this.now = Math.max(this.now, next.at);
    next.run();
    return true;
  }

  /** The window's pacing waits: the clock moves on, through what falls due meanwhile. */
  readonly sleep = async (ms: number) => {
    const until = this.now + ms;
    while (this.due.length > 0 && this.due[0]!.at <= until) this.step();
    this.now = until;
  };
}

function setup(maxWindow = 16) {
  const clock = new Clock();
  const estimates = new LinkEstimates({ clock: clock.read });
  const window = new CongestionWindow({ maxWindow, estimates, minTimeoutMs: 2000, clock: clock.read, sleep: clock.sleep });
  return { clock, estimates, window };
}

interface Path {
  readonly bytesPerSecond: number;
  readonly roundTripMs: number;
  /** The region's work per transfer, one transfer at a time (an emulator's single thread). */
  readonly serviceMs: number;
  /** A region slow to answer: each transfer waits there this long at random, side by side with the others. */
  readonly answerMs?: { readonly least: number; readonly most: number; readonly random: () => number };
}

/**
 * Keeps the window full for `durationMs` on a path where transfers overlap as on a real one: each
 * waits for the link behind the bytes sent before it (one bottleneck queue), crosses half the
 * round trip, waits for the region behind the transfers before it, and comes back. The edge's
 * probe measures the round trip (through the link's queue) every few seconds. Returns the bytes a
 * second delivered, the window after each transfer, and at each transfer's end how long a live
 * request sent then would wait for the link behind the way back's bytes.
 */
async function pipeline({ window, clock, estimates }: ReturnType<typeof setup>, path: Path, bytes: number, durationMs: number) {
  const startedAt = clock.now;
  let linkFreeAt = clock.now;
  let regionFreeAt = clock.now;
  let delivered = 0;
  const sizes: number[] = [];
  const liveWaits: number[] = [];
  let probedAt = Number.NEGATIVE_INFINITY;
  while (clock.now - startedAt < durationMs) {
    if (clock.now - probedAt >= 5000) {
      estimates.noteRoundTrip(path.roundTripMs + Math.max(0, linkFreeAt - clock.now));
      probedAt = clock.now;
    }
    if (window.transfersInFlight >= window.size) {
      clock.step();
      continue;
    }
    const transfer = await window.acquire();
    await transfer.begin(bytes);
    linkFreeAt = Math.max(clock.now, linkFreeAt) + (bytes / path.bytesPerSecond) * 1000;
    regionFreeAt = Math.max(linkFreeAt + path.roundTripMs / 2, regionFreeAt) + path.serviceMs;
    const answer = path.answerMs ? path.answerMs.least + path.answerMs.random() * (path.answerMs.most - path.answerMs.least) : 0;
    clock.at(regionFreeAt + answer + path.roundTripMs / 2, () => {
      transfer.finish('delivered');
      delivered += bytes;
      sizes.push(window.size);
      liveWaits.push(Math.max(0, linkFreeAt - clock.now));
    });
  }
  const endedAt = clock.now;
  // The rest lands, so that the window has nothing left on its way.
  while (clock.step());
  return { bytesPerSecond: (delivered * 1000) / (endedAt - startedAt), sizes, liveWaits };
}

const percentile = (values: readonly number[], share: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(share * values.length))]!;

describe('congestion window', () => {
  it('keeps a thin link busy with a short queue: more than 90% of it, a live request waiting under a second', async () => {
    const edge = setup();
    // 1 Mbit/s and 150 ms, batches of one 48 KiB message: each holds the link for 0.39 s.
    const path = { bytesPerSecond: 125_000, roundTripMs: 150, serviceMs: 20 };
    await pipeline(edge, path, 49_152, 20_000);
    const { bytesPerSecond, liveWaits, sizes } = await pipeline(edge, path, 49_152, 120_000);
    expect(bytesPerSecond).toBeGreaterThan(0.9 * path.bytesPerSecond);
    // No more in flight than the path holds twice over and two: more would only wait for the pace.
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3);
    // A 1 KiB request behind the way back: the link's queue, then its own round trip and the region's work.
    expect(percentile(liveWaits, 0.99) + path.roundTripMs + path.serviceMs).toBeLessThan(1000);
    expect(edge.estimates.bytesPerSecond).toBeGreaterThan(0.9 * path.bytesPerSecond);
    expect(edge.estimates.bytesPerSecond).toBeLessThan(1.1 * path.bytesPerSecond);
    // Batches sized for the link: about half a second of it each.
    expect(edge.window.batchBytes()).toBe(65_536);
  });

  it('fills the pipe to a region whose own work is the bottleneck, without piling up a queue there', async () => {
    const edge = setup(64);
    // Small writes over 50 ms to a region that does one at a time in 7 ms (about 143 a second):
    // one at a time gets 17 a second, it takes about eight in flight to keep the region busy.
    const path = { bytesPerSecond: 10e6, roundTripMs: 50, serviceMs: 7 };
    await pipeline(edge, path, 2048, 20_000);
    const { bytesPerSecond, sizes } = await pipeline(edge, path, 2048, 60_000);
    const writesPerSecond = bytesPerSecond / 2048;
    expect(writesPerSecond).toBeGreaterThan(0.9 * (1000 / path.serviceMs));
    // The queue it keeps at the region stays near the target (250 ms, about 36 writes), not the ceiling's 64.
    expect(percentile(sizes, 0.5)).toBeLessThan(50);
  });

  it('takes a region that answers in 1 to 3 s at random for a slow region, not a queue: many transfers in flight', async () => {
    const edge = setup();
    const path = { bytesPerSecond: 10e6, roundTripMs: 20, serviceMs: 0, answerMs: { least: 1000, most: 3000, random: seededRandom(15) } };
    await pipeline(edge, path, 4096, 60_000);
    const { sizes } = await pipeline(edge, path, 4096, 120_000);
    // Each answer takes 2 s on average whatever else is in flight: the ceiling's 16 get 8 a second.
    expect(percentile(sizes, 0.5)).toBeGreaterThanOrEqual(12);
  });

  it('grows to its ceiling where the path takes more at once without queueing (a fast link to a region far away)', async () => {
    const edge = setup();
    // 100 MB/s and 80 ms: a 100 KB batch holds the link for 1 ms; eighty would fill it.
    const path = { bytesPerSecond: 100e6, roundTripMs: 80, serviceMs: 0 };
    const { bytesPerSecond, sizes } = await pipeline(edge, path, 100_000, 5000);
    // Slow start: about one more per transfer delivered, doubling each round trip rather than creeping.
    expect(sizes.findIndex((size) => size >= 8)).toBeLessThan(10);
    expect(sizes.at(-1)).toBe(16);
    expect(bytesPerSecond).toBeGreaterThan(0.8 * ((16 * 100_000) / (path.roundTripMs + 16)) * 1000);
  });

  it('halves on a timeout, a throttling answer or a server error, once per round trip, never below one', async () => {
    const edge = setup();
    const { clock, window } = edge;
    await pipeline(edge, { bytesPerSecond: 100e6, roundTripMs: 50, serviceMs: 0 }, 10_000, 3000);
    expect(window.size).toBe(16);
    const transfers = await Promise.all(Array.from({ length: 16 }, () => window.acquire()));
    for (const transfer of transfers) await transfer.begin(10_000);
    clock.now += 60;
    // Sixteen transfers failing together are one signal, not sixteen halvings.
    for (const transfer of transfers) transfer.finish('throttled');
    expect(window.size).toBe(8);
    for (const outcome of ['timeout', 'failed', 'timeout', 'timeout', 'timeout'] as const) {
      clock.now += 60;
      const transfer = await window.acquire();
      await transfer.begin(10_000);
      transfer.finish(outcome);
    }
    expect(window.size).toBe(1);
  });

  it('learns nothing from a transfer the region refused: the path was fine', async () => {
    const edge = setup();
    const { clock, window } = edge;
    await pipeline(edge, { bytesPerSecond: 100e6, roundTripMs: 50, serviceMs: 0 }, 10_000, 3000);
    const before = window.size;
    clock.now += 5000;
    const refused = await window.acquire();
    await refused.begin(10_000);
    refused.finish('refused');
    expect(window.size).toBe(before);
  });

  it('yields to live requests: shrinks while they take much longer than their best lately', async () => {
    const edge = setup();
    const { estimates, window } = edge;
    await pipeline(edge, { bytesPerSecond: 100e6, roundTripMs: 50, serviceMs: 0 }, 10_000, 3000);
    const before = window.size;
    for (let i = 0; i < 8; i += 1) estimates.noteLive(60);
    await pipeline(edge, { bytesPerSecond: 100e6, roundTripMs: 50, serviceMs: 0 }, 10_000, 3000);
    expect(window.size).toBe(before);
    // Live sends now take a second more than their best: the replay is in their way.
    for (let i = 0; i < 8; i += 1) estimates.noteLive(1060);
    await pipeline(edge, { bytesPerSecond: 100e6, roundTripMs: 50, serviceMs: 0 }, 10_000, 3000);
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

  it('stops listening to the replay\'s signal once room is given, and gives up a wait the signal ends', async () => {
    const { window } = setup(1);
    const replay = new AbortController();
    // A long replay asks for room thousands of times with one signal: none of them may stay on it.
    for (let index = 0; index < 50; index++) (await window.acquire(0, replay.signal)).finish('refused');
    expect(getEventListeners(replay.signal, 'abort')).toHaveLength(0);
    const holding = await window.acquire(0, replay.signal);
    const waiting = window.acquire(0, replay.signal);
    expect(getEventListeners(replay.signal, 'abort')).toHaveLength(1);
    replay.abort(new Error('the replay stops'));
    await expect(waiting).rejects.toThrow('the replay stops');
    holding.finish('refused');
  });

  it('gives a transfer what its bytes need at the rate seen, and never less than the slowest lately took twice', async () => {
    const { clock, estimates, window } = setup();
    // Nothing known yet: a generous first time.
    const first = await window.acquire();
    expect(await first.begin(1_048_576)).toBe(15_000);
    first.finish('refused');
    const fresh = setup();
    await pipeline(fresh, { bytesPerSecond: 131_072, roundTripMs: 150, serviceMs: 0 }, 65_536, 10_000);
    // A 1 MiB batch over 128 KiB/s needs 8 s: it is given three times that and more.
    const big = await fresh.window.acquire();
    expect(await big.begin(1_048_576)).toBeGreaterThan(3 * 8000);
    big.finish('delivered');
    // A region that answers in 4 s whatever the size: no batch is cut before 8 s.
    estimates.noteRoundTrip(5);
    for (let i = 0; i < 3; i += 1) {
      const transfer = await window.acquire();
      await transfer.begin(1000);
      clock.now += 4000;
      transfer.finish('delivered');
    }
    expect(await (await window.acquire()).begin(1000)).toBeGreaterThanOrEqual(8000);
    expect(window.quietMs()).toBeGreaterThanOrEqual(8000);
  });
});
