import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createWorkflowResources } from '../../../functions/src/local-pipeline/resources.js';
import { openPostgresDatabase } from '../../../functions/src/runtime/store/postgres-database.js';
import { type SiteDatabase, closeSiteDatabase, openSiteDatabase, siteStores } from '../../../functions/src/runtime/store/site-database.js';
import type { EdgeDatabase } from '../../../functions/src/runtime/store/sqlite-database.js';
import { dynamoDbStores, postgresStores } from '../../../functions/src/runtime/store/stores.js';
import type { Stores } from '../../../functions/src/runtime/store/types.js';
import type { TableKey } from '../../../functions/src/workflow-definition.js';
import { emulator } from '../../helpers/emulator.js';
import { postgresDatabase } from '../../helpers/postgres.js';

export type BackendName = 'dynamodb' | 'sqlite' | 'postgres';
export const BACKENDS: readonly BackendName[] = ['dynamodb', 'sqlite', 'postgres'];

/** One backend's stores for a test, with a way to damage a stored snapshot behind the store's back. */
export interface TestBackend {
  readonly name: BackendName;
  readonly stores: Stores;
  tamperCheckpoint(key: string, version: number, state: string): Promise<void>;
  close(): Promise<void>;
}

/** Fresh tables of a stage-less workflow on the emulator (the region), as the agents' backend. */
export async function regionTables(label: string): Promise<{ tables: Record<TableKey, string>; dynamodb: DynamoDBClient; documents: DynamoDBDocumentClient }> {
  const { tables } = await createWorkflowResources(emulator(), { name: label, stages: [] }, { namePrefix: `${label}-${randomUUID().slice(0, 8)}-` });
  const dynamodb = new DynamoDBClient(emulator());
  return { tables, dynamodb, documents: DynamoDBDocumentClient.from(dynamodb) };
}

/** The engines an edge site's database runs on: a file of a single-server site, or a database its shim nodes share. */
export type EdgeEngine = 'sqlite' | 'postgres';
export const EDGE_ENGINES: readonly EdgeEngine[] = ['sqlite', 'postgres'];

export interface TestEdgeDatabase {
  readonly engine: EdgeEngine;
  /** Where it is, as HOLDFAST_EDGE_DATABASE and the sync take it: the file, or the URL. */
  readonly location: string;
  /** The open database (a new one after `reopen`). */
  readonly db: SiteDatabase;
  /** The fallback agents' stores on it. */
  readonly stores: Stores;
  /** Closes the database and opens it again, as a restarted process does. */
  reopen(): Promise<void>;
  remove(): Promise<void>;
}

/** A fresh edge database: a file in its own temporary directory, or a database of its own on the tests' PostgreSQL cluster. */
export async function edgeDatabase(engine: EdgeEngine = 'sqlite'): Promise<TestEdgeDatabase> {
  let location: string;
  let discard: () => Promise<void>;
  if (engine === 'postgres') {
    const database = await postgresDatabase();
    location = database.url;
    discard = database.drop;
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-edge-'));
    location = join(dir, 'edge.db');
    discard = async () => rmSync(dir, { recursive: true, force: true });
  }
  let db = await openSiteDatabase(location);
  let stores = siteStores(db);
  return {
    engine,
    location,
    get db() {
      return db;
    },
    get stores() {
      return stores;
    },
    async reopen() {
      await closeSiteDatabase(db);
      db = await openSiteDatabase(location);
      stores = siteStores(db);
    },
    async remove() {
      await closeSiteDatabase(db);
      await discard();
    },
  };
}

export async function testBackend(name: BackendName): Promise<TestBackend> {
  if (name === 'dynamodb') {
    const { tables, dynamodb, documents } = await regionTables('contract');
    return {
      name,
      stores: dynamoDbStores(dynamodb, tables),
      async tamperCheckpoint(key, version, state) {
        await documents.send(
          new UpdateCommand({
            TableName: tables.state,
            Key: { pk: `checkpoint#${key}`, sk: `v#${String(version).padStart(12, '0')}` },
            UpdateExpression: 'SET #s = :s',
            ExpressionAttributeNames: { '#s': 'state' },
            ExpressionAttributeValues: { ':s': state },
          }),
        );
      },
      close: async () => dynamodb.destroy(),
    };
  }
  if (name === 'postgres') {
    const database = await postgresDatabase();
    const db = await openPostgresDatabase(database.url);
    return {
      name,
      stores: postgresStores(db),
      async tamperCheckpoint(key, version, state) {
        await db.query('UPDATE checkpoint SET state = $1 WHERE key = $2 AND version = $3', [state, key, version]);
      },
      async close() {
        await db.end();
        await database.drop();
      },
    };
  }
  const edge = await edgeDatabase('sqlite');
  return {
    name,
    stores: edge.stores,
    async tamperCheckpoint(key, version, state) {
      (edge.db as EdgeDatabase).prepare('UPDATE checkpoint SET state = ? WHERE key = ? AND version = ?').run(state, key, version);
    },
    close: () => edge.remove(),
  };
}
