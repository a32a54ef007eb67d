/**
 * A count that goes through every row it counts (a queue's or a site's messages), answered again
 * from its last result while that is fresh for what it cost. A large one (as `large` judges the
 * result) is done again only once it is `ageFactor` times its own duration old, so that a large
 * backlog costs the database at most about a tenth of its time in counting (a million messages
 * took 0.45 s here); a small one is done every time, so that a small queue's counts stay exact
 * however slow the database is at the moment.
 */
export class CostlyRead<T> {
  private last: { readonly value: T; readonly at: number; readonly tookMs: number } | undefined;

  constructor(
    private readonly large: (value: T) => boolean,
    private readonly clock: () => number = () => performance.now(),
    private readonly ageFactor = 10,
  ) {}

  /** Whether the last result was large enough to be answered from for a while. */
  get costly(): boolean {
    return this.last !== undefined && this.large(this.last.value);
  }

  async get(read: () => Promise<T>): Promise<T> {
    const startedAt = this.clock();
    const last = this.last;
    if (last && this.costly && startedAt - last.at < this.ageFactor * last.tookMs) return last.value;
    const value = await read();
    this.last = { value, at: startedAt, tookMs: this.clock() - startedAt };
    return value;
  }
}

/** Counts of this many messages or more are large (see CostlyRead). */
export const LARGE_COUNT = 10_000;
