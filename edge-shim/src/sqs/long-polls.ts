/**
 * Receives waiting for messages (WaitTimeSeconds > 0). A wait ends when a message may have become
 * available on its queue, at its deadline, when its client goes away, or when the server closes.
 *
 * Each queue has a count of wake-ups. A receive reads it inside its transaction and waits only if
 * it has not moved since: a message committed between that transaction and the start of the wait
 * (for instance in the same group commit) is not missed.
 */
export class LongPolls {
  private readonly waiting = new Map<number, Set<() => void>>();
  private readonly wakeUps = new Map<number, number>();
  private closed = false;

  /** The queue's count of wake-ups, to pass to `wait`. */
  version(queueId: number): number {
    return this.wakeUps.get(queueId) ?? 0;
  }

  wait(queueId: number, since: number, delayMs: number, signal?: AbortSignal): Promise<void> {
    if (this.closed || signal?.aborted || this.version(queueId) !== since) return Promise.resolve();
    return new Promise((resolve) => {
      let waiters = this.waiting.get(queueId);
      if (!waiters) this.waiting.set(queueId, (waiters = new Set()));
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiting.get(queueId) === waiters) this.waiting.delete(queueId);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, delayMs));
      signal?.addEventListener('abort', done, { once: true });
      waiters.add(done);
    });
  }

  wake(queueId: number): void {
    this.wakeUps.set(queueId, this.version(queueId) + 1);
    const waiters = this.waiting.get(queueId);
    if (waiters) for (const done of [...waiters]) done();
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
    for (const waiters of [...this.waiting.values()]) for (const done of [...waiters]) done();
  }
}
