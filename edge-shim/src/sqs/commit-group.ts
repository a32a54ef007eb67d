import type { Db } from './database.js';
import { SqsError } from './errors.js';

interface Job<T> {
  readonly work: () => T;
  readonly resolve: (value: T) => void;
  readonly reject: (error: unknown) => void;
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
          return { ok: false as const, error };
        }
      }),
    );
    this.runGroup = (jobs) => group.immediate(jobs);
  }

  run<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ work, resolve, reject } as Job<unknown>);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    const jobs = this.pending;
    this.pending = [];
    this.scheduled = false;
    let outcomes;
    try {
      outcomes = this.runGroup(jobs);
    } catch (error) {
      this.onCommitFailure(error);
      const failure = new SqsError('ServiceUnavailable', 'The request could not be stored; try again.');
      for (const job of jobs) job.reject(failure);
      return;
    }
    outcomes.forEach((outcome, index) => {
      const job = jobs[index]!;
      if (outcome.ok) job.resolve(outcome.value);
      else job.reject(outcome.error);
    });
  }
}
