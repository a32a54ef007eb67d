/**
 * What the sync (sync.ts) reads of an edge database and keeps in it, whichever engine holds it:
 * one abstract layer, as Powertools' idempotency persistence layer is built, whose backends
 * (sqlite-sync-persistence.ts, postgres-sync-persistence.ts) only run their engine's SQL. Rows are
 * made into records, and the journal of one target kept, here once for both.
 */
import type { IdempotencyRow } from '../runtime/store/sqlite-idempotency.js';
import { type SagaRow, type StepRow, toSaga, toStep } from '../runtime/store/sql-rows.js';
import type { CheckpointStore, CounterOperation, SagaRecord, StepRecord, WriterCount } from '../runtime/store/types.js';

export type SyncKind = 'saga' | 'step' | 'idempotency' | 'checkpoint' | 'counter' | 'counter-operation';

/** A record the edge and the region hold differently, with both versions. */
export interface SyncConflict {
  readonly id: number;
  /** The region it was met in: endpoint (or AWS region) and table names. */
  readonly target: string;
  readonly kind: SyncKind;
  /** Which record: `<workflow id>` for a saga, `<workflow id>/<step index>` for a step, the key otherwise. */
  readonly key: string;
  readonly reason: string;
  readonly edge: unknown;
  readonly region: unknown;
  readonly firstSeenAt: string;
  readonly lastSeenAt: string;
  /** When a later sync found the record no longer in conflict (resolved in the region). */
  readonly resolvedAt?: string;
}

/** A saga as the sync reads it: its record and its steps. */
export interface SagaLog {
  readonly saga: SagaRecord;
  readonly steps: readonly StepRecord[];
}

/** What the edge's agents recorded that the sync brings to the region. */
export interface EdgeRecords {
  /** In the order the sagas were created. */
  readonly sagas: readonly SagaLog[];
  readonly idempotency: readonly IdempotencyRow[];
  /** Every key that has snapshots; `checkpoints` lists them. */
  readonly checkpointKeys: readonly string[];
  /** Every writer's count of every counter. */
  readonly writerCounts: readonly WriterCount[];
  /** Every counter operation applied at the edge. */
  readonly counterOperations: readonly CounterOperation[];
}

/** What the sync keeps about its progress towards one target, read once and written through. */
export interface SyncJournal {
  /** Whether this record reached the region with this content already. */
  isDone(kind: SyncKind, key: string, content: string): boolean;
  /** Records that it did; an open conflict on it is resolved. */
  done(kind: SyncKind, key: string, content: string): Promise<void>;
  /** Whether this record is an open conflict: the region holds it differently, and a person is to look. */
  inConflict(kind: SyncKind, key: string): boolean;
  conflict(kind: SyncKind, key: string, reason: string, edge: unknown, region: unknown): Promise<SyncConflict>;
  /** The region version whose content the edge's latest snapshot of this key had at the last sync. */
  checkpointBase(key: string): number | undefined;
  setCheckpointBase(key: string, regionVersion: number): Promise<void>;
}

/** The rows behind EdgeRecords, as both engines keep them. */
export interface EdgeRows {
  readonly sagas: readonly SagaRow[];
  /** Ordered by workflow id, then step index. */
  readonly steps: readonly (StepRow & { readonly workflow_id: string })[];
  readonly idempotency: readonly IdempotencyRow[];
  readonly checkpointKeys: readonly string[];
  readonly writerCounts: readonly WriterCount[];
  readonly counterOperations: readonly { operation_id: string; writer: string; increments: string; at: string }[];
}

export interface JournalRows {
  readonly done: readonly { kind: string; record_key: string; fingerprint: string }[];
  /** Records with an open conflict. */
  readonly conflicts: readonly { kind: string; record_key: string }[];
  readonly checkpointBases: readonly { key: string; region_version: number }[];
}

export interface ConflictRow {
  id: number;
  target: string;
  kind: string;
  record_key: string;
  reason: string;
  edge: string;
  region: string;
  first_seen_at: string;
  last_seen_at: string;
  resolved_at: string | null;
}

/** A conflict met now: inserted, or, met before with the same two versions, seen again (and open again). */
export type ConflictSighting = Pick<ConflictRow, 'target' | 'kind' | 'record_key' | 'reason' | 'edge' | 'region'> & { readonly at: string };

