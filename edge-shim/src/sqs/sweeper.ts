import type { Logger } from 'pino';
import type { SqsContext } from './context.js';

const BATCH = 500;
// Free pages handed back to the file system per sweep (4 KiB each), once at least 1 MiB is free.
const VACUUM_PAGES = 2000;
const VACUUM_THRESHOLD_PAGES = 256;

interface Transactor {
  transact<T>(baseUrl: string, work: (context: SqsContext) => T): Promise<T>;
}

/**
 * Reclaims what no request will read again: messages past their retention period or purged,
 * deduplication ids and receive attempts past their 5 minutes. It works in small transactions so
 * requests are never held up for long, and sweeps again at once while it finds full batches.
 */
export class Sweeper {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly service: Transactor,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {
    this.schedule(intervalMs);
  }

  /** One sweep; resolves to whether there is more left to reclaim right away. */
  sweepOnce(): Promise<boolean> {
    return this.service.transact('', (context) => {
      let more = false;
      for (const queue of context.queues.all()) {
        const expired = context.messages.expired(queue, context.now, BATCH);
        const purged = context.messages.purged(queue, BATCH);
        for (const message of [...expired, ...purged]) context.messages.remove(queue, message);
        // Messages in flight were deleted: their FIFO groups may be unlocked.
        if (queue.fifo && expired.length + purged.length > 0) context.messagesAvailable(queue);
        more ||= expired.length >= BATCH || purged.length >= BATCH;
      }
      more = context.queues.reclaimDeleted(BATCH) || more;
      context.deduplication.forgetExpired(context.now);
      context.receiveAttempts.forgetExpired(context.now);
      context.queues.forgetDeletions(context.now - 60_000);
      // Vacuuming moves pages; do it only once enough are free to be worth handing back.
      if ((context.db.pragma('freelist_count', { simple: true }) as number) >= VACUUM_THRESHOLD_PAGES) {
        context.db.pragma(`incremental_vacuum(${VACUUM_PAGES})`);
      }
      return more;
    });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.sweepOnce().then(
        (more) => this.schedule(more ? 0 : this.intervalMs),
        (error: unknown) => {
          this.logger.error({ err: error }, 'sweep failed; trying again at the next interval');
          this.schedule(this.intervalMs);
        },
      );
    }, delayMs);
    this.timer.unref();
  }
}
