import type { Logger } from 'pino';
import type Database from 'better-sqlite3';
import { SqsError } from './errors.js';

/**
 * How much of the database is checked as the shim starts: `quick` (PRAGMA quick_check: every page
 * and record well formed, each table's pages in order), `full` (PRAGMA integrity_check: that, and
 * every index agrees with its table, which takes several times longer), or `off`.
 */
export type IntegrityCheck = 'full' | 'quick' | 'off';

// Problems listed at most, by the check and in the message that refuses a database.
const PROBLEMS_LISTED = 10;

/** The engine found its data inconsistent where SQLite did not: a message state without its message. */
export class StoreCorruption extends Error {
  override readonly name = 'StoreCorruption';
}

/**
 * The error that says the database is damaged, this one or its cause (a group commit that failed
 * as a whole): SQLite's SQLITE_CORRUPT (any kind) or SQLITE_NOTADB, or the engine's own finding.
 */
function damageIn(error: unknown): Error | undefined {
  if (error instanceof StoreCorruption) return error;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB')) return error as Error;
  return error instanceof Error && error.cause !== undefined ? damageIn(error.cause) : undefined;
}

/** Whether an error says the database is damaged (see damageIn). */
export function isCorruption(error: unknown): boolean {
  return damageIn(error) !== undefined;
}

/** A database found damaged as the shim starts: it is not served. */
export class CorruptDatabase extends Error {
  override readonly name = 'CorruptDatabase';

  constructor(
    readonly file: string,
    readonly problems: readonly string[],
  ) {
    super(
      `the database ${file} is corrupt: ${problems.join('; ')}. Stop here and keep a copy of it (with its -wal file); ` +
        `recover what it holds with \`sqlite3 ${file} .recover | sqlite3 recovered.db\` and start on the recovered database`,
    );
  }
}

/** Runs the check asked for; throws CorruptDatabase with what it found. */
export function checkIntegrity(db: Database.Database, file: string, check: IntegrityCheck): void {
  if (check === 'off') return;
  const pragma = `${check === 'full' ? 'integrity_check' : 'quick_check'}(${PROBLEMS_LISTED})`;
  const problems = db.pragma(pragma, { simple: false }) as Array<Record<string, string>>;
  const found = problems.map((row) => Object.values(row)[0]!).filter((problem) => problem !== 'ok');
  if (found.length > 0) throw new CorruptDatabase(file, found);
}

/**
 * What the engine knows of its database's integrity while it serves: nothing wrong until a
 * statement finds corruption, and then, for good, that it is corrupt. A corrupt store takes nothing
 * new (what it acknowledged might be lost to the recovery), says so at /health, and answers every
 * request that meets the damage with an InternalFailure that says what it is; what it can still
 * read and delete goes on, so that consumers can take what is readable before an operator steps in.
 */
export class StoreIntegrity {
  private found: string | undefined;

  constructor(
    private readonly logger: Logger,
    /** Told once, when corruption is first found. */
    private readonly onCorruption: () => void,
  ) {}

  /** What was found, if the database is known to be corrupt. */
  get corruption(): string | undefined {
    return this.found;
  }

  /**
   * An error of the engine, as its client is to get it: corruption is recorded (and logged, once)
   * and answered as InternalFailure saying so; any other error comes back as it is.
   */
  judge(error: unknown): unknown {
    const damage = damageIn(error);
    if (!damage) return error;
    if (this.found === undefined) {
      this.found = damage.message;
      this.logger.fatal({ err: damage }, 'the database is corrupt: new messages are refused and /health says so; stop the shim and recover the database');
      this.onCorruption();
    }
    return this.refusal();
  }

  /** Refuses what would add data to a store known to be corrupt. */
  admit(): void {
    if (this.found !== undefined) throw this.refusal();
  }

  /**
   * InternalFailure (500), not ServiceUnavailable (503): the store will not heal by itself, so
   * nothing invites a client to wait and retry. SQS has no error that forbids retrying, and SDKs
   * retry both a few times; /health answering 503 is what takes the shim out of service.
   */
  private refusal(): SqsError {
    return new SqsError('InternalFailure', `The edge store's database is corrupt (${this.found}): it takes nothing new until an operator recovers it.`);
  }
}
