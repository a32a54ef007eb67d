import type { Logger } from 'pino';
import type { Db } from './database.js';

/** More than this between the wall clock and the engine's is a jump of the wall clock, not drift. */
const JUMP_THRESHOLD_MS = 2 * 60_000;
// The time shown is saved at most this often, and only once the engine stored something since (the
// times it stored are what a restart must not contradict): a crash loses at most this much of it.
const SAVE_INTERVAL_MS = 1000;
// The longest MessageRetentionPeriod: a jump this far back in every age changes no expiry any more.
const LONGEST_RETENTION_MS = 1_209_600_000;

// shown_at: the latest time the engine's clock showed, so that it never goes back across a restart.
// clock_jumps: each forward jump of the wall clock it followed, at the engine's time just before the
// jump; the ages of messages stored before a jump leave it out.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS engine_clock (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  shown_at INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS clock_jumps (
  at INTEGER PRIMARY KEY,
  size INTEGER NOT NULL
) STRICT;
`;

/** The engine's time: what `now` is, and how old a stored instant is by it. */
export interface EngineTime {
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /** Instants at or before this one are at least `ageMs` old at `now`. */
  ageCutoff(now: number, ageMs: number): number;
  /** Once a sweep, inside its transaction: keeps up with the wall clock (see EngineClock). */
  followWallClock(afterCommit: (callback: () => void) => void): void;
}

/** A clock given by whoever starts the engine (tests that move time): it rules as it is. */
export function givenClock(now: () => number): EngineTime {
  return { now, ageCutoff: (at, ageMs) => at - ageMs, followWallClock: () => {} };
}

export interface ClockSources {
  /** Milliseconds since the epoch; it may jump. Date.now by default. */
  readonly wall?: () => number;
  /** Milliseconds from any origin, never jumping: elapsed time. performance.now by default. */
  readonly monotonic?: () => number;
}

interface Jump {
  /** The engine's time just before the jump. */
  readonly at: number;
  readonly size: number;
}

const minutes = (ms: number) => Math.round(ms / 60_000);

/**
 * The engine's clock by default: the wall clock's time when anchored, moved on by elapsed
 * (monotonic) time, so that a visibility timeout or a delay lasts as long as it says whatever the
 * wall clock does. It never goes back: at start it takes the later of the wall clock and the last
 * time it showed (saved in the database), and when the wall clock goes back it keeps its own time.
 * It follows the wall clock forward; a jump of more than two minutes is logged and recorded, and
 * ages leave it out, so that a jump expires nothing on its own (a site server booting with a wrong
 * clock, then NTP setting it right).
 */
export class EngineClock implements EngineTime {
  private anchorWall: number;
  private anchorMonotonic: number;
  /** Ascending by `at`. */
  private jumps: Jump[];
  private savedAt: number;
  /** The database's count of row changes after the last save: a store left idle since needs none. */
  private changesAtSave = -1;
  /** How far the engine's time was ahead of the wall clock at the last look (after the wall clock went back). */
  private lead: number;
  private readonly statements;
  private readonly wall: () => number;
  private readonly monotonic: () => number;

  constructor(
    db: Db,
    private readonly logger: Logger,
    sources: ClockSources = {},
  ) {
    this.wall = sources.wall ?? Date.now;
    this.monotonic = sources.monotonic ?? (() => performance.now());
    db.exec(SCHEMA);
    this.statements = {
      shown: db.prepare<[], { shown_at: number }>('SELECT shown_at FROM engine_clock WHERE id = 1'),
      save: db.prepare('INSERT INTO engine_clock (id, shown_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET shown_at = excluded.shown_at'),
      jumps: db.prepare<[], Jump>('SELECT at, size FROM clock_jumps ORDER BY at'),
      addJump: db.prepare('INSERT INTO clock_jumps (at, size) VALUES (?, ?)'),
      forgetJumps: db.prepare('DELETE FROM clock_jumps WHERE at <= ?'),
      changes: db.prepare<[], { changes: number }>('SELECT total_changes() AS changes'),
    };
    const wall = this.wall();
    const shown = this.statements.shown.get()?.shown_at ?? wall;
    this.anchorWall = Math.max(wall, shown);
    this.anchorMonotonic = this.monotonic();
    this.lead = this.anchorWall - wall;
    this.savedAt = shown;
    this.jumps = this.statements.jumps.all();
    if (this.lead > JUMP_THRESHOLD_MS) {
      logger.warn({ behindMs: this.lead }, `the wall clock is ${minutes(this.lead)} min behind the time the engine last showed: the engine goes on from that time`);
    }
  }

  readonly now = (): number => this.at(this.monotonic());

  ageCutoff(now: number, ageMs: number): number {
    // Ages are taken in a time without the jumps: back from now by ageMs there, then into engine time.
    let cutoff = this.jumpFree(now) - ageMs;
    for (const jump of this.jumps) {
      if (cutoff < jump.at) break;
      cutoff += jump.size;
    }
    return cutoff;
  }

  followWallClock(afterCommit: (callback: () => void) => void): void {
    const monotonic = this.monotonic();
    const engine = this.at(monotonic);
    const wall = this.wall();
    if (wall - engine > JUMP_THRESHOLD_MS) {
      const jump = { at: engine, size: wall - engine };
      this.statements.addJump.run(jump.at, jump.size);
      this.save(wall, afterCommit);
      // Only once committed: the engine must not follow a jump that the database does not hold.
      afterCommit(() => {
        this.anchor(wall, monotonic);
        this.jumps.push(jump);
        this.logger.warn(
          { jumpMs: jump.size },
          `the wall clock jumped ${minutes(jump.size)} min forward: the engine follows it, and messages stored before the jump do not age by it`,
        );
      });
      return;
    }
    if (wall > engine) {
      // Drift, or a step too small to be a jump: followed, and counted as time gone by.
      this.anchor(wall, monotonic);
    } else {
      const lead = engine - wall;
      if (lead > this.lead + JUMP_THRESHOLD_MS) {
        this.logger.warn(
          { jumpMs: lead - this.lead, aheadMs: lead },
          `the wall clock went back ${minutes(lead - this.lead)} min: the engine keeps its own time, ${minutes(lead)} min ahead of it`,
        );
      }
      this.lead = lead;
    }
    const shown = Math.max(wall, engine);
    if (shown - this.savedAt < SAVE_INTERVAL_MS || this.statements.changes.get()!.changes === this.changesAtSave) return;
    this.forgetOldJumps(shown, afterCommit);
    this.save(shown, afterCommit);
  }

  private at(monotonic: number): number {
    return this.anchorWall + Math.floor(monotonic - this.anchorMonotonic);
  }

  private anchor(wall: number, monotonic: number): void {
    this.anchorWall = wall;
    this.anchorMonotonic = monotonic;
    this.lead = 0;
  }

  private save(shown: number, afterCommit: (callback: () => void) => void): void {
    this.statements.save.run(shown);
    const changes = this.statements.changes.get()!.changes;
    afterCommit(() => {
      this.savedAt = shown;
      this.changesAtSave = changes;
    });
  }

  /** Drops the jumps further back than any message's retention: they change no expiry any more. */
  private forgetOldJumps(now: number, afterCommit: (callback: () => void) => void): void {
    const horizon = this.jumpFree(now) - LONGEST_RETENTION_MS;
    const old = this.jumps.filter((jump) => this.jumpFree(jump.at) < horizon).length;
    if (old === 0) return;
    this.statements.forgetJumps.run(this.jumps[old - 1]!.at);
    afterCommit(() => this.jumps.splice(0, old));
  }

  /** The engine's time with the jumps taken out (an instant within a jump counts as its start). */
  private jumpFree(at: number): number {
    let shift = 0;
    for (const jump of this.jumps) shift += Math.min(jump.size, Math.max(0, at - jump.at));
    return at - shift;
  }
}
