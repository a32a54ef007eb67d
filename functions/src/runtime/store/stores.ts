import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ENV, TABLES, type TableKey } from '../../workflow-definition.js';
import { DynamoDbCheckpoints } from './dynamodb-checkpoints.js';
import { DynamoDbCounters } from './dynamodb-counters.js';
import { DynamoDbLedger } from './dynamodb-ledger.js';
import { DynamoDbStepLog } from './dynamodb-step-log.js';
import { PostgresCheckpoints } from './postgres-checkpoints.js';
import { PostgresCounters } from './postgres-counters.js';
import type { PostgresDatabase } from './postgres-database.js';
import { PostgresIdempotencyLayer } from './postgres-idempotency.js';
import { PostgresLedger } from './postgres-ledger.js';
import { PostgresStepLog } from './postgres-step-log.js';
import type { EdgeDatabase } from './sqlite-database.js';
import { SqliteCheckpoints } from './sqlite-checkpoints.js';
import { SqliteCounters } from './sqlite-counters.js';
import { SqliteIdempotencyLayer } from './sqlite-idempotency.js';
import { SqliteStepLog } from './sqlite-step-log.js';
import type { Stores } from './types.js';

/** The variable that names each table to an agent. */
export const TABLE_VARIABLES: Readonly<Record<TableKey, string>> = {
  idempotency: ENV.idempotencyTable,
  workflow: ENV.workflowTable,
  ledger: ENV.ledgerTable,
  state: ENV.stateTable,
};

/**
 * The region's stores, in the workflow's DynamoDB tables. Each store is made on first use, so that a
 * stage given only the tables it declares (as the stack configures it) fails only if its agent
 * reaches for another one, naming the variable it lacks.
 */
export function dynamoDbStores(dynamodb: DynamoDBClient, tables: Readonly<Partial<Record<TableKey, string>>>): Stores {
  const documents = DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  const table = (key: TableKey) => {
    const name = tables[key];
    if (!name) throw new Error(`no ${key} table configured for this agent (${TABLE_VARIABLES[key]} is not set)`);
    return name;
  };
  let stepLog: DynamoDbStepLog | undefined;
  let checkpoints: DynamoDbCheckpoints | undefined;
  let counters: DynamoDbCounters | undefined;
  let ledger: DynamoDbLedger | undefined;
  return {
    get stepLog() {
      return (stepLog ??= new DynamoDbStepLog(documents, table('workflow')));
    },
    get checkpoints() {
      return (checkpoints ??= new DynamoDbCheckpoints(documents, table('state')));
    },
    get counters() {
      return (counters ??= new DynamoDbCounters(documents, table('state')));
    },
    get ledger() {
      return (ledger ??= new DynamoDbLedger(documents, table('ledger')));
    },
    idempotencyLayer: () =>
      new DynamoDBPersistenceLayer({
        tableName: table('idempotency'),
        keyAttr: TABLES.idempotency.partitionKey,
        expiryAttr: TABLES.idempotency.ttlAttribute,
        awsSdkV3Client: dynamodb,
      }),
  };
}

/** The edge's stores, all in its one SQLite database; no ledger (the region's book of record). */
export function sqliteStores(db: EdgeDatabase): Stores {
  return {
    stepLog: new SqliteStepLog(db),
    checkpoints: new SqliteCheckpoints(db),
    counters: new SqliteCounters(db),
    ledger: undefined,
    idempotencyLayer: () => new SqliteIdempotencyLayer(db),
  };
}

/**
 * The stores of a site whose nodes share one PostgreSQL database, ledger included:
 * `postgresStores(await openPostgresDatabase(url))`, as `sqliteStores(openEdgeDatabase(file))` gives
 * the single-server edge's. Every node's agents may write at once: each write's condition is decided
 * by the database. Fallback agents get them without the ledger (`siteStores`, site-database.ts).
 */
export function postgresStores(db: PostgresDatabase): Stores {
  return {
    stepLog: new PostgresStepLog(db),
    checkpoints: new PostgresCheckpoints(db),
    counters: new PostgresCounters(db),
    ledger: new PostgresLedger(db),
    idempotencyLayer: () => new PostgresIdempotencyLayer(db),
  };
}
