/**
 * Receives waiting for messages (WaitTimeSeconds > 0). A wait ends when a message may have become
 * available on its queue, at its deadline, when its client goes away, or when the server closes.
 */
export class LongPolls {
  private readonly waiting = new Map<number, Set<() => void>>();
  private closed = false;

  wait(queueId: number, delayMs: number, signal?: AbortSignal): Promise<void> {
    if (this.closed || signal?.aborted) return Promise.resolve();
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
    const waiters = this.waiting.get(queueId);
    if (waiters) for (const done of [...waiters]) done();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    for (const waiters of [...this.waiting.values()]) for (const done of [...waiters]) done();
  }
}
