import type { AgentStatus, ConflictStatus, EdgeStatus, SyncStatus } from '../observability/status.js';
import type { SqsService } from '../sqs/service.js';
import type { Metrics } from '../observability/metrics.js';
import type { QueueMirror } from './mirror.js';
import type { ModeMachine } from './mode.js';
import type { Replayer } from './replayer.js';
import type { Upstream } from './upstream.js';

/** What the fallback agents and the sync add to the status, when the edge runs them. */
export interface EdgeWork {
  agents(): readonly AgentStatus[];
  sync(): SyncStatus | null;
  conflicts(): { latest: readonly ConflictStatus[]; count: number };
}

const NO_WORK: EdgeWork = { agents: () => [], sync: () => null, conflicts: () => ({ latest: [], count: 0 }) };

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
const ageSeconds = (since: number | undefined, now: number) => (since === undefined ? null : Math.max(0, Math.round((now - since) / 1000)));

export interface HybridParts {
  readonly local: SqsService;
  readonly upstream: Upstream;
  readonly mirror: QueueMirror;
  readonly mode: ModeMachine;
  readonly replayer: Replayer;
  readonly metrics: Metrics;
  readonly work?: EdgeWork;
}

/** The status of the hybrid edge: mode and why, the region, the backlog queue by queue, replay, sync and agents. */
export function hybridStatus(parts: HybridParts, clock: () => number = Date.now): EdgeStatus {
  const { local, upstream, mode, replayer, metrics } = parts;
  const work = parts.work ?? NO_WORK;
  const now = clock();
  const queues = local.queues.all().map((queue) => ({
    name: queue.name,
    fifo: queue.fifo,
    local: local.counts(queue.name),
    stored: local.storedMessages(queue.name),
    oldest: local.oldestMessageAt(queue.name),
  }));
  const backlog = queues.reduce((sum, queue) => sum + queue.stored, 0);
  const oldest = queues.reduce<number | undefined>((min, queue) => (queue.oldest !== undefined && (min === undefined || queue.oldest < min) ? queue.oldest : min), undefined);
  const [latest] = mode.transitions;
  const recovery = mode.recoveryProgress;
  const rate = replayer.ratePerSecond();
  const sync = work.sync();
  const conflicts = work.conflicts();
  return {
    mode: mode.mode,
    since: new Date(latest!.at).toISOString(),
    reason: latest!.reason,
    transitions: mode.transitions.map((transition) => ({ ...transition, at: new Date(transition.at).toISOString() })),
    breaker: mode.breakerState,
    upstream: {
      url: upstream.endpoint,
      region: upstream.region,
      lastSuccessAt: iso(mode.lastSuccessAt),
      lastFailureAt: iso(mode.lastFailureAt),
      lastFailure: mode.lastFailure ?? null,
      recovery: {
        successes: recovery.successes,
        needed: recovery.needed,
        sinceFirstSuccessSeconds: recovery.sinceFirstSuccessMs === undefined ? null : recovery.sinceFirstSuccessMs / 1000,
        neededSeconds: recovery.neededMs / 1000,
      },
    },
    backlog,
    oldestBacklogAgeSeconds: ageSeconds(oldest, now),
    replay: {
      state: backlog === 0 ? 'idle' : mode.mode === 'offline' ? 'waiting' : 'running',
      replayed: replayer.replayed,
      rate,
      etaSeconds: backlog > 0 && rate > 0 ? Math.ceil(backlog / rate) : null,
      lastError: replayer.lastError ?? null,
    },
    sync,
    agents: work.agents(),
    conflicts: conflicts.latest,
    conflictCount: conflicts.count,
    queues: queues.map((queue) => {
      const progress = replayer.queueProgress(queue.name);
      return {
        name: queue.name,
        fifo: queue.fifo,
        local: queue.local,
        backlog: queue.stored,
        oldestBacklogAgeSeconds: ageSeconds(queue.oldest, now),
        replayed: progress?.replayed ?? 0,
        replayRate: replayer.ratePerSecond(queue.name),
        path: mode.mode === 'offline' || queue.stored > 0 ? 'local' : 'upstream',
      };
    }),
    storage: local.health().storage,
    requests: metrics.requestsCarriedOut(),
  };
}
