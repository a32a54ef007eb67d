/**
 * Waits for a state, not for a time: looks again every few milliseconds until `done` holds for
 * what `probe` gives, and resolves to it. There is no deadline of its own; the test's timeout is
 * the bound, so a slow machine only makes the wait longer.
 */
export async function eventually<T>(probe: () => T | Promise<T>, done: (value: T) => boolean, intervalMs = 20): Promise<T> {
  for (;;) {
    const value = await probe();
    if (done(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
