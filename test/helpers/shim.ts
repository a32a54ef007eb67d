import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import Database from 'better-sqlite3';
import pg from 'pg';
import { type RunningShim, type StartOptions, startShim } from '../../edge-shim/src/shim.js';
import { postgresDatabase } from './postgres.js';

export interface TestShim {
  readonly shim: RunningShim;
  readonly sqs: SQSClient;
  readonly dir: string;
  /** The shim's store, as --db names it: for another shim on the same store. */
  readonly dbFile: string;
  /** A clock the test moves forward: `clock.advance(ms)`. */
  readonly clock: TestClock;
  /**
   * How many rows one of the store's tables holds (where `column` is `value`, if given), read
   * beside the shim on whichever engine it runs: for tests of what the sweeper reclaims.
   */
  storedRows(table: StoreTable, where?: { readonly column: string; readonly value: string }): Promise<number>;
  close(): Promise<void>;
}

/** The store's tables that tests count, by their SQLite names (PostgreSQL's carry an `sqs_` prefix). */
export type StoreTable = 'messages' | 'fifo_groups' | 'deduplication' | 'receive_attempts';

async function countRows(dbFile: string, postgresUrl: string | undefined, table: StoreTable, where?: { readonly column: string; readonly value: string }): Promise<number> {
  const condition = where ? ` WHERE ${where.column} = ${postgresUrl ? '$1' : '?'}` : '';
  const values = where ? [where.value] : [];
  if (postgresUrl) {
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    try {
      return Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM sqs_${table}${condition}`, values)).rows[0]!.n);
    } finally {
      await client.end();
    }
  }
  const db = new Database(dbFile, { readonly: true });
  try {
    return db.prepare<unknown[], { n: number }>(`SELECT count(*) AS n FROM ${table}${condition}`).get(...values)!.n;
  } finally {
    db.close();
  }
}

export class TestClock {
  private offset = 0;
  readonly now = () => Date.now() + this.offset;
  advance(ms: number): void {
    this.offset += ms;
  }
}

/**
 * The storage engine the SQS semantics suites and the hybrid edge's run on: SQLite by default, PostgreSQL with
 * HOLDFAST_TEST_ENGINE=postgres (a throwaway cluster, test/helpers/postgres-setup.ts, a fresh
 * database per shim).
 */
export function testEngine(): 'sqlite' | 'postgres' {
  const engine = process.env.HOLDFAST_TEST_ENGINE ?? 'sqlite';
  if (engine !== 'sqlite' && engine !== 'postgres') throw new Error(`HOLDFAST_TEST_ENGINE must be sqlite or postgres, not ${engine}`);
  return engine;
}

export const TEST_CREDENTIALS = { accessKeyId: 'AKIDHOLDFASTTEST', secretAccessKey: 'holdfast-test-secret' };

export function sqsClient(endpoint: string, credentials = TEST_CREDENTIALS): SQSClient {
  return new SQSClient({ endpoint, region: 'us-east-1', credentials, maxAttempts: 1 });
}

/**
 * A shim on free loopback ports (SQS and admin) over a database in a fresh temporary directory. It checks
 * signatures against TEST_CREDENTIALS (what the returned client signs with) unless the options
 * give other credentials (`credentials: []` turns checking off).
 */
export async function startTestShim(options: StartOptions = {}): Promise<TestShim> {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-test-'));
  const clock = new TestClock();
  // The store is on the engine the run asks for.
  const database = testEngine() === 'postgres' && options.dbFile === undefined ? await postgresDatabase() : undefined;
  const dbFile = database?.url ?? join(dir, 'shim.db');
  const shim = await startShim({
    port: 0,
    adminPort: 0,
    dbFile,
    logLevel: (process.env.TEST_SHIM_LOG_LEVEL ?? 'silent') as 'silent',
    clock: clock.now,
    credentials: [TEST_CREDENTIALS],
    // The default reserve is 64 MiB of zeros written next to every database: more than a test needs.
    diskReserveBytes: 2 ** 20,
    ...options,
  });
  const sqs = sqsClient(shim.url);
  return {
    shim,
    sqs,
    dir,
    dbFile: options.dbFile ?? dbFile,
    clock,
    storedRows: (table, where) => countRows(join(dir, 'shim.db'), database?.url, table, where),
    async close() {
      sqs.destroy();
      await shim.close();
      await database?.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
