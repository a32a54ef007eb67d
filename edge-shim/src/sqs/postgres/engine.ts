import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { isTransient, migrate, postgresPool } from '../../../../functions/src/edge/index.js';
import { type EngineTime, givenClock } from '../engine-clock.js';
import type { Availability, EngineStorage, EngineTransaction, SqsEngine, StoreHealth } from '../engine.js';
import { SqsError } from '../errors.js';
import { type RetentionCutoff, retentionCutoff } from '../messages.js';
import { KEY_BYTES, ReceiptHandles } from '../receipt-handles.js';
import { type Step, runAwaiting } from '../storage/step.js';
import { SQS_SCHEMA } from './schema.js';
import { PostgresDeduplication, PostgresMessages, PostgresMoveTasks, PostgresQueues, PostgresReceiveAttempts, type Queryable, type QueueCounts } from './stores.js';

/** The channel on which a node tells the others that messages became available. */
const CHANNEL = 'holdfast_sqs_available';
// A transaction that lost to another (a deadlock, a queue name taken by another node at the same
// instant) is run again from its start, this many times in all.
const ATTEMPTS = 5;
const LOST_TO_ANOTHER = new Set(['40001', '40P01', '23505']);
// A transaction waits on nothing but the database: one idle this long belongs to a node that froze,
// and the server ends it so that its locks (messages, FIFO groups) go back to the other nodes.
const IDLE_IN_TRANSACTION_MS = 30_000;
// A query unanswered this long means a database that cannot be reached (its packets dropped): the
// request gets ServiceUnavailable rather than waiting for TCP to give up. Longer than the idle time
// above, since a query may wait that long for the locks of a node that froze.
export const QUERY_TIMEOUT_MS = IDLE_IN_TRANSACTION_MS + 15_000;
// While the database cannot be reached, it is looked at this often, so that /health and the
// listener of other nodes' news come back by themselves.
const PROBE_INTERVAL_MS = 1000;

// The server's answers that it cannot serve now: a connection lost or refused (class 08), shutting
// down or starting up, too many connections, and a read-only standby (met during a failover).
const UNREACHABLE_SQLSTATE = /^(08...|57P0[123]|53300|25006)$/;

/** Whether an error means the database cannot be reached now (down, restarting, failing over), not that the request is wrong. */
function isUnreachable(error: unknown): boolean {
  if (!(error instanceof Error) || error instanceof SqsError) return false;
  const { code, severity } = error as { code?: unknown; severity?: unknown };
  // An answer of the server (it has a severity): only the SQLSTATEs above.
  if (typeof severity === 'string') return typeof code === 'string' && UNREACHABLE_SQLSTATE.test(code);
  // No answer: the network's errors, or node-postgres' own words for a connection lost or never made.
  return isTransient(error) || isUnanswered(error) || /Connection terminated|connection error|timeout exceeded when trying to connect|Client was closed/i.test(error.message);
}

/** node-postgres gave up waiting for a query's answer: the connection may still receive it, so it is not used again. */
function isUnanswered(error: unknown): boolean {
  return error instanceof Error && error.message === 'Query read timeout';
}

/** Whether a transaction lost to another one at the same time (a deadlock, a name taken at once): worth running again. */
function isLostToAnother(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && LOST_TO_ANOTHER.has(code);
}

const unavailable = () => new SqsError('ServiceUnavailable', 'The database of the queues cannot be reached; try again.');

export interface PostgresEngineOptions {
  /** libpq URL of the database, `postgres://user@host:port/database`. */
  readonly url: string;
  readonly region: string;
  readonly accountId: string;
  readonly logger: Logger;
  /** Milliseconds since the epoch; tests pass a clock they can move. The wall clock by default. */
  readonly clock?: () => number;
  /** Whether messages expire after their queue's MessageRetentionPeriod (true by default). */
  readonly expireMessages?: boolean;
  /** Connections the node opens at most (10 by default), besides the one it listens on. */
  readonly maxConnections?: number;
  /** How long a query may go unanswered before the database is taken as unreachable; tests shorten it. */
  readonly queryTimeoutMs?: number;
}

/** PostgreSQL's storage: the ports, and the connection of the transaction for what is kept beside the queues (the hybrid edge's). */
export interface PostgresStorage extends EngineStorage {
  readonly sql: Queryable;
}

