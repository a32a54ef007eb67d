import type { Logger } from 'pino';
import { CommitFailed, CommitGroup } from './commit-group.js';
import type { SqsContext } from './context.js';
import type { Db } from './database.js';
import { DeduplicationStore } from './deduplication.js';
import { EngineClock, type EngineTime, givenClock } from './engine-clock.js';
import type { EngineStorage, EngineTransaction, SqsEngine, StoreHealth } from './engine.js';
import { StoreIntegrity } from './integrity.js';
import { MessageStore, type RetentionCutoff, retentionCutoff } from './messages.js';
import { MoveTaskStore } from './move-tasks.js';
import { QueueRegistry } from './queues.js';
import { ReceiptHandles } from './receipt-handles.js';
import { ReceiveAttemptStore } from './receive-attempts.js';
import type { MessageCounts } from './storage/records.js';
import { type Step, runNow } from './storage/step.js';
import { type StorageGuard, isOutOfSpace } from './storage-guard.js';

// Vacuuming hands free pages back to the file system, this many per slice (4 KiB each), once at
// least this many are free.
const VACUUM_PAGES = 128;
const VACUUM_THRESHOLD_PAGES = 256;

/** SQLite's storage: its statement classes, which answer every call at once, and the database for what only SQLite has. */
export interface SqliteStorage extends EngineStorage {
  readonly db: Db;
  readonly queues: QueueRegistry;
  readonly messages: MessageStore;
}

/** The context of an operation run on SQLite: the ports, and the database (the replay's leases). */
export type SqliteContext = SqsContext & SqliteStorage;

export interface SqliteEngineOptions {
  readonly db: Db;
  /** Refuses what would add data while the disk or the store is full. */
  readonly storage: StorageGuard;
  readonly region: string;
  readonly accountId: string;
  readonly logger: Logger;
  /**
   * Milliseconds since the epoch; tests pass a clock they can move, and it rules as given. By
   * default the engine's own clock (`EngineClock`), which follows `wallClock`.
   */
  readonly clock?: () => number;
  /** The wall clock the engine's clock follows (Date.now by default); tests pass one that jumps. */
  readonly wallClock?: () => number;
  /**
   * Whether messages expire after their queue's MessageRetentionPeriod, as in SQS (true by
   * default); false keeps every message until it is deleted, for a store whose messages are data
   * owed elsewhere.
   */
  readonly expireMessages?: boolean;
}

/**
 * The embedded engine: one SQLite database, written by this process alone. Operations that arrive
 * together share one transaction (the group commit), each in a savepoint of its own, and run to
 * their end synchronously: SQLite answers every storage call at once.
 */
export class SqliteEngine implements SqsEngine<SqliteStorage> {
  readonly storage: SqliteStorage;
  // One process writes an SQLite database (its lock file sees to it).
  readonly shared = false;
  readonly time: EngineTime;
  readonly retentionCutoff: RetentionCutoff;
  private readonly commits: CommitGroup;
  private readonly integrity: StoreIntegrity;
  private readonly corruptionListeners: Array<() => void> = [];

  constructor(private readonly options: SqliteEngineOptions) {
    const { db, logger } = options;
    this.time = options.clock ? givenClock(options.clock) : new EngineClock(db, logger, { wall: options.wallClock });
    this.retentionCutoff = retentionCutoff(options.expireMessages ?? true, this.time);
    const queues = new QueueRegistry(db, options.region, options.accountId);
    this.storage = {
      db,
      queues,
      messages: new MessageStore(db, this.retentionCutoff),
      deduplication: new DeduplicationStore(db),
      receiveAttempts: new ReceiveAttemptStore(db),
      moveTasks: new MoveTaskStore(db),
      receipts: ReceiptHandles.of(db),
    };
    // Background work that rewrites the store stops on corruption: a recovery starts from what was found.
    this.integrity = new StoreIntegrity(logger, () => {
      for (const listener of this.corruptionListeners) listener();
    });
    this.commits = new CommitGroup(db, (error) => {
      logger.error({ err: error }, 'commit failed; the operations in it are answered with an error, or on a full disk those that drain are run again');
      options.storage.writeFailed(error);
      try {
        queues.reload();
      } catch (reloadError) {
        logger.error({ err: reloadError }, 'cannot reload the queues after a failed commit');
      }
    });
  }

