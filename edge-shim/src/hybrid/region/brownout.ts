/**
 * Tells a brownout of the region, when most requests fail across several queues, from one queue's
 * trouble (a queue throttled, or answering errors for one client's odd requests), which only that
 * queue's requests should feel.
 */
export interface BrownoutOptions {
  /** How far back outcomes count. */
  readonly windowMs: number;
  /** Share of requests (0 to 1) that failed... */
  readonly failureShare: number;
  /** ...out of at least this many... */
  readonly minimumRequests: number;
  /** ...on at least this many queues (or actions, for requests of no queue). */
  readonly minimumSources: number;
  readonly clock?: () => number;
}

interface Outcome {
  readonly at: number;
  readonly source: string;
  readonly failed: boolean;
}

export class BrownoutDetector {
  private readonly outcomes: Outcome[] = [];
  private readonly clock: () => number;

  constructor(private readonly options: BrownoutOptions) {
    this.clock = options.clock ?? Date.now;
  }

  /** A request to `source` (a queue, or an action) answered well or failed. */
  record(source: string, failed: boolean): void {
    const now = this.clock();
    this.outcomes.push({ at: now, source, failed });
    while (this.outcomes.length > 0 && this.outcomes[0]!.at < now - this.options.windowMs) this.outcomes.shift();
  }

  /** Whether the failures over the window say the region as a whole is failing. */
  regionWide(): boolean {
    const { failureShare, minimumRequests, minimumSources } = this.options;
    const failures = this.outcomes.filter((outcome) => outcome.failed);
    if (this.outcomes.length < minimumRequests || failures.length < failureShare * this.outcomes.length) return false;
    return new Set(failures.map((outcome) => outcome.source)).size >= minimumSources;
  }
}
