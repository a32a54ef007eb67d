// setTimeout's longest delay (2^31 - 1 ms); a longer one fires at once.
const MAX_TIMER_MS = 2_147_483_647;

interface Waiter {
  /** Ends the wait; `woken` when a wake-up chose this waiter (it then owes a try at the queue). */
  readonly done: (woken: boolean) => void;
}

/**
 * Receives waiting for messages (WaitTimeSeconds > 0). A commit that makes messages available
 * wakes as many waiters as it made messages available, longest waiting first, not all of them: with
 * thousands waiting on one queue, a send costs one receive's try, not thousands. A waiter that takes
 * a full batch hands the wake-up on (the service calls `wake` again), so a backlog is shared out
 * without a stampede. A wait also ends at its deadline, when its client goes away, or when the
 * server closes.
 *
 * Each queue has a count of wake-ups. A receive reads it before it reads the queue's messages and
 * waits only if it has not moved since: a message committed after that read began (on PostgreSQL,
 * while the read's round trip is under way; on SQLite, in the same group commit) is not missed,
 * though its wake-up found this receive not yet waiting.
 */
export class LongPolls {
  /** Waiters per queue, in the order they began to wait. */
  private readonly waiting = new Map<number, Set<Waiter>>();
  private readonly wakeUps = new Map<number, number>();
  /** Per queue, one timer for when its next invisible message or locked group becomes available. */
  private readonly timers = new Map<number, { at: number; timer: NodeJS.Timeout }>();
  private closed = false;

  /** The queue's count of wake-ups, to pass to `wait`. */
  version(queueId: number): number {
    return this.wakeUps.get(queueId) ?? 0;
  }

  /** Waits up to `delayMs`; resolves to whether a wake-up chose this waiter. */
  wait(queueId: number, since: number, delayMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closed || signal?.aborted) return Promise.resolve(false);
    if (this.version(queueId) !== since) return Promise.resolve(true);
    return new Promise((resolve) => {
      let waiters = this.waiting.get(queueId);
      if (!waiters) this.waiting.set(queueId, (waiters = new Set()));
      const waiter: Waiter = {
        done: (woken) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          waiters.delete(waiter);
          if (waiters.size === 0 && this.waiting.get(queueId) === waiters) {
            this.waiting.delete(queueId);
            this.clearTimer(queueId);
          }
          resolve(woken);
        },
      };
      const onAbort = () => waiter.done(false);
      const timer = setTimeout(onAbort, Math.max(0, delayMs));
      signal?.addEventListener('abort', onAbort, { once: true });
      waiters.add(waiter);
    });
  }

  /** Messages became available on a queue: wakes up to `count` waiters, longest waiting first. */
  wake(queueId: number, count = 1): void {
    this.wakeUps.set(queueId, this.version(queueId) + 1);
    const waiters = this.waiting.get(queueId);
    if (!waiters) return;
    for (const waiter of waiters) {
      if (count-- <= 0) break;
      waiter.done(true);
    }
  }

  /** Wakes every waiter of a queue: its settings changed, or it is gone. */
  wakeAll(queueId: number): void {
    this.wake(queueId, Infinity);
  }

  /**
   * Wakes one waiter of a queue in `delayMs`, when its next invisible message or locked group
   * becomes available; the earliest such time is kept, and whoever it wakes sets the next one.
   */
  wakeIn(queueId: number, delayMs: number, now: number): void {
    if (!this.waiting.has(queueId)) return;
    // Beyond a timer's range (a message held for the replay is visible never) nothing is due.
    if (delayMs > MAX_TIMER_MS) return;
    const at = now + Math.max(0, delayMs);
    const current = this.timers.get(queueId);
    if (current && current.at <= at) return;
    if (current) clearTimeout(current.timer);
    const timer = setTimeout(() => {
      this.timers.delete(queueId);
      this.wake(queueId);
    }, at - now);
    this.timers.set(queueId, { at, timer });
  }

  /** How many receives wait now, on every queue. */
  get size(): number {
    let count = 0;
    for (const waiters of this.waiting.values()) count += waiters.size;
    return count;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    for (const waiters of [...this.waiting.values()]) for (const waiter of [...waiters]) waiter.done(false);
  }

  private clearTimer(queueId: number): void {
    const current = this.timers.get(queueId);
    if (!current) return;
    clearTimeout(current.timer);
    this.timers.delete(queueId);
  }
}
