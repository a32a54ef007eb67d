import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `check` until it passes (returns without throwing), and returns what it returned. There is
 * no deadline of its own: the test's timeout bounds the wait, so that a slow machine only makes the
 * test slower. A check throws `Settled` to fail at once on a state that can no longer change.
 */
export async function waitForState<T>(check: () => T | Promise<T>, options: { intervalMs?: number; signal?: AbortSignal } = {}): Promise<T> {
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (error instanceof Settled || options.signal?.aborted) throw error;
    }
    await sleep(options.intervalMs ?? 100);
  }
}

/** A state that will not change any more: waiting longer cannot help. */
export class Settled extends Error {
  override readonly name = 'Settled';
}

/** Waits until `done` holds for what `probe` gives, and resolves to it: `waitForState` with a predicate. */
export function eventually<T>(probe: () => T | Promise<T>, done: (value: T) => boolean, intervalMs = 20): Promise<T> {
  return waitForState(
    async () => {
      const value = await probe();
      if (!done(value)) throw new Error('not yet');
      return value;
    },
    { intervalMs },
  );
}
