import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { createDatabase } from '../../testkit/postgres-cluster.js';

/** URL of the PostgreSQL cluster the tests share (postgres-setup.ts), on its `postgres` database. */
export function postgresUrl(): string {
  return inject('postgresUrl');
}

export interface TestPostgresDatabase {
  readonly url: string;
  /** Drops the database, closing whatever connections are left on it. */
  drop(): Promise<void>;
}

/** A fresh, empty database on the shared cluster, so that each test starts from no schema at all. */
export async function postgresDatabase(): Promise<TestPostgresDatabase> {
  const name = `holdfast_${randomUUID().replaceAll('-', '')}`;
  const url = await createDatabase(postgresUrl(), name);
  const drop = async () => {
    const client = new pg.Client({ connectionString: postgresUrl() });
    await client.connect();
    try {
      await client.query(`DROP DATABASE ${name} WITH (FORCE)`);
    } finally {
      await client.end();
    }
  };
  return { url, drop };
}
