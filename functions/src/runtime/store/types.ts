import type { BasePersistenceLayer } from '@aws-lambda-powertools/idempotency/persistence';
import type { SiteMark } from '../site.js';

/**
 * Storage seams of the runtime. Each store is a small interface with three implementations: DynamoDB
 * in the region, SQLite at a single-server edge, PostgreSQL at an edge site of several nodes. Every
 * write is conditional, so concurrent or repeated writers cannot overwrite each other; one contract
 * test suite runs against all three.
 */

export type SagaStatus = 'running' | 'completed' | 'escalated' | 'compensating' | 'compensated';
export type StepStatus = 'started' | 'completed' | 'failed' | 'compensating' | 'compensated';

export interface SagaRecord {
  readonly workflowId: string;
  readonly workflow: string;
  readonly status: SagaStatus;
  readonly input: unknown;
}

export interface StepRecord {
  readonly step: string;
  readonly index: number;
  readonly status: StepStatus;
  /** Times the action was started (more than one after a crash or redelivery). */
  readonly attempts: number;
  /** Times the compensation was started. */
  readonly compensationAttempts: number;
  readonly result?: unknown;
  readonly error?: string;
  /** Site that last started the step's action (or whose outcome was carried in), and when. */
  readonly ranAt?: SiteMark;
  /** Site that last started its compensation, and when. */
  readonly compensatedAt?: SiteMark;
}

export interface StepUpdate {
  readonly status: StepStatus;
  readonly result?: unknown;
  readonly error?: string;
  readonly ranAt?: SiteMark;
  readonly compensatedAt?: SiteMark;
}

/** The saga's step log: one saga record and one record per step, ordered by step index. */
export interface StepLogStore {
  load(workflowId: string): Promise<{ saga: SagaRecord | undefined; steps: StepRecord[] }>;
  /** Creates the saga record unless it exists; returns the stored one either way. */
  startSaga(workflowId: string, workflow: string, input: unknown): Promise<SagaRecord>;
  /** Moves the saga to `next` if its status is one of `from`; false when it was not. */
  setSagaStatus(workflowId: string, from: readonly SagaStatus[], next: SagaStatus): Promise<boolean>;
  /**
   * Moves a step to `update.status` if it is in one of the `from` states (`absent`: no record yet);
   * returns the new record, or undefined when the step was in another state.
   */
  transitionStep(
    workflowId: string,
    step: { name: string; index: number },
    from: readonly (StepStatus | 'absent')[],
    update: StepUpdate,
  ): Promise<StepRecord | undefined>;
}

export interface Snapshot {
  readonly version: number;
  /** The state as JSON text, exactly as hashed. */
  readonly state: string;
  /** Hex SHA-256 of `state`. */
  readonly sha256: string;
  readonly createdAt: string;
  /** Site that wrote this version. */
  readonly writer: string;
  /** Version the writer had read and derived this one from (0: none). */
  readonly baseVersion: number;
}

/** Versioned snapshots of one agent's state per key. */
export interface CheckpointStore {
  /** Writes a new version; throws VersionConflictError if that version exists already. */
  put(key: string, snapshot: Snapshot): Promise<void>;
  /** All versions, newest first. */
  list(key: string): Promise<Snapshot[]>;
}

export class VersionConflictError extends Error {
  override readonly name = 'VersionConflictError';
}

export interface CounterIncrement {
  readonly key: string;
  /** A positive safe integer. */
  readonly delta: number;
  /** Refuses the whole operation when the writer's unsettled count of this key would exceed it. */
  readonly limit?: number;
}

export type IncrementOutcome = 'applied' | 'already-applied' | 'over-limit';

/**
 * Grow-only counters with one count per writer (a G-counter CRDT): a writer only ever adds to its
 * own count, a key's value is the sum over writers, and merging two copies takes each writer's
 * maximum, so any number of sites converge whatever the order in which they sync.
 */
export interface CounterStore {
  /**
   * Adds every increment to `writer`'s counts, all or none, once per operation id: a repeated
   * operation changes nothing (`already-applied`), one that would pass a limit changes nothing
   * (`over-limit`). A writer's unsettled count is what it added since it last settled (the edge
   * settles when its counts reached the region; the region never does).
   */
  increment(operationId: string, writer: string, increments: readonly CounterIncrement[]): Promise<IncrementOutcome>;
  /** The key's count per writer (absent writers have 0). */
  read(key: string): Promise<Record<string, number>>;
}

/** One writer's count of one counter, as the sync engine merges it. */
export interface WriterCount {
  readonly key: string;
  readonly writer: string;
  readonly count: number;
}

/** A counter operation as recorded: its id and what it added. */
export interface CounterOperation {
  readonly operationId: string;
  readonly writer: string;
  readonly increments: readonly { readonly key: string; readonly delta: number }[];
  readonly at: string;
}

/** Sum over writers: the value of a counter. */
export function counterValue(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((sum, count) => sum + count, 0);
}

export type Side = 'debit' | 'credit';

export interface LedgerEntry {
  readonly postingId: string;
  readonly leg: number;
  readonly account: string;
  readonly side: Side;
  readonly amountMinor: number;
  readonly currency: string;
}

export interface Posting {
  readonly id: string;
  readonly memo: string;
  readonly entries: readonly LedgerEntry[];
}

/** Double-entry ledger storage: a posting and its entries are written together or not at all. */
export interface LedgerStore {
  /**
   * Writes the posting atomically; `already-posted` when a posting with this id exists (a repeat).
   * Throws PermanentError when an account it touches is closed.
   */
  writePosting(posting: Posting): Promise<'written' | 'already-posted'>;
  getPosting(id: string): Promise<Posting | undefined>;
  closeAccount(account: string): Promise<void>;
  /** Every entry of every posting. */
  entries(): AsyncIterable<LedgerEntry>;
}

/**
 * Everything an agent keeps, on one backend: DynamoDB tables in the region, one SQLite database at
 * the edge (or one PostgreSQL database for a site of several nodes). Chosen by configuration
 * (runtime/dependencies.ts), handed to the agents as a value.
 */
export interface Stores {
  readonly stepLog: StepLogStore;
  readonly checkpoints: CheckpointStore;
  readonly counters: CounterStore;
  /** The region's book of record; absent for fallback agents at an edge site, where the ledger never runs. */
  readonly ledger: LedgerStore | undefined;
  /** A new Powertools persistence layer for one agent's idempotency records (a layer serves one key prefix). */
  idempotencyLayer(): BasePersistenceLayer;
}

/**
 * What merging one record of an edge site into the region did: written (absent, or the edge's copy
 * is further along), identical (nothing to do), or a conflict with the region's own copy, which is
 * left as it is.
 */
export type MergeOutcome<T> = { readonly outcome: 'written' | 'identical' } | { readonly outcome: 'conflict'; readonly region: T };
