import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { AwsCredentialIdentity } from '@smithy/types';
import type { Logger } from 'pino';
import { type EdgeDatabase, type RegionTables, type SyncProgress, concurrencyLimit, listSyncConflicts, openEdgeDatabase, syncEdgeToRegion } from '../../../functions/src/edge/index.js';
import type { ConflictStatus, SyncStatus } from '../observability/status.js';

export interface SyncBackOptions {
  /** The fallback agents' database. */
  readonly database: string;
  /** The workflow's tables in the region. */
  readonly tables: RegionTables;
  /** Writes in flight at most. */
  readonly concurrency: number;
  /** The region, its DynamoDB endpoint when not AWS's own (an emulator), and credentials (the SDK's chain when absent). */
  readonly region: { readonly name: string; readonly dynamoDbEndpoint?: string; readonly credentials?: AwsCredentialIdentity };
  readonly logger: Logger;
}

const KEPT_CONFLICTS = 20;

/**
 * The sync of what the fallback agents did into the region's tables (functions/src/edge/sync.ts
 * does the work), its progress for the status, and the conflicts it found. One connection of the
 * shim's to the agents' database, opened on first use.
 */
export class SyncBack {
  private database: EdgeDatabase | undefined;
  private readonly dynamodb: DynamoDBClient;
  private state: SyncStatus | null = null;

  constructor(private readonly options: SyncBackOptions) {
    const { region } = options;
    this.dynamodb = new DynamoDBClient({
      region: region.name,
      ...(region.credentials ? { credentials: region.credentials } : {}),
      ...(region.dynamoDbEndpoint ? { endpoint: region.dynamoDbEndpoint } : {}),
    });
  }

  /** Syncs, resuming where an earlier sync stopped; throws if the region fails it. */
  async run(): Promise<void> {
    let progress: SyncProgress | undefined;
    const show = (state: SyncStatus['state'], lastError: string | null) => {
      const counts = progress?.counts ?? { written: 0, identical: 0, conflicts: 0, skipped: 0 };
      this.state = { state, done: progress?.done ?? 0, total: progress?.total ?? 0, ...counts, lastError, finishedAt: state === 'running' ? null : new Date().toISOString() };
    };
    show('running', null);
    try {
      const result = await syncEdgeToRegion({
        database: this.edgeDatabase(),
        dynamodb: this.dynamodb,
        tables: this.options.tables,
        pacer: concurrencyLimit(this.options.concurrency),
        onProgress: (update) => {
          progress = update;
          show('running', null);
        },
        logger: this.options.logger,
      });
      progress = { kind: 'saga', done: progress?.total ?? 0, total: progress?.total ?? 0, counts: result.counts };
      show('done', null);
      this.options.logger.info({ ...result.counts, conflicts: result.conflicts.length }, 'synced the fallback agents\' work into the region');
    } catch (error) {
      show('failed', (error as Error).message);
      throw error;
    }
  }

  status(): SyncStatus | null {
    return this.state;
  }

  /** The latest conflicts still open, newest first, and how many there are. */
  conflicts(): { latest: ConflictStatus[]; count: number } {
    const open = listSyncConflicts(this.edgeDatabase());
    const latest: ConflictStatus[] = open
      .slice(-KEPT_CONFLICTS)
      .reverse()
      .map((conflict) => ({ kind: conflict.kind, key: conflict.key, detectedAt: conflict.firstSeenAt, region: conflict.region, edge: conflict.edge }));
    return { latest, count: open.length };
  }

  close(): void {
    this.dynamodb.destroy();
    this.database?.close();
  }

  private edgeDatabase(): EdgeDatabase {
    return (this.database ??= openEdgeDatabase(this.options.database));
  }
}
