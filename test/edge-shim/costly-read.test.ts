import { expect, it } from 'vitest';
import { CostlyRead } from '../../edge-shim/src/sqs/postgres/costly-read.js';

// The reuse rule of a costly read (a PostgreSQL node's message counts), on a clock the test moves:
// what a read costs is what the clock moved while it ran.
function reader() {
  let now = 0;
  let reads = 0;
  const read = new CostlyRead<number>(() => now);
  const takingMs = (ms: number) => async () => {
    now += ms;
    return (reads += 1);
  };
  return {
    read,
    takingMs,
    advance: (ms: number) => void (now += ms),
    get reads() {
      return reads;
    },
  };
}

it('reads a cheap count every time, so that a small queue is exact', async () => {
  const r = reader();
  expect(await r.read.get(r.takingMs(2))).toBe(1);
  expect(await r.read.get(r.takingMs(2))).toBe(2);
  expect(r.read.costly).toBe(false);
});

it('answers a costly count from its last read until it is ten times its cost old, then reads again', async () => {
  const r = reader();
  expect(await r.read.get(r.takingMs(450))).toBe(1);
  expect(r.read.costly).toBe(true);
  // 4.5 s from the start of that read: not yet.
  r.advance(4_000);
  expect(await r.read.get(r.takingMs(450))).toBe(1);
  r.advance(49);
  expect(await r.read.get(r.takingMs(450))).toBe(1);
  r.advance(1);
  expect(await r.read.get(r.takingMs(10))).toBe(2);
  // That read was cheap: the next one reads again at once.
  expect(r.read.costly).toBe(false);
  expect(await r.read.get(r.takingMs(10))).toBe(3);
  expect(r.reads).toBe(3);
});
