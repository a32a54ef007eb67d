import { expect, it } from 'vitest';
import { CostlyRead, LARGE_COUNT } from '../../edge-shim/src/sqs/postgres/costly-read.js';

// The reuse rule of a PostgreSQL node's message counts, on a clock the test moves: what a count
// costs is what the clock moved while it ran, and it answers the number of messages it counted.
function counter() {
  let now = 0;
  let counts = 0;
  const read = new CostlyRead<number>((stored) => stored >= LARGE_COUNT, () => now);
  const counting = (stored: number, ms: number) => async () => {
    now += ms;
    counts += 1;
    return stored;
  };
  return {
    read,
    counting,
    advance: (ms: number) => void (now += ms),
    get counts() {
      return counts;
    },
  };
}

it('counts a small queue every time, however long the count took, so that its counts stay exact', async () => {
  const c = counter();
  expect(await c.read.get(c.counting(3, 400))).toBe(3);
  expect(await c.read.get(c.counting(4, 400))).toBe(4);
  expect(c.read.costly).toBe(false);
  expect(c.counts).toBe(2);
});

it('answers a large count from its last result until that is ten times its cost old, then counts again', async () => {
  const c = counter();
  expect(await c.read.get(c.counting(1_000_000, 450))).toBe(1_000_000);
  expect(c.read.costly).toBe(true);
  // 4.5 s from the start of that count: not yet.
  c.advance(4_049);
  expect(await c.read.get(c.counting(999_999, 450))).toBe(1_000_000);
  c.advance(1);
  expect(await c.read.get(c.counting(5, 10))).toBe(5);
  // Small again: the next one counts at once.
  expect(c.read.costly).toBe(false);
  expect(await c.read.get(c.counting(6, 10))).toBe(6);
  expect(c.counts).toBe(3);
});
