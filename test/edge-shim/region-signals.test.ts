import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { BrownoutDetector } from '../../edge-shim/src/hybrid/region/brownout.js';
import { RepeatedLog } from '../../edge-shim/src/repeated-log.js';

// What the edge makes of failures: a brownout of the region against one queue's trouble, and a
// failure that repeats many times a second kept to a line a minute in the log.

class Clock {
  now = 0;
  readonly read = () => this.now;
}

describe('brownout detector', () => {
  const options = { windowMs: 10_000, failureShare: 0.5, minimumRequests: 10, minimumSources: 2 };

  it('does not take one queue failing, however often, for the region failing', () => {
    const clock = new Clock();
    const detector = new BrownoutDetector({ ...options, clock: clock.read });
    for (let i = 0; i < 50; i += 1) detector.record('odd-client-queue', true);
    expect(detector.regionWide()).toBe(false);
  });

  it('tells most requests failing across queues over the window', () => {
    const clock = new Clock();
    const detector = new BrownoutDetector({ ...options, clock: clock.read });
    for (let i = 0; i < 6; i += 1) detector.record('payments.fifo', true);
    for (let i = 0; i < 3; i += 1) detector.record('notices', true);
    expect(detector.regionWide()).toBe(false); // 9 requests: too few to tell
    detector.record('orders', false);
    expect(detector.regionWide()).toBe(true);
    // Mostly answered again: no longer.
    for (let i = 0; i < 12; i += 1) detector.record('orders', false);
    expect(detector.regionWide()).toBe(false);
  });

  it('forgets outcomes older than its window', () => {
    const clock = new Clock();
    const detector = new BrownoutDetector({ ...options, clock: clock.read });
    for (let i = 0; i < 10; i += 1) detector.record(i % 2 === 0 ? 'a' : 'b', true);
    expect(detector.regionWide()).toBe(true);
    clock.now += 10_001;
    detector.record('a', false);
    expect(detector.regionWide()).toBe(false);
  });
});

describe('repeated log', () => {
  function logged() {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: 'info' },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
          done();
        },
      }),
    );
    return { logger, lines };
  }

  it('logs a cause at once, then at most once a minute with how many times it came meanwhile', async () => {
    const clock = new Clock();
    const { logger, lines } = logged();
    const log = new RepeatedLog(logger, 60_000, clock.read);
    for (let i = 0; i < 11 * 60; i += 1) {
      log.log('error', 'orders:QueueDoesNotExist', { queue: 'orders' }, 'replay of a batch failed');
      clock.now += 100;
    }
    // 66 s of 10 failures a second: two lines, the second counting the 599 it stood for.
    log.log('error', 'orders:QueueDoesNotExist', { queue: 'orders' }, 'replay of a batch failed');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines.map((line) => line.repeated)).toEqual([undefined, 599]);
    // Another cause is its own.
    log.log('warn', 'notices:timeout', { queue: 'notices' }, 'replay of a batch failed');
    await new Promise((resolve) => setImmediate(resolve));
    expect(lines).toHaveLength(3);
  });
});
