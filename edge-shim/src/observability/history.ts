import type { Logger } from 'pino';
import type { EdgeMode, StatusProvider } from './status.js';

/** One moment of the edge's recent past, as the status page's charts draw it. */
export interface HistorySample {
  /** Wall-clock time, in seconds since the epoch (the page's time axis). */
  readonly t: number;
  readonly mode: EdgeMode;
  readonly backlog: number;
  /** Requests a second carried out by the region and by the edge since the sample before; null for the first. */
  readonly upstream: number | null;
  readonly local: number | null;
  /** Messages a second replayed (over the replayer's last 10 s); null without an upstream. */
  readonly replay: number | null;
}

export interface HistoryOptions {
  /** How often the status is sampled; 5 s by default. */
  readonly intervalMs?: number;
  /** How far back the samples go; 10 minutes by default. */
  readonly windowMs?: number;
  readonly logger: Logger;
}

export const HISTORY_INTERVAL_MS = 5000;
export const HISTORY_WINDOW_MS = 10 * 60_000;

/**
 * The last minutes of the edge, kept in memory from the status document: what the status page
 * draws as soon as it opens (`GET /status/history`), instead of charts that start empty. It starts
 * again empty when the shim restarts.
 */
export class StatusHistory {
  private readonly samples: HistorySample[] = [];
  private previous: { t: number; upstream: number; local: number } | undefined;
  private readonly windowSeconds: number;
  private readonly timer: NodeJS.Timeout;
  private sampling = false;

  constructor(
    private readonly status: StatusProvider,
    options: HistoryOptions,
  ) {
    this.windowSeconds = (options.windowMs ?? HISTORY_WINDOW_MS) / 1000;
    this.timer = setInterval(() => {
      // A status that takes longer than the interval (a loaded machine) is not asked for twice at once.
      if (this.sampling) return;
      this.sampling = true;
      this.sample()
        .catch((error: unknown) => options.logger.warn({ err: error }, 'cannot sample the status for the status page\'s history'))
        .finally(() => (this.sampling = false));
    }, options.intervalMs ?? HISTORY_INTERVAL_MS);
    this.timer.unref();
  }

  /** The samples of the window, oldest first, and how far back the window goes. */
  recent(): { readonly windowSeconds: number; readonly samples: readonly HistorySample[] } {
    return { windowSeconds: this.windowSeconds, samples: [...this.samples] };
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async sample(): Promise<void> {
    const status = await this.status();
    // The page's clock, not the engine's: its charts put these next to its own samples.
    const t = Date.now() / 1000;
    const { upstream, local } = status.requests;
    const since = this.previous && t > this.previous.t ? this.previous : undefined;
    this.samples.push({
      t,
      mode: status.mode,
      backlog: status.backlog,
      upstream: since ? Math.max(0, (upstream - since.upstream) / (t - since.t)) : null,
      local: since ? Math.max(0, (local - since.local) / (t - since.t)) : null,
      replay: status.replay ? status.replay.rate : null,
    });
    this.previous = { t, upstream, local };
    while (this.samples.length > 0 && this.samples[0]!.t < t - this.windowSeconds) this.samples.shift();
  }
}
