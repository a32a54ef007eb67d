/**
 * Sync back to the region: what the fallback agents of an edge site did, from its database (an
 * SQLite file, or the PostgreSQL database its shim nodes share) into the workflow's DynamoDB tables,
 * before the shim replays the tasks that depend on it. What it reads and keeps there goes through
 * one persistence layer (sync-persistence.ts), the same code path for either engine.
 *
 * Every write is conditional. A record absent in the region is written; one the region already has
 * (or has further along) is left alone; one the region holds differently is a conflict, kept with
 * both versions in the edge database's conflict table and reported, never overwritten. Counters are
 * G-counters, merged per writer by taking the maximum, so edge sites and the region converge in any
 * order of syncs. Checkpointed state is fast-forwarded when the region did not move since the edge
 * last synced, merged when a merger for its key is given, and a conflict otherwise.
 *
 * A sync can stop anywhere (a crash, a new outage: `signal`) and be run again: what reached the
 * region is remembered by content, conditional writes make repeats harmless, and running it twice
 * changes nothing. Syncs of one edge database run one at a time, as several shim nodes of a site on
 * PostgreSQL start theirs together.
 */
import { createHash } from 'node:crypto';
import { IdempotencyRecordStatus } from '@aws-lambda-powertools/idempotency';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Logger } from 'pino';
import { isIntact, snapshotHash } from '../runtime/checkpoint.js';
import { holdfastLogger } from '../runtime/log.js';
import { DynamoDbCheckpoints } from '../runtime/store/dynamodb-checkpoints.js';
import { DynamoDbCounters } from '../runtime/store/dynamodb-counters.js';
import { DynamoDbIdempotencyRecords, idempotencyItemOf } from '../runtime/store/dynamodb-idempotency-records.js';
import { DynamoDbStepLog } from '../runtime/store/dynamodb-step-log.js';
import { type SiteDatabase, closeSiteDatabase, isPostgresDatabase, openSiteDatabase } from '../runtime/store/site-database.js';
import type { IdempotencyRow } from '../runtime/store/sqlite-idempotency.js';
import { type CheckpointStore, type MergeOutcome, type Snapshot, VersionConflictError } from '../runtime/store/types.js';
import { PostgresSyncPersistence } from './postgres-sync-persistence.js';
import { SqliteSyncPersistence } from './sqlite-sync-persistence.js';
import type { SagaLog, SyncConflict, SyncJournal, SyncKind, SyncPersistenceLayer } from './sync-persistence.js';

export type { SyncConflict, SyncKind } from './sync-persistence.js';

/** The region's tables of the workflow (the stack's outputs IdempotencyTableName, WorkflowTableName, StateTableName). */
export interface RegionTables {
  readonly idempotency: string;
  readonly workflow: string;
  readonly state: string;
}

/** Merges two concurrent versions of a checkpointed state (the region's, the edge's) into one. */
export type StateMerger = (region: unknown, edge: unknown) => unknown;

/**
 * The merger of a state kept as counts per writer (`{ [writer]: count }`, each writer adding only to
 * its own): each writer's larger count, as G-counters merge.
 */
export const mergeCountsPerWriter: StateMerger = (region, edge) => {
  const merged: Record<string, number> = { ...(region as Record<string, number>) };
  for (const [writer, count] of Object.entries(edge as Record<string, number>)) merged[writer] = Math.max(merged[writer] ?? 0, count);
  return Object.fromEntries(Object.entries(merged).sort(([a], [b]) => a.localeCompare(b)));
};

export interface SyncOptions {
  /**
   * The edge database: its location (an SQLite file, or a `postgres://` URL), opened and closed by
   * the sync; or one the caller keeps open (an SQLite connection, or a PostgreSQL pool, whose
   * database the sync brings to its schema first).
   */
  readonly database: string | SiteDatabase;
  /** A client of the region's DynamoDB; the caller keeps it. */
  readonly dynamodb: DynamoDBClient;
  readonly tables: RegionTables;
  /** Mergers of checkpointed state types, by key prefix (the longest prefix that matches wins). */
  readonly checkpointMergers?: Readonly<Record<string, StateMerger>>;
  /** Called after every record with the progress so far. */
  readonly onProgress?: (progress: SyncProgress) => void;
  /** Stops the sync between two records (it throws the signal's reason); run it again to resume. */
  readonly signal?: AbortSignal;
  /** Paces the writes to what the path to the region takes (the edge's congestion control); 16 at a time when absent. */
  readonly pacer?: WritePacer;
  readonly logger?: Logger;
}