interface Notice {
  readonly node: string;
  readonly available: ReadonlyArray<{ readonly queueId: number; readonly count: number | null; readonly at?: number }>;
}

/**
 * The SQS engine on PostgreSQL, for a site of several nodes on one database. Each operation is one
 * transaction (BEGIN … COMMIT on a connection of the pool), answered only once COMMIT returned;
 * receives lock what they take with FOR UPDATE SKIP LOCKED (see stores.ts), so nodes never hand
 * out the same message or FIFO group at once. A transaction that made messages available tells
 * every node (NOTIFY, delivered at COMMIT), whose long polls wake. While the database cannot be
 * reached, requests get a retryable ServiceUnavailable; the pool reconnects by itself.
 */
export class PostgresEngine implements SqsEngine<PostgresStorage> {
  readonly shared = true;
  readonly time: EngineTime;
  readonly retentionCutoff: RetentionCutoff;
  /** This node, in its notices: it has woken its own long polls already. */
  private readonly node = randomUUID();
  private readonly availabilityListeners: Array<(availability: Availability) => void> = [];
  private listener: pg.Client | undefined;
  /** Why the database cannot be reached, as last met; undefined while it answers. */
  private unreachable: string | undefined;
  private probe: NodeJS.Timeout | undefined;
  private readonly running = new Set<Promise<unknown>>();
  private closed = false;
  private readonly queueCounts: QueueCounts = new Map();

  private constructor(
    private readonly pool: pg.Pool,
    private readonly receipts: ReceiptHandles,
    private readonly options: PostgresEngineOptions,
  ) {
    this.time = givenClock(options.clock ?? Date.now);
    this.retentionCutoff = retentionCutoff(options.expireMessages ?? true, this.time);
  }

  /** Opens the pool, brings the schema to this version (under an advisory lock) and starts listening for other nodes' news. */
  static async open(options: PostgresEngineOptions): Promise<PostgresEngine> {
    const pool = postgresPool(options.url, {
      maxConnections: options.maxConnections ?? 10,
      idleInTransactionTimeoutMs: IDLE_IN_TRANSACTION_MS,
      queryTimeoutMs: options.queryTimeoutMs ?? QUERY_TIMEOUT_MS,
    });
    try {
      await migrate(pool, SQS_SCHEMA);
      // The first node draws the key; every node signs and checks receipt handles with it.
      await pool.query('INSERT INTO sqs_receipt_key (id, secret) VALUES (1, $1) ON CONFLICT (id) DO NOTHING', [randomBytes(KEY_BYTES)]);
      const { rows } = await pool.query<{ secret: Buffer }>('SELECT secret FROM sqs_receipt_key WHERE id = 1');
      const engine = new PostgresEngine(pool, ReceiptHandles.withKey(rows[0]!.secret), options);
      await engine.listen();
      return engine;
    } catch (error) {
      await pool.end();
      throw error;
    }
  }

  transact<T>(transaction: EngineTransaction<PostgresStorage, T>): Promise<T> {
    if (this.closed) return Promise.reject(new SqsError('ServiceUnavailable', 'The server is shutting down.'));
    const running = this.attempt(transaction);
    this.running.add(running);
    const forget = () => this.running.delete(running);
    running.then(forget, forget);
    return running;
  }

