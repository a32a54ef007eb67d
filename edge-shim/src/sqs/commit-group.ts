import type { Db } from './database.js';
import { SqsError } from './errors.js';
import { isOutOfSpace } from './storage-guard.js';

interface Job<T> {
  readonly work: () => T;
  /** Committed in a transaction of its own (see `runAlone`). */
  readonly alone: boolean;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
}

/** The answer of every operation of a group whose transaction failed as a whole; `cause` says why. */
export class CommitFailed extends SqsError {
  constructor(override readonly cause: unknown) {
    super('ServiceUnavailable', 'The request could not be stored; try again.');
  }
}

/**
 * Group commit. Operations that arrive while the event loop is busy run together in one SQLite
 * transaction, each in a savepoint of its own so that one failing operation undoes only itself, and
 * every caller is answered only after the shared COMMIT returned: nothing is acknowledged before it
 * is durable, and with fsync on every commit the cost of the fsync is shared by the whole group.
 */
export class CommitGroup {
  private pending: Job<unknown>[] = [];
  private scheduled = false;
  private idleWaiters: Array<() => void> = [];
  private closed = false;
  private readonly runGroup: (jobs: Job<unknown>[]) => Array<{ ok: true; value: unknown } | { ok: false; error: unknown }>;

  constructor(
    db: Db,
    private readonly onCommitFailure: (error: unknown) => void,
  ) {
    const inSavepoint = db.transaction((work: () => unknown) => work());
    const group = db.transaction((jobs: Job<unknown>[]) =>
      jobs.map((job) => {
        try {
          return { ok: true as const, value: inSavepoint(job.work) };
        } catch (error) {
          // Some errors (disk full, I/O) roll back the whole transaction, not just the savepoint: the
          // group has failed, and the jobs after this one must not run, each committing on its own.
          // Running out of space fails the group even where SQLite kept the transaction: it is the
          // group's lack, not the job's fault, and the group is tried again once there is room.
          if (!db.inTransaction || isOutOfSpace(error)) throw error;
          return { ok: false as const, error };
        }
      }),
    );
    const alone = db.transaction((work: () => unknown) => work());
    this.runGroup = (jobs) => {
      if (jobs.length !== 1) return group.immediate(jobs);
      // A job on its own needs no savepoint: its transaction is undone if it fails. Its own error
      // answers it; an error of the COMMIT, or running out of space, fails the group as above.
      const work = jobs[0]!.work;
      let failure: { error: unknown } | undefined;
      try {
        return [
          {
            ok: true as const,
            value: alone.immediate(() => {
              try {
                return work();
              } catch (error) {
                if (!isOutOfSpace(error)) failure = { error };
                throw error;
              }
            }),
          },
        ];
      } catch (error) {
        if (failure) return [{ ok: false as const, error: failure.error }];
        throw error;
      }
    };
  }

  run<T>(work: () => T): Promise<T> {
    return this.enqueue(work, false);
  }

  /**
   * Runs work in a transaction of its own, before the next group: for work tried again after its
   * group ran out of space, which only its own need for room may fail again, not another job's.
   */
  runAlone<T>(work: () => T): Promise<T> {
    return this.enqueue(work, true);
  }

  private enqueue<T>(work: () => T, alone: boolean): Promise<T> {
    if (this.closed) return Promise.reject(new SqsError('ServiceUnavailable', 'The server is shutting down.'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ work, alone, resolve, reject } as Job<unknown>);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Refuses new work; resolves once the work already queued is committed, so the database can close. */
  close(): Promise<void> {
    this.closed = true;
    if (!this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private flush(): void {
    const jobs = this.pending;
    this.pending = [];
    this.scheduled = false;
    try {
      for (const job of jobs) if (job.alone) this.commit([job]);
      const grouped = jobs.filter((job) => !job.alone);
      if (grouped.length > 0) this.commit(grouped);
    } finally {
      if (!this.scheduled) for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private commit(jobs: Job<unknown>[]): void {
    try {
      const outcomes = this.runGroup(jobs);
      outcomes.forEach((outcome, index) => {
        const job = jobs[index]!;
        if (outcome.ok) job.resolve(outcome.value);
        else job.reject(outcome.error);
      });
    } catch (error) {
      const failure = new CommitFailed(error);
      for (const job of jobs) job.reject(failure);
      // Runs before the jobs learn of their failure (promise callbacks come later): what it does,
      // such as giving up the disk reserve, is done before any of them is tried again.
      this.onCommitFailure(error);
    }
  }
}
