import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../edge-shim/src/sqs/database.js';
import { EngineClock } from '../../edge-shim/src/sqs/engine-clock.js';

// The engine's clock on its own, over a database in memory: the wall clock and elapsed time are
// given by the test, which makes the wall clock jump.

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const DAY = 24 * 60 * MINUTE;
const START = Date.parse('2026-03-01T10:00:00.000Z');

let db: Db;
let wall: number;
let elapsed: number;
let warnings: string[];

beforeEach(() => {
  db = openDatabase(':memory:', 'process');
  db.exec('CREATE TABLE stored (at INTEGER NOT NULL) STRICT');
  wall = START;
  elapsed = 0;
  warnings = [];
});

const logger = () => pino({ level: 'warn' }, { write: (line: string) => warnings.push((JSON.parse(line) as { msg: string }).msg) });
const open = () => new EngineClock(db, logger(), { wall: () => wall, monotonic: () => elapsed });
/** Time goes by: elapsed time and the wall clock alike. */
const pass = (ms: number) => {
  elapsed += ms;
  wall += ms;
};
/** What a sweep does: follows the wall clock in a transaction, then what waits for the commit. */
function sweep(clock: EngineClock): void {
  const committed: Array<() => void> = [];
  db.transaction(() => clock.followWallClock((callback) => committed.push(callback)))();
  for (const callback of committed) callback();
}
/** The engine stores something (a message, a visibility timeout) at its time now. */
const store = (clock: EngineClock) => db.prepare('INSERT INTO stored (at) VALUES (?)').run(clock.now());
const savedTime = () => (db.prepare('SELECT shown_at FROM engine_clock').get() as { shown_at: number } | undefined)?.shown_at;
/** Whether an instant is at least `ageMs` old by the clock now. */
const isOld = (clock: EngineClock, at: number, ageMs: number) => at <= clock.ageCutoff(clock.now(), ageMs);

describe('the engine clock', () => {
  it('starts at the wall clock and goes on by elapsed time, whatever the wall clock does between sweeps', () => {
    const clock = open();
    expect(clock.now()).toBe(START);
    pass(5 * SECOND);
    wall += DAY;
    expect(clock.now()).toBe(START + 5 * SECOND);
  });

  it('follows a step of the wall clock too small to be a jump, and counts it as time gone by', () => {
    const clock = open();
    wall += 90 * SECOND;
    sweep(clock);
    expect(clock.now()).toBe(START + 90 * SECOND);
    expect(isOld(clock, START, 90 * SECOND)).toBe(true);
    expect(warnings).toEqual([]);
  });

  it('follows a jump forward of more than two minutes, logs it, and leaves it out of the age of what was stored before it', () => {
    const clock = open();
    const storedBefore = clock.now();
    pass(10 * SECOND);
    wall += 2 * DAY;
    sweep(clock);
    const jumpedAt = clock.now();
    expect(jumpedAt).toBe(wall);
    expect(warnings).toEqual([expect.stringMatching(/jumped 2880 min forward/)]);
    expect(isOld(clock, storedBefore, 10 * SECOND)).toBe(true);
    expect(isOld(clock, storedBefore, 11 * SECOND)).toBe(false);
    pass(50 * SECOND);
    expect(isOld(clock, storedBefore, 60 * SECOND)).toBe(true);
    // What is stored after the jump ages from when it was stored.
    expect(isOld(clock, jumpedAt, 50 * SECOND)).toBe(true);
    expect(isOld(clock, jumpedAt, 51 * SECOND)).toBe(false);
  });

  it('keeps its own time when the wall clock goes back, and logs it once', () => {
    const clock = open();
    pass(10 * SECOND);
    wall -= DAY;
    sweep(clock);
    expect(clock.now()).toBe(START + 10 * SECOND);
    pass(SECOND);
    sweep(clock);
    expect(clock.now()).toBe(START + 11 * SECOND);
    expect(warnings).toEqual([expect.stringMatching(/went back 1440 min: the engine keeps its own time/)]);
    // The wall clock set right again is no jump: the engine was never away from it.
    wall += DAY;
    sweep(clock);
    expect(clock.now()).toBe(wall);
    expect(warnings).toHaveLength(1);
  });

  it('follows a jump only once the sweep that saw it is committed', () => {
    const clock = open();
    wall += DAY;
    expect(() =>
      db.transaction(() => {
        clock.followWallClock(() => {});
        throw new Error('the commit failed');
      })(),
    ).toThrow('the commit failed');
    expect(clock.now()).toBe(START);
    expect(db.prepare('SELECT count(*) AS n FROM clock_jumps').get()).toEqual({ n: 0 });
    sweep(clock);
    expect(clock.now()).toBe(wall);
    expect(db.prepare('SELECT count(*) AS n FROM clock_jumps').get()).toEqual({ n: 1 });
  });

  it('saves its time at a sweep only when something was stored since the last save', () => {
    const clock = open();
    pass(10 * SECOND);
    store(clock);
    sweep(clock);
    expect(savedTime()).toBe(START + 10 * SECOND);
    pass(10 * SECOND);
    sweep(clock);
    expect(savedTime()).toBe(START + 10 * SECOND);
    store(clock);
    sweep(clock);
    expect(savedTime()).toBe(START + 20 * SECOND);
  });

  it('never goes back across a restart, and keeps the jumps it followed', () => {
    const before = open();
    const storedBefore = before.now();
    store(before);
    wall += 2 * DAY;
    sweep(before);
    pass(30 * SECOND);
    store(before);
    sweep(before);
    const shown = before.now();
    // The server restarts with its wall clock a day behind.
    wall -= DAY;
    const after = open();
    expect(after.now()).toBe(shown);
    expect(warnings.at(-1)).toMatch(/1440 min behind the time the engine last showed/);
    expect(isOld(after, storedBefore, 30 * SECOND)).toBe(true);
    expect(isOld(after, storedBefore, 31 * SECOND)).toBe(false);
  });

  it('forgets a jump once everything stored before it is older than the longest retention period', () => {
    const clock = open();
    wall += DAY;
    sweep(clock);
    expect(db.prepare('SELECT count(*) AS n FROM clock_jumps').get()).toEqual({ n: 1 });
    pass(14 * DAY);
    store(clock);
    sweep(clock);
    expect(db.prepare('SELECT count(*) AS n FROM clock_jumps').get()).toEqual({ n: 1 });
    pass(SECOND);
    store(clock);
    sweep(clock);
    expect(db.prepare('SELECT count(*) AS n FROM clock_jumps').get()).toEqual({ n: 0 });
    expect(isOld(clock, START, 14 * DAY)).toBe(true);
  });
});
