import type { Health } from '../backend.js';
import type { EngineTime } from './engine-clock.js';
import type { ReceiptHandles } from './receipt-handles.js';
import type { RetentionCutoff } from './messages.js';
import type { DeduplicationPort, MessagePort, MoveTaskPort, QueuePort, ReceiveAttemptPort } from './storage/ports.js';
import type { Pending, Step } from './storage/step.js';
import type { StorageStatus } from './storage-guard.js';

/** The storage an operation works with, inside one transaction of the engine. */
export interface EngineStorage {
  readonly queues: QueuePort;
  readonly messages: MessagePort;
  readonly deduplication: DeduplicationPort;
  readonly receiveAttempts: ReceiveAttemptPort;
  readonly moveTasks: MoveTaskPort;
  /** Makes and checks receipt handles under the database's key. */
  readonly receipts: ReceiptHandles;
}

/** Messages of a queue became available, as a transaction announces it to the long polls of every node. */
export interface Availability {
  readonly queueId: number;
  /** How many long polls to wake (Infinity: all of them). */
  readonly count: number;
  /** When the messages become available, if later than now (a delay, a visibility timeout). */
  readonly at?: number;
}

export interface EngineTransaction<S extends EngineStorage, T> {
  /** The work: run once, or again from its start if the engine retries the transaction. */
  run(storage: S): Step<T>;
  /** What the work made available, asked once it has run, before COMMIT. */
  announcements(): readonly Availability[];
  /** The work needs room of its own (see `TransactOptions.needsRoom`). */
  readonly needsRoom: boolean;
}

export interface StoreHealth extends Health {
  /** The state of the disk and the store (SQLite); null for a database server's. */
  readonly storage: StorageStatus | null;
}

/**
 * A storage engine beneath the SQS semantics (`SqsService`): it runs their generators (see
 * storage/step.ts) in its transactions, and answers the requests that are the store's own (health,
 * admission of what adds data, the meaning of its errors).
 */
export interface SqsEngine<S extends EngineStorage = EngineStorage> {
  /** The engine's time, which every decision of the semantics reads. */
  readonly time: EngineTime;
  /** When messages expire: as in SQS, or never (a store of backlog owed elsewhere). */
  readonly retentionCutoff: RetentionCutoff;
  /** Whether other nodes may write the same database (their tasks, their messages) while this one runs. */
  readonly shared: boolean;
  /** Runs work in one transaction; resolves with its value once it is committed. */
  transact<T>(transaction: EngineTransaction<S, T>): Promise<T>;
  /** Runs work that only reads, outside any transaction (a receive's first look). */
  read<T>(work: (storage: S) => Step<T>): Pending<T>;
  /** Refuses, before it runs, an operation that would add `bytes` to a store that cannot take them. */
  admit(bytes: number): void;
  /** What an error met running an operation is to its caller (a store found corrupt, a database gone). */
  judge(error: unknown): unknown;
  /** Whether the store can take messages, and why not. */
  health(): StoreHealth;
  /** Told once, if the store is found corrupt: background work that rewrites it stops. */
  onCorruption?(listener: () => void): void;
  /** Told when another node sharing the database made messages available (a database shared by several nodes). */
  onAvailable(listener: (availability: Availability) => void): void;
  /** Compacts the store inside a sweep's slice, if the engine does that itself; whether more is left. */
  readonly compact?: (more: boolean) => boolean;
  /** Resolves once the work queued is committed; nothing is taken after. */
  drain(): Promise<void>;
}
