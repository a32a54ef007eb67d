import type { EdgeStatus } from '../edge-shim/src/observability/status.js';

const SAMPLE_INTERVAL_MS = 250;

/**
 * Watches the edge from outside through `GET /status`, as an operator's dashboard would: keeps the
 * latest document and the peak backlog, and wakes whoever waits for a state of the edge.
 */
export class EdgeObserver {
  latest: EdgeStatus | undefined;
  peakBacklog = 0;
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private listeners: Array<() => void> = [];

  constructor(private readonly read: () => Promise<EdgeStatus>) {}

  start(): void {
    this.timer = setInterval(() => {
      this.reading ??= this.sample().finally(() => (this.reading = undefined));
    }, SAMPLE_INTERVAL_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.reading;
  }

  /** Resolves with the first status read (from now on) for which `done` holds; rejects once `signal` is aborted. */
  async until(done: (status: EdgeStatus) => boolean, signal?: AbortSignal): Promise<EdgeStatus> {
    for (;;) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => this.listeners.push(resolve));
      if (this.latest && done(this.latest)) return this.latest;
    }
  }

  private async sample(): Promise<void> {
    try {
      this.take(await this.read());
    } catch {
      // A read the shim did not answer (busy, or stopping): the next one will.
    }
    const waiting = this.listeners;
    this.listeners = [];
    for (const wake of waiting) wake();
  }

  private take(status: EdgeStatus): void {
    this.latest = status;
    this.peakBacklog = Math.max(this.peakBacklog, status.backlog);
  }
}
