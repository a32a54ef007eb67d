import type { Logger } from 'pino';

type Level = 'error' | 'warn' | 'info';

/**
 * Logs each cause when it first comes, then at most once a minute with how many times it came
 * meanwhile: a failure that repeats many times a second (a queue the region lost, a table that is
 * not there) stays readable in the log and does not fill the disk.
 */
export class RepeatedLog {
  private readonly causes = new Map<string, { lastAt: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 60_000,
    private readonly clock: () => number = Date.now,
  ) {}

  log(level: Level, cause: string, fields: Record<string, unknown>, message: string): void {
    const now = this.clock();
    const seen = this.causes.get(cause);
    if (seen && now - seen.lastAt < this.intervalMs) {
      seen.suppressed += 1;
      // Kept for whoever asked for everything.
      this.logger.debug({ ...fields, suppressed: true }, message);
      return;
    }
    const repeated = seen?.suppressed ?? 0;
    this.causes.set(cause, { lastAt: now, suppressed: 0 });
    this.logger[level]({ ...fields, ...(repeated > 0 ? { repeated, overSeconds: Math.round((now - seen!.lastAt) / 1000) } : {}) }, message);
  }

  /** The cause is over: its next occurrence is logged at once. */
  clear(cause: string): void {
    this.causes.delete(cause);
  }
}

/**
 * The log of work that runs again and again in the background (a sweep, a move task's step): its
 * failures through a RepeatedLog, so that a database away for an hour is not a line a second, and
 * one line when it works again, with how many times it failed meanwhile.
 */
export class BackgroundWorkLog {
  private readonly log: RepeatedLog;
  private failures = 0;

  constructor(
    private readonly logger: Logger,
    private readonly work: string,
  ) {
    this.log = new RepeatedLog(logger);
  }

  failed(error: unknown, message: string): void {
    this.failures += 1;
    this.log.log('error', this.work, { err: error }, message);
  }

  succeeded(): void {
    if (this.failures === 0) return;
    this.logger.info({ failures: this.failures }, `${this.work} works again`);
    this.failures = 0;
    this.log.clear(this.work);
  }
}
