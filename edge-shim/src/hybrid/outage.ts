import type { AgentStatus, ConflictRecord, ConflictStatus, SyncStatus } from '../observability/status.js';

/** What the edge's work during an outage adds to GET /status. */
export interface OutageWorkStatus {
  readonly agents: readonly AgentStatus[];
  readonly sync: SyncStatus | null;
  readonly conflicts: { readonly latest: readonly ConflictStatus[]; readonly count: number };
}

/**
 * Whatever takes part in an outage besides the queues (the fallback agents and the sync of their
 * work): told when the edge goes offline, run before the replay once the region is back, and
 * reporting what it does. Handed to the hybrid edge when it starts.
 */
export interface OutageParticipant {
  /** The edge has gone offline (at start too, when it starts offline). */
  offline(): void;
  /** The region is back: runs before anything is replayed. A throw keeps the edge offline; the next recovery runs it again. */
  beforeReplay(): Promise<void>;
  /**
   * Whether the replay of a queue must wait for the participant: what it did during an outage,
   * which the queue's tasks depend on, has not reached the region yet. Holds across restarts.
   */
  holdsReplayOf(queueName: string): boolean;
  status(): OutageWorkStatus;
  /** A conflict of the status in full, by its id (for the admin listener's /conflicts/ID). */
  conflict(id: number): ConflictRecord | undefined;
  close(): Promise<void>;
}