const toConflict = (row: ConflictRow): SyncConflict => ({
  id: row.id,
  target: row.target,
  kind: row.kind as SyncKind,
  key: row.record_key,
  reason: row.reason,
  edge: JSON.parse(row.edge),
  region: JSON.parse(row.region),
  firstSeenAt: row.first_seen_at,
  lastSeenAt: row.last_seen_at,
  ...(row.resolved_at !== null && { resolvedAt: row.resolved_at }),
});

const recordId = (kind: string, key: string) => `${kind}\n${key}`;

export abstract class SyncPersistenceLayer {
  /** The edge's checkpoints: a state merged with the region's is carried back into them. */
  abstract readonly checkpoints: CheckpointStore;

  /** Everything the edge's agents recorded, as one consistent read. */
  async readEdge(): Promise<EdgeRecords> {
    const rows = await this.readEdgeRows();
    const steps = new Map<string, StepRow[]>();
    for (const step of rows.steps) {
      const ofSaga = steps.get(step.workflow_id);
      if (ofSaga) ofSaga.push(step);
      else steps.set(step.workflow_id, [step]);
    }
    return {
      sagas: rows.sagas.map((saga) => ({ saga: toSaga(saga), steps: (steps.get(saga.workflow_id) ?? []).map(toStep) })),
      idempotency: rows.idempotency,
      checkpointKeys: rows.checkpointKeys,
      writerCounts: rows.writerCounts,
      counterOperations: rows.counterOperations.map((row) => ({ operationId: row.operation_id, writer: row.writer, increments: JSON.parse(row.increments), at: row.at })),
    };
  }

  /** The journal of one target (the region's endpoint and tables). */
  async journal(target: string): Promise<SyncJournal> {
    const rows = await this.readJournal(target);
    const done = new Map(rows.done.map((row) => [recordId(row.kind, row.record_key), row.fingerprint]));
    const inConflict = new Set(rows.conflicts.map((row) => recordId(row.kind, row.record_key)));
    const bases = new Map(rows.checkpointBases.map((row) => [row.key, row.region_version]));
    return {
      isDone: (kind, key, content) => done.get(recordId(kind, key)) === content,
      done: async (kind, key, content) => {
        await this.writeDone(target, kind, key, content, new Date().toISOString());
        done.set(recordId(kind, key), content);
        inConflict.delete(recordId(kind, key));
      },
      inConflict: (kind, key) => inConflict.has(recordId(kind, key)),
      conflict: async (kind, key, reason, edge, region) => {
        const row = await this.writeConflict({ target, kind, record_key: key, reason, edge: JSON.stringify(edge), region: JSON.stringify(region ?? null), at: new Date().toISOString() });
        inConflict.add(recordId(kind, key));
        return toConflict(row);
      },
      checkpointBase: (key) => bases.get(key),
      setCheckpointBase: async (key, regionVersion) => {
        await this.writeCheckpointBase(target, key, regionVersion);
        bases.set(key, regionVersion);
      },
    };
  }

  /** The conflicts kept, oldest first; resolved ones only when asked for. */
  async conflicts(includeResolved: boolean): Promise<SyncConflict[]> {
    return (await this.readConflicts(includeResolved)).map(toConflict);
  }

  /** Marks these counts of the site's writers as having reached the region: limits count only what is added after. */
  abstract settle(counts: readonly WriterCount[]): Promise<void>;

  /** Runs a whole sync, one at a time per edge database, whichever process runs it. */
  abstract oneAtATime<T>(sync: () => Promise<T>): Promise<T>;

  protected abstract readEdgeRows(): Promise<EdgeRows>;
  protected abstract readJournal(target: string): Promise<JournalRows>;
  /** In one transaction: the record's fingerprint, and its open conflicts resolved at `at`. */
  protected abstract writeDone(target: string, kind: SyncKind, key: string, fingerprint: string, at: string): Promise<void>;
  protected abstract writeConflict(sighting: ConflictSighting): Promise<ConflictRow>;
  protected abstract writeCheckpointBase(target: string, key: string, regionVersion: number): Promise<void>;
  protected abstract readConflicts(includeResolved: boolean): Promise<ConflictRow[]>;
}