  private async attempt<T>(transaction: EngineTransaction<PostgresStorage, T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      // A connection lost between two statements is told as an event: unheard, it would end the process.
      const onError = (error: Error) => this.lost(error);
      client.on('error', onError);
      const release = (error?: Error) => {
        client.off('error', onError);
        client.release(error);
      };
      try {
        await client.query('BEGIN');
        const value = await runAwaiting(transaction.run(this.storageOn(client)));
        const announced = transaction.announcements();
        // The notice rides with the COMMIT, one round trip for both: PostgreSQL delivers it only once committed.
        await client.query(announced.length > 0 ? `SELECT pg_notify('${CHANNEL}', ${pg.escapeLiteral(this.notice(announced))}); COMMIT` : 'COMMIT');
        release();
        this.answered();
        return value;
      } catch (error) {
        // A connection still waiting for an answer, or whose rollback fails, is in an unknown state: destroyed rather than reused.
        if (isUnanswered(error)) release(error as Error);
        else
          await client.query('ROLLBACK').then(
            () => release(),
            (rollbackError: Error) => release(rollbackError),
          );
        if (attempt < ATTEMPTS && isLostToAnother(error)) continue;
        throw error;
      }
    }
  }

  read<T>(work: (storage: PostgresStorage) => Step<T>): Promise<T> {
    return runAwaiting(work(this.storageOn(this.pool)));
  }

  private storageOn(db: Queryable): PostgresStorage {
    return {
      sql: db,
      queues: new PostgresQueues(db, this.options.region, this.options.accountId),
      messages: new PostgresMessages(db, this.retentionCutoff, this.queueCounts),
      deduplication: new PostgresDeduplication(db),
      receiveAttempts: new PostgresReceiveAttempts(db),
      moveTasks: new PostgresMoveTasks(db),
      receipts: this.receipts,
    };
  }

  // While the database is known to be unreachable, sends are refused at once rather than after a connection timeout.
  admit(): void {
    if (this.unreachable !== undefined) throw unavailable();
  }

  judge(error: unknown): unknown {
    if (isUnreachable(error)) {
      this.lost(error as Error);
      return unavailable();
    }
    // Still losing after every attempt: the client's retry will find calmer times.
    if (isLostToAnother(error)) return new SqsError('ServiceUnavailable', 'The request met others on the same messages at the same time; try again.');
    return error;
  }

  health(): StoreHealth {
    if (this.unreachable !== undefined) return { status: 'unavailable', reason: `the database cannot be reached: ${this.unreachable}`, storage: null };
    return { status: 'ok', storage: null };
  }

  onAvailable(listener: (availability: Availability) => void): void {
    this.availabilityListeners.push(listener);
  }

  async drain(): Promise<void> {
    this.closed = true;
    await Promise.allSettled([...this.running]);
    clearTimeout(this.probe);
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => {});
    await this.pool.end();
  }

  private notice(available: readonly Availability[]): string {
    const notice: Notice = { node: this.node, available: available.map(({ queueId, count, at }) => ({ queueId, count: Number.isFinite(count) ? count : null, ...(at === undefined ? {} : { at }) })) };
    return JSON.stringify(notice);
  }

  private notified(payload: string | undefined): void {
    const notice = JSON.parse(payload ?? '{}') as Partial<Notice>;
    if (notice.node === this.node || !Array.isArray(notice.available)) return;
    for (const { queueId, count, at } of notice.available) {
      const availability: Availability = { queueId, count: count ?? Infinity, ...(at === undefined ? {} : { at }) };
      for (const listener of this.availabilityListeners) listener(availability);
    }
  }

  /** A connection of its own that LISTENs; lost with the database, it is made again once the database answers. */
  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.url });
    client.on('notification', (message) => this.notified(message.payload));
    client.on('error', (error) => this.lost(error));
    client.on('end', () => {
      if (this.listener === client) {
        this.listener = undefined;
        this.lost(new Error('the connection that listens for other nodes ended'));
      }
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    if (this.closed) {
      await client.end();
      return;
    }
    this.listener = client;
  }

  /** The database answered: /health says so again. */
  private answered(): void {
    if (this.unreachable === undefined || this.listener === undefined) return;
    this.options.logger.info('the database answers again');
    this.unreachable = undefined;
  }

  /** The database cannot be reached: said at /health, and looked at again until it answers. */
  private lost(error: Error): void {
    if (this.closed) return;
    if (this.unreachable === undefined) this.options.logger.error({ err: error }, 'the database cannot be reached: requests are answered ServiceUnavailable until it is back');
    this.unreachable = error.message;
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.probe !== undefined || this.closed) return;
    this.probe = setTimeout(() => {
      this.probe = undefined;
      void this.reconnect();
    }, PROBE_INTERVAL_MS);
    this.probe.unref();
  }

  private async reconnect(): Promise<void> {
    try {
      await this.pool.query('SELECT 1');
      if (!this.listener) await this.listen();
      this.answered();
      // Whatever other nodes made available while this one could not hear them: its long polls look again.
      const { rows } = await this.pool.query<{ id: number }>('SELECT id FROM sqs_queues');
      for (const { id } of rows) for (const listener of this.availabilityListeners) listener({ queueId: id, count: Infinity });
    } catch (error) {
      this.lost(error as Error);
    }
  }
}
