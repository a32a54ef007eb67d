import type { EdgeStatus, QueueStatus } from '../../edge-shim/src/observability/status.js';

/** A queue's entry of the status document, its local counts and backlog as given. */
export function queueStatus(name: string, fields: Partial<QueueStatus> = {}): QueueStatus {
  return {
    name,
    fifo: name.endsWith('.fifo'),
    local: { visible: 0, inFlight: 0, delayed: 0 },
    backlog: 0,
    oldestBacklogAgeSeconds: null,
    replayed: 0,
    replayRate: 0,
    replayWaits: null,
    possiblyDuplicated: 0,
    expired: 0,
    path: 'upstream',
    ...fields,
  };
}

/** A whole status document of a hybrid edge, online with nothing waiting, changed by `fields`. */
export function edgeStatus(fields: Partial<EdgeStatus> = {}): EdgeStatus {
  const now = new Date().toISOString();
  return {
    mode: 'online',
    since: now,
    reason: 'the region answers',
    transitions: [],
    breaker: 'closed',
    upstream: {
      url: 'http://127.0.0.1:5000',
      region: 'eu-west-1',
      lastSuccessAt: now,
      lastFailureAt: null,
      lastFailure: null,
      credentialsRefused: null,
      recovery: { successes: 0, needed: 3, sinceFirstSuccessSeconds: null, neededSeconds: 5 },
    },
    backlog: 0,
    oldestBacklogAgeSeconds: null,
    replay: { state: 'idle', replayed: 0, rate: 0, etaSeconds: null, lastError: null, window: 1, linkBytesPerSecond: null, possiblyDuplicated: 0 },
    sync: { state: 'idle', done: 0, total: 0, written: 0, identical: 0, conflicts: 0, skipped: 0, lastError: null, finishedAt: null },
    agents: [],
    conflicts: [],
    conflictCount: 0,
    queues: [],
    storage: { state: 'ok', storeBytes: 4096, maxStoreBytes: null, diskFreeBytes: 10 * 2 ** 30, diskReserveBytes: 2 ** 20, reserveHeld: true },
    requests: { upstream: 0, local: 0 },
    site: { mode: 'online', node: 'edge-1', nodes: [{ name: 'edge-1', mode: 'online', replays: true, seenSecondsAgo: 0 }] },
    ...fields,
  };
}