  transact<T>(transaction: EngineTransaction<SqliteStorage, T>): Promise<T> {
    const { queues } = this.storage;
    return this.committed(() => queues.undoingOnFailure(() => runNow(transaction.run(this.storage))), transaction.needsRoom);
  }

  read<T>(work: (storage: SqliteStorage) => Step<T>): T {
    return runNow(work(this.storage));
  }

  /**
   * Runs a job in the group commit. A group that failed for lack of space made the storage guard
   * give up its disk reserve: a job that needs no room of its own is run once more, in the room
   * that made and in a transaction of its own (no other job's need for room can fail it again), so
   * that receives, deletes and purges go through on a full disk whoever filled it;
   * one that needs room is answered as its group failed (a send: a retryable ServiceUnavailable),
   * and the next send is refused up front while the disk is full.
   */
  private async committed<R>(job: () => R, needsRoom: boolean): Promise<R> {
    try {
      return await this.commits.run(job);
    } catch (error) {
      if (needsRoom || !(error instanceof CommitFailed && isOutOfSpace(error.cause))) throw this.integrity.judge(error);
    }
    try {
      return await this.commits.runAlone(job);
    } catch (error) {
      throw this.integrity.judge(error);
    }
  }

  admit(bytes: number): void {
    this.integrity.admit();
    this.options.storage.admit(bytes);
  }

  judge(error: unknown): unknown {
    return this.integrity.judge(error);
  }

  /** Told once, when the database is found corrupt. */
  onCorruption(listener: () => void): void {
    this.corruptionListeners.push(listener);
  }

  // One process writes an SQLite database: no other node makes messages available.
  onAvailable(): void {}

  /**
   * Vacuuming moves pages; it is done only once enough are free to be worth handing back. On a
   * short disk, once at the end of a sweep: the WAL it goes through is the room requests need.
   */
  readonly compact = (more: boolean): boolean => {
    const { db } = this.storage;
    const pace = this.options.storage.shrinkPace;
    const now = pace === 'freely' || (pace === 'a-slice-a-sweep' && !more);
    if (!now || (db.pragma('freelist_count', { simple: true }) as number) < VACUUM_THRESHOLD_PAGES) return false;
    db.pragma(`incremental_vacuum(${VACUUM_PAGES})`);
    return pace === 'freely';
  };

  health(): StoreHealth {
    const storage = this.options.storage.status;
    const corruption = this.integrity.corruption;
    if (corruption !== undefined) {
      return { status: 'unavailable', reason: `the database is corrupt (${corruption}): sends are refused until an operator recovers it`, storage };
    }
    try {
      this.storage.db.prepare('SELECT 1').get();
    } catch (error) {
      return { status: 'unavailable', reason: `the database does not answer: ${(error as Error).message}`, storage };
    }
    if (storage.state === 'disk-full') return { status: 'unavailable', reason: 'the disk is full: sends are refused until there is room', storage };
    if (storage.state === 'store-full') return { status: 'unavailable', reason: 'the store is at its bound: sends are refused until it drains', storage };
    return { status: 'ok', storage };
  }

  drain(): Promise<void> {
    return this.commits.close();
  }

  /** The queues, read from memory: for the hybrid edge's routing and status. */
  get queues(): QueueRegistry {
    return this.storage.queues;
  }

  /** How many messages a queue holds now (visible, in flight or delayed): a running total, no count. */
  storedMessages(queueName: string): number {
    const queue = this.storage.queues.byName(queueName);
    return queue ? this.storage.messages.total(queue) : 0;
  }

  /** A queue's approximate counts, as GetQueueAttributes gives them. */
  counts(queueName: string): MessageCounts {
    const queue = this.storage.queues.byName(queueName);
    return queue ? this.storage.messages.counts(queue, this.time.now()) : { visible: 0, inFlight: 0, delayed: 0 };
  }

  /** When the oldest message a queue holds was enqueued, if it holds any. */
  oldestMessageAt(queueName: string): number | undefined {
    const queue = this.storage.queues.byName(queueName);
    return queue ? this.storage.messages.oldestEnqueuedAt(queue) : undefined;
  }
}
