import type { StorageStatus } from '../sqs/storage-guard.js';
import type { SqsService } from '../sqs/service.js';
import type { HybridBackend } from './hybrid.js';
import type { QueueMirror } from './mirror.js';
import type { Mode, ModeMachine } from './mode.js';
import type { Replayer } from './replayer.js';
import type { Upstream } from './upstream.js';

/** The document of GET /status: what the edge is doing, for operators, the status page and /metrics. */
export interface EdgeStatus {
  readonly mode: 'standalone' | Mode;
  readonly since: string;
  readonly reason: string;
  readonly transitions: ReadonlyArray<{ at: string; from: string; to: string; reason: string }>;
  readonly breaker: 'closed' | 'open' | 'half-open' | 'isolated' | null;
  readonly upstream: null | {
    readonly url: string;
    readonly region: string;
    readonly lastSuccessAt: string | null;
    readonly lastFailureAt: string | null;
    readonly lastFailure: string | null;
    readonly recovery: { successes: number; needed: number; sinceFirstSuccessSeconds: number | null; neededSeconds: number };
  };
  readonly backlog: number;
  readonly oldestBacklogAgeSeconds: number | null;
  readonly replay: null | {
    readonly state: 'idle' | 'waiting' | 'running';
    readonly replayed: number;
    readonly rate: number;
    readonly etaSeconds: number | null;
    readonly lastError: string | null;
  };
  readonly sync: null | SyncStatus;
  readonly agents: readonly AgentStatus[];
  readonly conflicts: ReadonlyArray<{ kind: string; key: string; detectedAt: string; region: unknown; edge: unknown }>;
  readonly conflictCount: number;
  readonly queues: readonly QueueStatus[];
  readonly storage: StorageStatus;
  readonly requests: { upstream: number; local: number };
}

export interface SyncStatus {
  readonly state: 'idle' | 'running' | 'done' | 'failed';
  readonly done: number;
  readonly total: number;
  readonly written: number;
  readonly identical: number;
  readonly conflicts: number;
  readonly skipped: number;
  readonly lastError: string | null;
  readonly finishedAt: string | null;
}

export interface AgentStatus {
  readonly stage: string;
  readonly state: 'starting' | 'running' | 'stopping' | 'stopped' | 'restarting' | 'crashed';
  readonly pid: number | null;
  readonly restarts: number;
  readonly lastRestartAt: string | null;
  readonly lastRestartReason: string | null;
  readonly lastHeartbeatAt: string | null;
  readonly tasksDone: number;
}

export interface QueueStatus {
  readonly name: string;
  readonly fifo: boolean;
  readonly local: { visible: number; inFlight: number; delayed: number };
  readonly backlog: number;
  readonly oldestBacklogAgeSeconds: number | null;
  readonly replayed: number;
  readonly replayRate: number;
  readonly path: 'upstream' | 'local';
}

/** What the fallback agents and the sync add to the status, when the edge runs them. */
export interface EdgeWork {
  agents(): readonly AgentStatus[];
  sync(): SyncStatus | null;
  conflicts(): { latest: EdgeStatus['conflicts']; count: number };
}

const NO_WORK: EdgeWork = { agents: () => [], sync: () => null, conflicts: () => ({ latest: [], count: 0 }) };

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
const ageSeconds = (since: number | undefined, now: number) => (since === undefined ? null : Math.max(0, Math.round((now - since) / 1000)));

interface QueueCounts {
  readonly name: string;
  readonly fifo: boolean;
  readonly local: { visible: number; inFlight: number; delayed: number };
  readonly stored: number;
  readonly oldest: number | undefined;
}

function queueCounts(local: SqsService): QueueCounts[] {
  return local.queues.all().map((queue) => {
    const counts = local.counts(queue.name);
    return { name: queue.name, fifo: queue.fifo, local: counts, stored: local.storedMessages(queue.name), oldest: local.oldestMessageAt(queue.name) };
  });
}

/** The status of a shim without a region: its queues and its store. */
export function standaloneStatus(local: SqsService, startedAt: number, clock: () => number = Date.now): EdgeStatus {
  const now = clock();
  return {
    mode: 'standalone',
    since: new Date(startedAt).toISOString(),
    reason: 'no upstream configured',
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
    queues: queueCounts(local).map((queue) => ({
      name: queue.name,
      fifo: queue.fifo,
      local: queue.local,
      backlog: 0,
      oldestBacklogAgeSeconds: ageSeconds(queue.oldest, now),
      replayed: 0,
      replayRate: 0,
      path: 'local',
    })),
    storage: local.health().storage,
    requests: { upstream: 0, local: 0 },
  };
}

export interface HybridParts {
  readonly local: SqsService;
  readonly upstream: Upstream;
  readonly mirror: QueueMirror;
  readonly mode: ModeMachine;
  readonly replayer: Replayer;
  readonly backend: HybridBackend;
  readonly work?: EdgeWork;
}

/** The status of the hybrid edge: mode and why, the region, the backlog queue by queue, replay, sync and agents. */
export function hybridStatus(parts: HybridParts, clock: () => number = Date.now): EdgeStatus {
  const { local, upstream, mode, replayer, backend } = parts;
  const work = parts.work ?? NO_WORK;
  const now = clock();
  const queues = queueCounts(local);
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
    requests: { ...backend.requests },
  };
}