/** Runs each of the sync's writes to the region once the path has room for it. */
export interface WritePacer {
  run<T>(write: () => Promise<T>): Promise<T>;
}

/** A pacer that lets `limit` writes run at once. */
export function concurrencyLimit(limit: number): WritePacer {
  let running = 0;
  const waiting: Array<() => void> = [];
  return {
    async run(write) {
      if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
      else running += 1;
      try {
        return await write();
      } finally {
        // The slot passes straight to the next waiter, so that none is overtaken.
        const next = waiting.shift();
        if (next) next();
        else running -= 1;
      }
    },
  };
}

const DEFAULT_CONCURRENCY = 16;
// Lanes worked on at once: more than any pacer lets write, so that the pacer is the limit.
const LANES_AT_ONCE = 256;

/** Which of the region's tables a kind of record goes to. */
const TABLE_OF: Readonly<Record<SyncKind, keyof RegionTables>> = {
  saga: 'workflow',
  step: 'workflow',
  idempotency: 'idempotency',
  checkpoint: 'state',
  counter: 'state',
  'counter-operation': 'state',
};

/** A write of the sync that the region refused or failed, with the table and record it concerned. */
export class SyncWriteError extends Error {
  override readonly name = 'SyncWriteError';
  constructor(
    readonly kind: SyncKind,
    readonly key: string,
    readonly table: string,
    cause: unknown,
  ) {
    const role = TABLE_OF[kind];
    const reason = (cause as Error | undefined)?.message ?? String(cause);
    super(
      (cause as Error | undefined)?.name === 'ResourceNotFoundException'
        ? `the region has no table ${table} (the workflow's ${role} table): give the deployed stack's table names with --region-tables`
        : `syncing ${kind} ${key} into ${table} (the workflow's ${role} table) failed: ${reason}`,
      { cause },
    );
  }
}

export const SYNC_KINDS: readonly SyncKind[] = ['saga', 'step', 'idempotency', 'checkpoint', 'counter', 'counter-operation'];

export interface SyncCounts {
  /** Records written into the region (absent there, behind the edge's, or merged). */
  written: number;
  /** Records the region already had, as they are or further along (nothing written). */
  identical: number;
  /** Records the region holds differently: recorded, not written. */
  conflicts: number;
  /** Records not to be synced: runs still in progress or expired at the edge, steps of a conflicting saga. */
  skipped: number;
}

export interface SyncProgress {
  readonly kind: SyncKind;
  /** Records looked at so far, of `total` in the edge database. */
  readonly done: number;
  readonly total: number;
  readonly counts: Readonly<SyncCounts>;
}

export interface SyncResult {
  readonly counts: SyncCounts;
  readonly byKind: Readonly<Record<SyncKind, SyncCounts>>;
  /** The conflicts this run met; listSyncConflicts gives every open one. */
  readonly conflicts: readonly SyncConflict[];
}

const fingerprint = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex');
const emptyCounts = (): SyncCounts => ({ written: 0, identical: 0, conflicts: 0, skipped: 0 });

/** The conflicts kept in an edge database, oldest first; resolved ones only when asked for. */
export async function listSyncConflicts(database: string | SiteDatabase, options: { includeResolved?: boolean } = {}): Promise<SyncConflict[]> {
  return withSyncPersistence(database, (layer) => layer.conflicts(options.includeResolved ?? false));
}

/** Runs `work` on the edge database's persistence layer; a database given by its location is opened for it alone. */
async function withSyncPersistence<T>(database: string | SiteDatabase, work: (layer: SyncPersistenceLayer) => Promise<T>): Promise<T> {
  const db = typeof database === 'string' ? await openSiteDatabase(database) : database;
  try {
    return await work(isPostgresDatabase(db) ? await PostgresSyncPersistence.on(db) : new SqliteSyncPersistence(db));
  } finally {
    if (typeof database === 'string') await closeSiteDatabase(db);
  }
}

