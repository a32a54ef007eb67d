import pg from 'pg';

export type PostgresDatabase = pg.Pool;

/**
 * The runtime stores' schema, one migration per version: migration i brings a database to version
 * i + 1. Released migrations are never edited; a change is a new one at the end. Tables hold what
 * the SQLite edge database's do (sqlite-database.ts), plus the ledger, which a site on PostgreSQL
 * may keep.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE saga (
    workflow_id text PRIMARY KEY,
    workflow text NOT NULL,
    status text NOT NULL,
    input text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE step (
    workflow_id text NOT NULL,
    step_index integer NOT NULL,
    step text NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    compensation_attempts integer NOT NULL DEFAULT 0,
    result text,
    error text,
    ran_at text,
    compensated_at text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, step_index)
  );
  CREATE TABLE idempotency (
    id text PRIMARY KEY,
    status text NOT NULL,
    expiration double precision,
    in_progress_expiration double precision,
    data text,
    validation text
  );
  CREATE TABLE checkpoint (
    key text NOT NULL,
    version bigint NOT NULL,
    state text NOT NULL,
    sha256 text NOT NULL,
    writer text NOT NULL,
    base_version bigint NOT NULL,
    created_at text NOT NULL,
    PRIMARY KEY (key, version)
  );
  CREATE TABLE counter (
    key text NOT NULL,
    writer text NOT NULL,
    count bigint NOT NULL,
    -- The writer's count when it last settled (its counts reached the region): limits apply to count - settled.
    settled bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (key, writer)
  );
  CREATE TABLE counter_operation (
    operation_id text PRIMARY KEY,
    writer text NOT NULL,
    increments text NOT NULL,
    at text NOT NULL
  );
  CREATE TABLE ledger_posting (
    id text PRIMARY KEY,
    memo text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  );
  CREATE TABLE ledger_entry (
    posting_id text NOT NULL REFERENCES ledger_posting (id),
    leg integer NOT NULL,
    account text NOT NULL,
    side text NOT NULL,
    amount_minor bigint NOT NULL,
    currency text NOT NULL,
    PRIMARY KEY (posting_id, leg)
  );
  CREATE TABLE ledger_closed_account (
    account text PRIMARY KEY
  );
  `,
];

/** The schema version this runtime writes; a database at a later one was migrated by a newer runtime. */
export const SCHEMA_VERSION = MIGRATIONS.length;

// bigint columns arrive as strings unless parsed; counts and amounts are safe integers (checked on the way in).
const types: pg.CustomTypesConfig = {
  getTypeParser: (oid, format) => (oid === pg.types.builtins.INT8 ? Number : pg.types.getTypeParser(oid, format)),
};

export interface PostgresOptions {
  /** Connections the pool opens at most (default 10: every query is short, and a server has ~100 in all). */
  readonly maxConnections?: number;
  /**
   * How long the server lets a transaction sit idle before it ends the session: locks held by a
   * process that froze mid-transaction are not held for ever. None by default.
   */
  readonly idleInTransactionTimeoutMs?: number;
  /**
   * How long a query may go unanswered before it fails with `Query read timeout` (its connection is
   * then of no more use: the answer may still come). A server whose packets are dropped (a network
   * partition) otherwise holds a query until TCP gives up, many minutes later. None by default.
   */
  readonly queryTimeoutMs?: number;
}

/**
 * A schema kept in a PostgreSQL database by versioned migrations: migration i brings it to version
 * i + 1. Released migrations are never edited; a change is a new one at the end.
 */
export interface VersionedSchema {
  /** What the schema is for, in errors. */
  readonly name: string;
  /** The table that records the versions applied. */
  readonly versionTable: string;
  /** Any constant key: every process migrating this schema in the same database takes this one advisory lock. */
  readonly lock: number;
  readonly migrations: readonly string[];
}

/** The runtime stores' schema (openPostgresDatabase brings a database to it). */
export const RUNTIME_SCHEMA: VersionedSchema = { name: 'runtime', versionTable: 'schema_version', lock: 0x486f6c64 /* "Hold" */, migrations: MIGRATIONS };

/** A pool on a PostgreSQL database (libpq URL, `postgres://user@host:port/db`), bigint columns read as numbers. */
export function postgresPool(url: string, options: PostgresOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.maxConnections ?? 10,
    // A server that cannot be reached fails the query in 10 s rather than leaving it waiting.
    connectionTimeoutMillis: 10_000,
    ...(options.queryTimeoutMs === undefined ? {} : { query_timeout: options.queryTimeoutMs }),
    types,
    ...(options.idleInTransactionTimeoutMs === undefined ? {} : { options: `-c idle_in_transaction_session_timeout=${options.idleInTransactionTimeoutMs}` }),
  });
  // An idle connection the server dropped (a restart, a failover) is only discarded; without a
  // listener the pool's error event would end the process.
  pool.on('error', () => {});
  return pool;
}

/**
 * Brings a schema to its newest version, refusing a database a newer holdfast migrated. Several
 * processes may do so at once: migrations run one at a time, under the schema's advisory lock.
 */
export async function migrate(pool: pg.Pool, schema: VersionedSchema): Promise<void> {
  const latest = schema.migrations.length;
  await transaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [schema.lock]);
    await client.query(`CREATE TABLE IF NOT EXISTS ${schema.versionTable} (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number | null; database: string }>(`SELECT max(version) AS version, current_database() AS database FROM ${schema.versionTable}`);
    const current = rows[0]!.version ?? 0;
    if (current > latest) throw new Error(`PostgreSQL database ${rows[0]!.database} has ${schema.name} schema version ${current}; this holdfast knows up to ${latest}`);
    for (let version = current + 1; version <= latest; version++) {
      await client.query(schema.migrations[version - 1]!);
      await client.query(`INSERT INTO ${schema.versionTable} (version) VALUES ($1)`, [version]);
    }
  });
}

/**
 * Opens a pool on a PostgreSQL database and brings the runtime stores' schema to this runtime's
 * version, refusing one that a newer runtime migrated.
 */
export async function openPostgresDatabase(url: string, options: PostgresOptions = {}): Promise<PostgresDatabase> {
  const pool = postgresPool(url, options);
  try {
    await migrate(pool, RUNTIME_SCHEMA);
    return pool;
  } catch (error) {
    await pool.end();
    throw error;
  }
}

/** Runs `work` in one transaction on one connection of the pool: committed if it returns, rolled back if it throws. */
export async function transaction<T>(pool: PostgresDatabase, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A connection lost between two statements is told as an error event, which unheard would end the
  // process; the next statement fails with it, and the work with that.
  const ignore = () => {};
  client.on('error', ignore);
  const release = (error?: Error) => {
    client.off('error', ignore);
    client.release(error);
  };
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    release();
    return result;
  } catch (error) {
    // A connection whose rollback fails is in an unknown state: destroyed rather than reused.
    await client.query('ROLLBACK').then(
      () => release(),
      (rollbackError: Error) => release(rollbackError),
    );
    throw error;
  }
}
