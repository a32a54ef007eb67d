/**
 * Storage seams of the runtime. Each store is a small interface with a DynamoDB implementation for
 * the cloud; the edge runs the same runtime over another backend (SQLite) behind the same interfaces.
 * Every write is conditional, so concurrent or repeated writers cannot overwrite each other.
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
}

export interface StepUpdate {
  readonly status: StepStatus;
  readonly result?: unknown;
  readonly error?: string;
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
