import { setTimeout as sleep } from 'node:timers/promises';

/**
 * How long a node waits for the site's database to answer a question it can also answer from its
 * view as last read (whether a queue holds a backlog, what /status shows). A database that drops
 * packets, rather than refusing, would otherwise hold the asker until a connection gives up.
 */
export const SITE_QUESTION_MS = 2000;

/** `work`'s value, or `fallback` when it fails or has not settled within `ms`. */
export async function within<T>(ms: number, work: Promise<T>, fallback: T): Promise<T> {
  const waited = new AbortController();
  try {
    return await Promise.race([work, sleep(ms, fallback, { signal: waited.signal })]);
  } catch {
    return fallback;
  } finally {
    waited.abort();
  }
}
