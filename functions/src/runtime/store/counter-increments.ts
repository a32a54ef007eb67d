import type { CounterIncrement } from './types.js';

/** Checks an operation's increments: at least one, positive safe integer deltas, each key once. */
export function checkIncrements(operationId: string, increments: readonly CounterIncrement[]): void {
  if (!operationId) throw new Error('a counter operation needs an id');
  if (increments.length === 0) throw new Error(`counter operation ${operationId} has no increments`);
  const keys = new Set<string>();
  for (const { key, delta, limit } of increments) {
    if (!Number.isSafeInteger(delta) || delta <= 0) throw new Error(`counter ${key}: delta must be a positive safe integer, got ${delta}`);
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) throw new Error(`counter ${key}: limit must be a non-negative safe integer, got ${limit}`);
    if (keys.has(key)) throw new Error(`counter operation ${operationId} names ${key} twice`);
    keys.add(key);
  }
}
