import type { SqsService } from '../sqs/service.js';
import type { EdgeStatus, QueueStatus, StatusProvider } from './status.js';
import { call } from '../sqs/storage/step.js';

export interface StandaloneStatusOptions {
  /** When the shim started: the standalone mode has no other transition. */
  readonly startedAt: number;
  /** SQS requests carried out since start, each way (a standalone shim has only local ones). */
  readonly requests: () => { readonly upstream: number; readonly local: number };
  /** Messages of a queue expired since start. */
  readonly expired: (queue: string) => number;
}

/**
 * The status document of a shim without an upstream: its queues and their depths, its storage,
 * and nothing of the hybrid edge (no breaker, replay, sync or agents). Nothing waits to be
 * replayed, so the backlog is 0 however deep the queues are.
 */
export function standaloneStatus(service: SqsService, options: StandaloneStatusOptions): StatusProvider {
  const since = new Date(options.startedAt).toISOString();
  return async (): Promise<EdgeStatus> => {
    // One read of every queue's counts, consistent with itself; it writes nothing.
    const queues = await service.transact('', function* (context) {
      const statuses: QueueStatus[] = [];
      for (const queue of yield* call(context.queues.all())) {
        const { visible, inFlight, delayed } = yield* call(context.messages.counts(queue, context.now));
        statuses.push({
          name: queue.name,
          fifo: queue.fifo,
          local: { visible, inFlight, delayed },
          backlog: 0,
          oldestBacklogAgeSeconds: null,
          replayed: 0,
          replayRate: 0,
          replayWaits: null,
          possiblyDuplicated: 0,
          expired: options.expired(queue.name),
          path: 'local',
        });
      }
      return statuses.sort((a, b) => a.name.localeCompare(b.name));
    });
    return {
      mode: 'standalone',
      since,
      reason: 'no upstream is configured: the shim is the queue server',
      transitions: [],
      breaker: null,
      upstream: null,
      backlog: 0,
      oldestBacklogAgeSeconds: null,
      replay: null,
      sync: null,
      agents: [],
      conflicts: [],
      conflictCount: 0,
      queues,
      storage: service.health().storage,
      requests: options.requests(),
      site: null,
    };
  };
}