/** The region a sync writes to, as the journal tells targets apart: its endpoint, region and tables. */
async function targetOf(dynamodb: DynamoDBClient, tables: RegionTables): Promise<string> {
  const endpoint = dynamodb.config.endpoint ? await dynamodb.config.endpoint() : undefined;
  const where = endpoint ? `${endpoint.protocol}//${endpoint.hostname}${endpoint.port ? `:${endpoint.port}` : ''}${endpoint.path}` : await dynamodb.config.region();
  return `${where} ${tables.workflow} ${tables.idempotency} ${tables.state}`;
}

/** One record to bring to the region: how to tell it is done, and how to merge it. */
interface SyncItem {
  readonly kind: SyncKind;
  readonly key: string;
  /** Fingerprint of the content synced; absent for a record skipped without a region call. */
  readonly content?: string;
  merge(): Promise<MergeOutcome<unknown> & { reason?: string; edge?: unknown }>;
}

/** Every record of an edge database to bring to the region, and the journal of what reached it already. */
async function planSync(layer: SyncPersistenceLayer, options: Pick<SyncOptions, 'dynamodb' | 'tables' | 'checkpointMergers'>) {
  const documents = DynamoDBDocumentClient.from(options.dynamodb, { marshallOptions: { removeUndefinedValues: true } });
  const region = {
    stepLog: new DynamoDbStepLog(documents, options.tables.workflow),
    idempotency: new DynamoDbIdempotencyRecords(documents, options.tables.idempotency),
    checkpoints: new DynamoDbCheckpoints(documents, options.tables.state),
    counters: new DynamoDbCounters(documents, options.tables.state),
  };
  const edge = await layer.readEdge();
  const journal = await layer.journal(await targetOf(options.dynamodb, options.tables));
  const { writerCounts } = edge;
  const items = [
    ...stepLogItems(edge.sagas, region.stepLog),
    ...idempotencyItems(edge.idempotency, region.idempotency),
    ...(await checkpointItems(edge.checkpointKeys, { region: region.checkpoints, edge: layer.checkpoints }, journal, options.checkpointMergers ?? {})),
    ...writerCounts.map((count): SyncItem => ({ kind: 'counter', key: `${count.key}@${count.writer}`, content: String(count.count), merge: async () => ({ outcome: await region.counters.mergeWriterCount(count) }) })),
    ...edge.counterOperations.map(
      (operation): SyncItem => ({
        kind: 'counter-operation',
        key: operation.operationId,
        content: fingerprint(operation),
        merge: async () => ({ ...(await region.counters.recordOperation(operation)), reason: 'applied by two writers: its increments were counted twice', edge: operation }),
      }),
    ),
  ];
  return { items, journal, writerCounts };
}

/**
 * How many records of an edge database have yet to reach the region's tables: neither synced as
 * they are now, nor a conflict on record (a conflict waits for a person, not for the sync). Reads
 * the edge database only. The shim replays the tasks of the workflow only once this is 0.
 */
export async function pendingSyncRecords(options: Pick<SyncOptions, 'database' | 'dynamodb' | 'tables'>): Promise<number> {
  return withSyncPersistence(options.database, async (layer) => {
    const { items, journal } = await planSync(layer, options);
    return items.filter((item) => item.content !== undefined && !journal.isDone(item.kind, item.key, item.content) && !journal.inConflict(item.kind, item.key)).length;
  });
}

/**
 * Brings an edge database into the region's tables (see the module comment). Returns what it did;
 * `onProgress` sees it record by record. The shim runs it after stopping the fallback agents and
 * before replaying their queues; it throws when the region fails mid-way (run it again). Once
 * complete, the site's counters are settled: its outage exposure counts from zero again.
 */
