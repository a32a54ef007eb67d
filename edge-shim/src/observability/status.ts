import type { RequestPath } from '../backend.js';
import type { StorageStatus } from '../sqs/storage-guard.js';

/**
 * The edge's status document (`GET /status` on the admin listener): the contract between whatever
 * runs the queues (the standalone store or the hybrid edge), `/metrics` and the status page. Times
 * are ISO-8601 strings, counts integers, rates messages per second; a field that does not apply is
 * null, never missing. It holds no record of the workflow (conflicts are named, their records are
 * at /conflicts/ID), no process ids, and no ARN or account id from the region's texts.
 */
export interface EdgeStatus {
  readonly mode: EdgeMode;
  /** When the current mode began. */
  readonly since: string;
  /** Why: the last transition's reason. */
  readonly reason: string;
  /** Newest first, at most 50. */
  readonly transitions: readonly ModeTransition[];
  readonly breaker: BreakerState | null;
  readonly upstream: UpstreamStatus | null;
  /** Messages stored locally waiting for replay, all queues. */
  readonly backlog: number;
  readonly oldestBacklogAgeSeconds: number | null;
  readonly replay: ReplayStatus | null;
  readonly sync: SyncStatus | null;
  readonly agents: readonly AgentStatus[];
  /** Newest first, at most 20. */
  readonly conflicts: readonly ConflictStatus[];
  readonly conflictCount: number;
  readonly queues: readonly QueueStatus[];
  /** The local store's disk and size (SQLite); null where the store is a database server's (PostgreSQL). */
  readonly storage: StorageStatus | null;
  /** SQS requests carried out each way since start. */
  readonly requests: { readonly upstream: number; readonly local: number };
  /** The site this node is part of (a hybrid edge); null for a standalone shim. */
  readonly site: SiteStatus | null;
}

/**
 * A hybrid edge's site: one node on SQLite, several on one PostgreSQL database. Each node decides
 * for itself whether the region is there; the backlog above is the site's.
 */
export interface SiteStatus {
  /** Offline while any node heard from lately is, replaying while the site holds a backlog, else online. */
  readonly mode: EdgeMode;
  /** This node's name. */
  readonly node: string;
  /** Every node, this one first, as each last told the site. */
  readonly nodes: readonly SiteNodeStatus[];
}

export interface SiteNodeStatus {
  readonly name: string;
  readonly mode: EdgeMode;
  /** Whether it holds the site's replay lease: the one node that replays. */
  readonly replays: boolean;
  readonly seenSecondsAgo: number;
}

export const EDGE_MODES = ['standalone', 'online', 'offline', 'replaying'] as const;
export type EdgeMode = (typeof EDGE_MODES)[number];

export const BREAKER_STATES = ['closed', 'open', 'half-open', 'isolated'] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];

export interface ModeTransition {
  readonly at: string;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
}

export interface UpstreamStatus {
  readonly url: string;
  readonly region: string;
  readonly lastSuccessAt: string | null;
  readonly lastFailureAt: string | null;
  readonly lastFailure: string | null;
  /** Set while the region refuses the edge's own credentials (or its clock): what it said, for the operator to act on. */
  readonly credentialsRefused: string | null;
  readonly recovery: { readonly successes: number; readonly needed: number; readonly sinceFirstSuccessSeconds: number | null; readonly neededSeconds: number };
}

export const REPLAY_STATES = ['idle', 'waiting', 'running'] as const;

export interface ReplayStatus {
  /** waiting: the region is back, the replay waits for the agents to stop or the sync. */
  readonly state: (typeof REPLAY_STATES)[number];
  /** Messages replayed since the shim started. */
  readonly replayed: number;
  /** Over the last 10 s. */
  readonly rate: number;
  /** Backlog over rate, while running. */
  readonly etaSeconds: number | null;
  readonly lastError: string | null;
  /** Batches the congestion control lets be in flight now. */
  readonly window: number;
  /** The rate the path to the region delivered at best lately, in bytes a second; null before it was measured. */
  readonly linkBytesPerSecond: number | null;
  /** FIFO messages replayed past SQS's deduplication interval after an unanswered attempt: the region may hold them twice. */
  readonly possiblyDuplicated: number;
}

export const SYNC_STATES = ['idle', 'running', 'done', 'failed'] as const;

export interface SyncStatus {
  readonly state: (typeof SYNC_STATES)[number];
  readonly done: number;
  readonly total: number;
  readonly written: number;
  readonly identical: number;
  readonly conflicts: number;
  readonly skipped: number;
  readonly lastError: string | null;
  readonly finishedAt: string | null;
}

export type AgentState = 'starting' | 'running' | 'stopping' | 'stopped' | 'restarting' | 'crashed';

/** One edge stage's fallback agent. */
export interface AgentStatus {
  readonly stage: string;
  readonly state: AgentState;
  readonly restarts: number;
  readonly lastRestartAt: string | null;
  readonly lastRestartReason: string | null;
  readonly lastHeartbeatAt: string | null;
  readonly tasksDone: number;
}

/** A sync conflict as the status names it: which record, never what it holds. */
export interface ConflictStatus {
  /** Its page on the admin listener: /conflicts/ID. */
  readonly id: number;
  readonly kind: string;
  readonly key: string;
  readonly detectedAt: string;
}

/** A sync conflict in full (`GET /conflicts/ID`): both records, which may hold payment and customer data. */
export interface ConflictRecord extends ConflictStatus {
  /** Where it was met: the region's endpoint and tables. */
  readonly target: string;
  readonly reason: string;
  readonly region: unknown;
  readonly edge: unknown;
  readonly lastSeenAt: string;
  /** When a later sync found it resolved in the region. */
  readonly resolvedAt: string | null;
}

export const STORAGE_STATES = ['ok', 'disk-full', 'store-full'] as const satisfies readonly StorageStatus['state'][];

export interface QueueStatus {
  readonly name: string;
  readonly fifo: boolean;
  readonly local: { readonly visible: number; readonly inFlight: number; readonly delayed: number };
  /** Local messages waiting for replay (in hybrid mode, all of the local ones). */
  readonly backlog: number;
  readonly oldestBacklogAgeSeconds: number | null;
  readonly replayed: number;
  readonly replayRate: number;
  /** Why the queue's replay waits, when it does: the sync it depends on, or the region refusing it. */
  readonly replayWaits: string | null;
  readonly possiblyDuplicated: number;
  /**
   * Local messages deleted unread for their age since the shim started: past the queue's
   * MessageRetentionPeriod (a hybrid edge keeps its backlog unless --backlog-retention is sqs).
   */
  readonly expired: number;
  /** Where a send to this queue goes now. */
  readonly path: RequestPath;
}

/** Gives the status document as of now; called for every `GET /status`, `/metrics` scrape and page poll. */
export type StatusProvider = () => EdgeStatus | Promise<EdgeStatus>;
