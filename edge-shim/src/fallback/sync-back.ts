import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { AwsCredentialIdentity } from '@smithy/types';
import type { Logger } from 'pino';
import {
  type RegionTables,
  type SiteDatabase,
  type SyncConflict,
  type SyncProgress,
  type WritePacer,
  closeSiteDatabase,
  listSyncConflicts,
  openSiteDatabase,
  pendingSyncRecords,
  syncEdgeToRegion,
} from '../../../functions/src/edge/index.js';
import { CongestionWindow, type TransferOutcome } from '../hybrid/link/congestion.js';
import type { LinkEstimates } from '../hybrid/link/estimates.js';
import { agentsFor } from '../hybrid/link/proxy.js';
import type { ConflictRecord, ConflictStatus, SyncStatus } from '../observability/status.js';

export interface SyncBackOptions {
  /** The fallback agents' database: an SQLite file, or a PostgreSQL URL. */
  readonly database: string;
  /** The workflow's tables in the region. */
  readonly tables: RegionTables;
  /** Writes in flight at most: the ceiling of the congestion window the writes go through. */
  readonly concurrency: number;
  /** What the edge knows of its path to the region. */
  readonly link: LinkEstimates;
  /** The least time a write is given (the live requests' timeout). */
  readonly minTimeoutMs: number;
  /** The region, its DynamoDB endpoint when not AWS's own (an emulator), and credentials (the SDK's chain when absent). */
  readonly region: { readonly name: string; readonly dynamoDbEndpoint?: string; readonly credentials?: AwsCredentialIdentity };
  readonly logger: Logger;
  /** The clock the sync's times are told by: the edge's, so that they order with its transitions (the wall clock by default). */
  readonly clock?: () => number;
}

const KEPT_CONFLICTS = 20;
// The conflicts shown are read again at most this often while the status is asked for: another
// node of a site on PostgreSQL may have synced (and met conflicts) meanwhile.
const CONFLICTS_READ_EVERY_MS = 10_000;
// A write of the sync carries one record of a few hundred bytes where a replay batch carries up to
// ten messages: the sync may have this many times the replay's batches in flight. Below the
// ceiling its congestion control finds what the path and the region take.
const WRITES_PER_BATCH = 4;

/** The most writes the sync may have in flight, for the replay's most batches in flight (`--replay-concurrency`). */
export function syncWritesCeiling(replayConcurrency: number): number {
  return WRITES_PER_BATCH * replayConcurrency;
}
// However slow the path, a write with no answer after this is given up (and tried again).
const MAX_WRITE_MS = 60_000;
// What a write of the sync carries, about: a record of a few hundred bytes and its request.
const WRITE_BYTES = 2048;
// DynamoDB's answers that say "not now": the path or the table is full.
const THROTTLING = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException']);

/** What a write's failure says of the path: throttled, no answer in time, or the write's own failure. */
function outcomeOf(error: unknown): TransferOutcome {
  const name = (error as { name?: string } | undefined)?.name ?? '';
  if (THROTTLING.has(name)) return 'throttled';
  if (name === 'TimeoutError' || name === 'AbortError' || (error as { code?: string } | undefined)?.code === 'ECONNRESET') return 'timeout';
  return (error as { $metadata?: unknown } | undefined)?.$metadata === undefined ? 'failed' : 'refused';
}

/** The sync's writes through a congestion window: as many in flight as the path to the region takes. */
function pacedBy(window: CongestionWindow): WritePacer {
  return {
    async run(write) {
      const transfer = await window.acquire();
      await transfer.begin(WRITE_BYTES);
      try {
        const result = await write();
        transfer.finish('delivered');
        return result;
      } catch (error) {
        transfer.finish(outcomeOf(error));
        throw error;
      }
    },
  };
}

/**
 * The sync of what the fallback agents did into the region's tables (functions/src/edge/sync.ts
 * does the work), its progress for the status, and the conflicts it found. One connection (or
 * pool) of the shim's to the agents' database, opened on first use. The status asks for conflicts
 * without waiting: they are answered from the last readConflicts(), which every sync renews.
 */
export class SyncBack {
  private database: Promise<SiteDatabase> | undefined;
  /** Every conflict kept, resolved ones too, as last read. */
  private known: readonly SyncConflict[] = [];
  private conflictsReadAt = 0;
  /** The latest read of the conflicts, its failure already told to its caller. */
  private conflictReads: Promise<void> = Promise.resolve();
  private readonly dynamodb: DynamoDBClient;
  private readonly window: CongestionWindow;
  private state: SyncStatus | null = null;

