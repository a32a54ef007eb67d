import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { createWorkflowResources } from '../../../functions/src/local-pipeline/resources.js';
import { openPostgresDatabase } from '../../../functions/src/runtime/store/postgres-database.js';
import { type EdgeDatabase, openEdgeDatabase } from '../../../functions/src/runtime/store/sqlite-database.js';
import { dynamoDbStores, postgresStores, sqliteStores } from '../../../functions/src/runtime/store/stores.js';
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

export interface TestEdgeDatabase {
  /** The open connection (a new one after `reopen`). */
  readonly db: EdgeDatabase;
  readonly file: string;
  /** Closes the connection and opens the file again, as a restarted process does. */
  reopen(): void;
  remove(): void;
}

/** A fresh edge database in its own temporary directory. */
export function edgeDatabase(): TestEdgeDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-edge-'));
  const file = join(dir, 'edge.db');
  let db = openEdgeDatabase(file);
  return {
    get db() {
      return db;
    },
    file,
    reopen() {
      db.close();
      db = openEdgeDatabase(file);
    },
    remove() {
      db.close();
      rmSync(dir, { recursive: true, force: true });
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
  const edge = edgeDatabase();
  return {
    name,
    stores: sqliteStores(edge.db),
    async tamperCheckpoint(key, version, state) {
      edge.db.prepare('UPDATE checkpoint SET state = ? WHERE key = ? AND version = ?').run(state, key, version);
    },
    close: async () => edge.remove(),
  };
}