export async function syncEdgeToRegion(options: SyncOptions): Promise<SyncResult> {
  const logger = options.logger ?? holdfastLogger('edge-sync', process.env.LOG_LEVEL ?? 'info');
  return withSyncPersistence(options.database, (layer) => layer.oneAtATime(async () => {
    const { items, journal, writerCounts } = await planSync(layer, options);
    const counts = emptyCounts();
    const byKind = Object.fromEntries(SYNC_KINDS.map((kind) => [kind, emptyCounts()])) as Record<SyncKind, SyncCounts>;
    // Conflicts come back in the records' order, whatever order their writes finished in.
    const conflicts: Array<{ position: number; conflict: SyncConflict }> = [];
    const position = new Map(items.map((item, index) => [item, index]));
    const pacer = options.pacer ?? concurrencyLimit(DEFAULT_CONCURRENCY);
    const lanes = inLanes(items);
    let done = 0;
    let failure: { error: unknown } | undefined;
    logger.info({ records: items.length }, 'sync to the region started');
    /** One lane's records in order: a saga's steps only after the saga, and skipped when it conflicts. */
    const runLane = async (lane: readonly SyncItem[]) => {
      let sagaConflicts = false;
      for (const item of lane) {
        if (failure) return;
        if (options.signal?.aborted) {
          failure = { error: options.signal.reason };
          return;
        }
        let outcome: Awaited<ReturnType<typeof syncOne>>;
        try {
          outcome = sagaConflicts && item.kind === 'step' ? { counted: 'skipped' } : await syncOne(item, journal, (merge) => pacer.run(merge));
        } catch (error) {
          failure ??= { error: new SyncWriteError(item.kind, item.key, options.tables[TABLE_OF[item.kind]], error) };
          return;
        }
        counts[outcome.counted]++;
        byKind[item.kind][outcome.counted]++;
        if (outcome.conflict) {
          if (item.kind === 'saga') sagaConflicts = true;
          conflicts.push({ position: position.get(item)!, conflict: outcome.conflict });
          logger.warn({ kind: item.kind, key: item.key, reason: outcome.conflict.reason }, 'sync conflict: the region holds this record differently; left as it is');
        }
        done += 1;
        options.onProgress?.({ kind: item.kind, done, total: items.length, counts: { ...counts } });
      }
    };
    let next = 0;
    const worker = async () => {
      while (!failure && next < lanes.length) await runLane(lanes[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(LANES_AT_ONCE, lanes.length) }, worker));
    // Stopped while its last writes were on their way: stopped all the same, the site's counts not settled.
    if (!failure && options.signal?.aborted) failure = { error: options.signal.reason };
    if (failure) throw failure.error;
    // Every count of this site is in the region now: its outage exposure starts from zero again.
    await layer.settle(writerCounts);
    logger.info({ ...counts, byKind }, 'sync to the region done');
    return { counts, byKind, conflicts: conflicts.sort((a, b) => a.position - b.position).map(({ conflict }) => conflict) };
  }));
}

/** Records that must reach the region in order share a lane: a saga and its steps. Every other record is a lane of its own. */
function inLanes(items: readonly SyncItem[]): SyncItem[][] {
  const lanes: SyncItem[][] = [];
  for (const item of items) {
    if (item.kind === 'step') lanes.at(-1)!.push(item);
    else lanes.push([item]);
  }
  return lanes;
}

async function syncOne(
  item: SyncItem,
  journal: SyncJournal,
  paced: (merge: SyncItem['merge']) => ReturnType<SyncItem['merge']>,
): Promise<{ counted: keyof SyncCounts; conflict?: SyncConflict }> {
  if (item.content === undefined) return { counted: 'skipped' };
  if (journal.isDone(item.kind, item.key, item.content)) return { counted: 'identical' };
  const merged = await paced(() => item.merge());
  if (merged.outcome === 'conflict') {
    return { counted: 'conflicts', conflict: await journal.conflict(item.kind, item.key, merged.reason ?? 'the region holds another version', merged.edge, merged.region) };
  }
  await journal.done(item.kind, item.key, item.content);
  return { counted: merged.outcome };
}

function stepLogItems(sagas: readonly SagaLog[], region: DynamoDbStepLog): SyncItem[] {
  const items: SyncItem[] = [];
  for (const { saga, steps } of sagas) {
    items.push({
      kind: 'saga',
      key: saga.workflowId,
      content: fingerprint(saga),
      merge: async () => ({ ...(await region.mergeSaga(saga)), reason: 'the region has this saga with another input or on another path', edge: saga }),
    });
    for (const step of steps) {
      items.push({
        kind: 'step',
        key: `${saga.workflowId}/${step.index}`,
        content: fingerprint(step),
        merge: async () => ({ ...(await region.mergeStep(saga.workflowId, step)), reason: 'the region has this step with another outcome or on another path', edge: step }),
      });
    }
  }
  return items;
}

