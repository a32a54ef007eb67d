import { afterEach, describe, expect, it } from 'vitest';
import { isPermanent, isTransient } from '../../functions/src/runtime/errors.js';
import { type PostgresDatabase, SCHEMA_VERSION, openPostgresDatabase } from '../../functions/src/runtime/store/postgres-database.js';
import { type TestPostgresDatabase, postgresDatabase } from '../helpers/postgres.js';
import { waitForState } from '../helpers/wait.js';

/** The PostgreSQL backend's schema: versioned migrations, safe when several nodes start at once. */
describe('PostgreSQL database of the runtime stores', () => {
  const opened: PostgresDatabase[] = [];
  let database: TestPostgresDatabase | undefined;
  const open = async (url: string) => {
    const db = await openPostgresDatabase(url, { maxConnections: 2 });
    opened.push(db);
    return db;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((db) => db.end()));
    await database?.drop();
    database = undefined;
  });

  const versions = async (db: PostgresDatabase) => (await db.query<{ version: number }>('SELECT version FROM schema_version ORDER BY version')).rows.map((row) => row.version);

  it('migrates an empty database once, however many processes open it at the same time', async () => {
    database = await postgresDatabase();
    const url = database.url;
    const dbs = await Promise.all([open(url), open(url), open(url)]);
    expect(await versions(dbs[0]!)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    const { rows } = await dbs[1]!.query<{ table_name: string }>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name");
    expect(rows.map((row) => row.table_name)).toEqual([
      'checkpoint',
      'counter',
      'counter_operation',
      'idempotency',
      'ledger_closed_account',
      'ledger_entry',
      'ledger_posting',
      'saga',
      'schema_version',
      'step',
    ]);
    // Opened again later, as a restarted node does: nothing to migrate, the data stays.
    await dbs[2]!.query("INSERT INTO saga (workflow_id, workflow, status, input) VALUES ('w-1', 'wf', 'running', '{}')");
    const again = await open(url);
    expect(await versions(again)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    expect((await again.query('SELECT workflow_id FROM saga')).rows).toEqual([{ workflow_id: 'w-1' }]);
  });

  it('refuses a database that a newer runtime migrated', async () => {
    database = await postgresDatabase();
    const db = await open(database.url);
    await db.query('INSERT INTO schema_version (version) VALUES ($1)', [SCHEMA_VERSION + 1]);
    await expect(openPostgresDatabase(database.url)).rejects.toThrow(`has runtime schema version ${SCHEMA_VERSION + 1}; this holdfast knows up to ${SCHEMA_VERSION}`);
  });

  it('classes a connection the server ended as transient, and a refused statement as not', async () => {
    database = await postgresDatabase();
    const db = await open(database.url);
    const sleeping = db.query('SELECT pg_sleep(60)').catch((error: unknown) => error);
    // Ended by the server, as a restart or a failover ends it (SQLSTATE 57P01).
    await waitForState(async () => {
      const { rowCount } = await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND pid <> pg_backend_pid()");
      expect(rowCount).toBe(1);
    });
    const ended = await sleeping;
    expect(ended).toMatchObject({ code: '57P01' });
    expect(isTransient(ended)).toBe(true);
    const refused = await db.query('INSERT INTO schema_version (version) VALUES (1)').catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: '23505' });
    expect([isTransient(refused), isPermanent(refused)]).toEqual([false, false]);
  });
});
