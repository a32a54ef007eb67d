/**
 * A read that goes through every row it counts (a queue's or a site's message counts), answered
 * again from its last result while that is fresh for what it cost: a read that took `cheapMs` or
 * more is done again only once it is `ageFactor` times its own duration old, so that a large
 * backlog costs the database at most about a tenth of its time in such reads (counting a million
 * messages took 0.45 s here); a cheap read is done every time, so a small queue's counts stay exact.
 */
export class CostlyRead<T> {
  private last: { readonly value: T; readonly at: number; readonly tookMs: number } | undefined;

  constructor(
    private readonly clock: () => number = () => performance.now(),
    private readonly cheapMs = 50,
    private readonly ageFactor = 10,
  ) {}

  /** Whether the last read took long enough to be answered from for a while. */
  get costly(): boolean {
    return this.last !== undefined && this.last.tookMs >= this.cheapMs;
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