/** Completed, unexpired records only: a run still in progress at the edge is the region's to run again. */
function idempotencyItems(rows: readonly IdempotencyRow[], region: DynamoDbIdempotencyRecords): SyncItem[] {
  const nowSeconds = Date.now() / 1000;
  return rows.map((row): SyncItem => {
    const edge = idempotencyItemOf(row);
    const current = edge.status === IdempotencyRecordStatus.COMPLETED && (edge.expiration === undefined || edge.expiration >= nowSeconds);
    return {
      kind: 'idempotency',
      key: edge.id,
      ...(current && { content: fingerprint({ status: edge.status, data: edge.data, validation: edge.validation }) }),
      merge: async () => ({ ...(await region.merge(edge)), reason: 'the region has another result for this task, or is running it', edge }),
    };
  });
}

async function checkpointItems(
  keys: readonly string[],
  stores: { readonly region: CheckpointStore; readonly edge: CheckpointStore },
  journal: SyncJournal,
  mergers: Readonly<Record<string, StateMerger>>,
): Promise<SyncItem[]> {
  const items: SyncItem[] = [];
  for (const key of keys) {
    const edge = (await stores.edge.list(key)).find(isIntact);
    items.push({
      kind: 'checkpoint',
      key,
      ...(edge && { content: edge.sha256 }),
      merge: async () => mergeCheckpoint(key, edge!, stores, journal, mergers),
    });
  }
  return items;
}

function mergerFor(key: string, mergers: Readonly<Record<string, StateMerger>>): StateMerger | undefined {
  const prefix = Object.keys(mergers)
    .filter((candidate) => key.startsWith(candidate))
    .sort((a, b) => b.length - a.length)[0];
  return prefix === undefined ? undefined : mergers[prefix];
}

/**
 * One key's checkpointed state: the edge's newest intact snapshot becomes the region's next version
 * when the region has none, has not moved since the edge's last sync (fast-forward), or a merger
 * combines the two; the same content is identical; anything else a conflict.
 */
async function mergeCheckpoint(
  key: string,
  edge: Snapshot,
  stores: { readonly region: CheckpointStore; readonly edge: CheckpointStore },
  journal: SyncJournal,
  mergers: Readonly<Record<string, StateMerger>>,
): Promise<MergeOutcome<unknown> & { reason?: string; edge?: unknown }> {
  const { region } = stores;
  for (let attempt = 1; ; attempt++) {
    const snapshots = await region.list(key);
    const newest = snapshots[0];
    const regionState = snapshots.find(isIntact);
    if (regionState?.sha256 === edge.sha256) {
      await journal.setCheckpointBase(key, regionState.version);
      return { outcome: 'identical' };
    }
    let state = edge.state;
    const merging = newest !== undefined && journal.checkpointBase(key) !== newest.version;
    if (merging) {
      const merger = mergerFor(key, mergers);
      if (!merger || !regionState) {
        return {
          outcome: 'conflict',
          region: newest,
          edge,
          reason: `the region's state moved on (version ${newest!.version}) while the edge wrote its own; no merger for this state`,
        };
      }
      state = JSON.stringify(merger(JSON.parse(regionState.state), JSON.parse(edge.state)));
    }
    const version = (newest?.version ?? 0) + 1;
    const merged: Snapshot = { version, state, sha256: snapshotHash(state), createdAt: new Date().toISOString(), writer: edge.writer, baseVersion: newest?.version ?? 0 };
    try {
      await region.put(key, merged);
    } catch (error) {
      if (!(error instanceof VersionConflictError) || attempt === 3) throw error;
      continue;
    }
    // The edge goes on from what the region now holds, so that its next sync can fast-forward.
    if (merging) await stores.edge.put(key, { ...merged, version: edge.version + 1, baseVersion: edge.version });
    await journal.setCheckpointBase(key, version);
    return { outcome: 'written' };
  }
}