  constructor(private readonly options: SyncBackOptions) {
    const { region } = options;
    this.dynamodb = new DynamoDBClient({
      region: region.name,
      ...(region.credentials ? { credentials: region.credentials } : {}),
      ...(region.dynamoDbEndpoint ? { endpoint: region.dynamoDbEndpoint } : {}),
      // A write that hangs is given up (and counted as congestion) rather than waited on for good.
      requestHandler: {
        connectionTimeout: options.minTimeoutMs,
        requestTimeout: MAX_WRITE_MS,
        ...agentsFor(region.dynamoDbEndpoint ?? `https://dynamodb.${region.name}.amazonaws.com`, { keepAlive: true }),
      },
    });
    this.window = new CongestionWindow({ maxWindow: options.concurrency, estimates: options.link, minTimeoutMs: options.minTimeoutMs });
  }

  /** Records of the fallback agents' work that have yet to reach the region (conflicts on record aside). */
  async pending(): Promise<number> {
    return pendingSyncRecords({ database: await this.edgeDatabase(), dynamodb: this.dynamodb, tables: this.options.tables });
  }

  /** Syncs, resuming where an earlier sync stopped; throws if the region fails it. */
  async run(): Promise<void> {
    let progress: SyncProgress | undefined;
    const show = (state: SyncStatus['state'], lastError: string | null) => {
      const counts = progress?.counts ?? { written: 0, identical: 0, conflicts: 0, skipped: 0 };
      this.state = { state, done: progress?.done ?? 0, total: progress?.total ?? 0, ...counts, lastError, finishedAt: state === 'running' ? null : new Date((this.options.clock ?? Date.now)()).toISOString() };
    };
    show('running', null);
    try {
      const result = await syncEdgeToRegion({
        database: await this.edgeDatabase(),
        dynamodb: this.dynamodb,
        tables: this.options.tables,
        pacer: pacedBy(this.window),
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
    } finally {
      // What it met before it stopped, too.
      await this.readConflicts().catch((error: unknown) => this.options.logger.warn({ err: error }, 'cannot read the sync conflicts'));
    }
  }

  status(): SyncStatus | null {
    return this.state;
  }

  /** The latest conflicts still open, newest first, and how many there are: which records, not what they hold. */
  conflicts(): { latest: ConflictStatus[]; count: number } {
    if (Date.now() - this.conflictsReadAt >= CONFLICTS_READ_EVERY_MS) {
      void this.readConflicts().catch((error: unknown) => this.options.logger.warn({ err: error }, 'cannot read the sync conflicts; the status shows the last ones read'));
    }
    const open = this.known.filter((conflict) => conflict.resolvedAt === undefined);
    const latest: ConflictStatus[] = open
      .slice(-KEPT_CONFLICTS)
      .reverse()
      .map((conflict) => ({ id: conflict.id, kind: conflict.kind, key: conflict.key, detectedAt: conflict.firstSeenAt }));
    return { latest, count: open.length };
  }

  /** A conflict in full, both records, resolved or not. */
  conflict(id: number): ConflictRecord | undefined {
    const found = this.known.find((conflict) => conflict.id === id);
    return (
      found && {
        id: found.id,
        kind: found.kind,
        key: found.key,
        detectedAt: found.firstSeenAt,
        target: found.target,
        reason: found.reason,
        region: found.region,
        edge: found.edge,
        lastSeenAt: found.lastSeenAt,
        resolvedAt: found.resolvedAt ?? null,
      }
    );
  }

  /** Reads every conflict kept again, for the status. */
  readConflicts(): Promise<void> {
    this.conflictsReadAt = Date.now();
    // After any read under way: the last to finish is the newest.
    const read = this.conflictReads.then(async () => {
      this.known = await listSyncConflicts(await this.edgeDatabase(), { includeResolved: true });
    });
    this.conflictReads = read.catch(() => {});
    return read;
  }

  async close(): Promise<void> {
    this.dynamodb.destroy();
    await this.conflictReads;
    const database = await this.database?.catch(() => undefined);
    if (database) await closeSiteDatabase(database);
  }

  private edgeDatabase(): Promise<SiteDatabase> {
    if (!this.database) {
      const opening = openSiteDatabase(this.options.database);
      this.database = opening;
      // Not opened (a server unreachable): opened again at the next use.
      opening.catch(() => {
        if (this.database === opening) this.database = undefined;
      });
    }
    return this.database;
  }

}
