import type { SqsContext } from '../../sqs/context.js';
import type { Pending } from '../../sqs/storage/step.js';
import type { MessageCounts, Queue } from '../../sqs/storage/records.js';
import type { EdgeMode } from '../../observability/status.js';

/**
 * What the hybrid edge keeps of its own beside the queues, and how the nodes of a site share it:
 * one backend per engine. On SQLite the edge is one node and everything is read from memory; on
 * PostgreSQL several nodes share the database, and the view of the queues is refreshed from it.
 */
export interface SiteStore {
  /** Whether other nodes share the store (PostgreSQL). */
  readonly shared: boolean;
  /** This node, as the site's status names it. */
  readonly nodeName: string;
  readonly view: QueueView;
  readonly mirrorRows: MirrorRows;
  /** The replay's bookkeeping, inside a transaction of the engine. */
  ledger(context: SqsContext): ReplayLedger;
  /** The one node that replays: held by this node or not. */
  readonly replayLease: Lease;
  /** Tells the site this node's mode, and reads the other nodes' (every node's, this one first). */
  heartbeat(mode: EdgeMode): Promise<readonly SiteNode[]>;
  close(): Promise<void>;
}

/** A node of the site, as it last told the others. */
export interface SiteNode {
  readonly name: string;
  readonly mode: EdgeMode;
  readonly replays: boolean;
  /** When it last told the site, milliseconds since the epoch. */
  readonly seenAt: number;
}

/**
 * The site's queues as the routing, the replay and the status read them without a transaction:
 * from memory. One node's view is exact; a shared one is refreshed from the database, and counts
 * this node's own sends at once.
 */
export interface QueueView {
  readonly accountId: string;
  arnOf(name: string): string;
  queue(name: string): Queue | undefined;
  queues(): readonly Queue[];
  /** Messages a queue holds at the site (visible, in flight or delayed), as last read. */
  storedMessages(name: string): number;
  /**
   * Whether a queue holds any message at the site now: read from the store where other nodes
   * write too, so that a send through this node never passes one another node stored a moment ago.
   */
  holdsMessagesNow(name: string): Promise<boolean>;
  counts(name: string): MessageCounts;
  /** When the oldest message a queue holds was enqueued, if it holds any. */
  oldestMessageAt(name: string): number | undefined;
  /** Reads what other nodes changed (nothing to read for one node). */
  refresh(): Promise<void>;
  /** This node stored `count` messages in a queue: the view counts them before its next refresh. */
  stored(name: string, count: number): void;
}

/** How the edge knows a queue of the region (see region/mirror.ts). */
export type MirrorState = 'linked' | 'pending' | 'declared';

export interface MirrorRow {
  readonly name: string;
  readonly state: MirrorState;
  /** /<account>/<name> in the region, once linked. */
  readonly upstream_path: string | null;
  /** What a pending or declared queue is created with in the region (JSON, the edge's ARNs). */
  readonly attributes: string;
  readonly mirrored_at: number;
}

/** The mirror's durable rows. */
export interface MirrorRows {
  all(): Promise<MirrorRow[]>;
  save(row: MirrorRow): Promise<void>;
  forget(name: string): Promise<void>;
}

/**
 * Messages the replay took and has not handed over yet (leases, released when a replay starts after
 * a crash or a takeover), and those it sent without learning whether the region took them.
 */
export interface ReplayLedger {
  lease(id: number): Pending<void>;
  /** When the region may first have taken the message unanswered, and whether a client's send was held for it. */
  attempt(id: number): Pending<{ readonly unansweredAt: number | undefined; readonly held: boolean }>;
  unanswered(id: number, now: number): Pending<void>;
  leased(): Pending<number[]>;
  clearLeases(): Pending<void>;
}

/** A lease one node of the site holds at a time, taken over when its holder is gone. */
export interface Lease {
  readonly held: boolean;
  /** Told when this node gains or loses the lease. */
  onChange(listener: (held: boolean) => void): void;
}
