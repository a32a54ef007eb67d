import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { type ActivityRecorder, type RequestFacts, messagesMoved } from '../activity.js';
import type { RequestPath } from '../backend.js';
import { VERSION } from '../version.js';
import { ACTIONS } from '../sqs/actions/index.js';
import { BREAKER_STATES, EDGE_MODES, type EdgeStatus, REPLAY_STATES, STORAGE_STATES, SYNC_STATES } from './status.js';

export const METRICS_PREFIX = 'holdfast_edge_';

/**
 * Events that no status document can count afterwards, told by whoever sees them besides the HTTP
 * front (which tells its requests as an ActivityRecorder): the replayer, the agents' supervisor,
 * the engine (messages expired).
 */
export interface MetricsRecorder {
  /** Messages of a queue that upstream acknowledged during a replay. */
  messagesReplayed(queue: string, count: number): void;
  /** FIFO messages of a queue replayed past SQS's deduplication interval after an unanswered attempt. */
  messagesPossiblyDuplicated(queue: string, count: number): void;
  /** A fallback agent of a stage was restarted. */
  agentRestarted(stage: string): void;
  /** Messages of a queue deleted unread at the edge, past their retention period (not purged ones). */
  messagesExpired(queue: string, count: number): void;
}

// Label values that clients choose are bounded here: an action not of SQS, or a code that is not a
// plain identifier, would give every caller a new series.
const KNOWN_ACTIONS = new Set([...Object.keys(ACTIONS), 'ReceiveMessage']);
const actionLabel = (action: string | undefined) => (action !== undefined && KNOWN_ACTIONS.has(action) ? action : 'unknown');
const codeLabel = (code: string) => (/^[A-Za-z][A-Za-z0-9.]{0,63}$/.test(code) ? code : 'other');

const seconds = (iso: string | null) => (iso === null ? null : Date.parse(iso) / 1000);

// From a local send (a millisecond) through the region's answers (tens to hundreds of them) to a
// long poll's 20 s.
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20];

/**
 * The shim's metrics, in the Prometheus text format. Counters count the recorder's events; gauges
 * are set from the status document at each scrape, so that /metrics, /status and the page never
 * disagree. Node's process metrics come along under their usual unprefixed names (process_*,
 * nodejs_*), which stock Node dashboards and alerts expect.
 */
export class Metrics implements MetricsRecorder, ActivityRecorder {
  readonly registry: Registry;
  private readonly byPath: Record<RequestPath, number> = { upstream: 0, local: 0 };
  private readonly expiredByQueue = new Map<string, number>();

  private readonly requests: Counter<'action' | 'path'>;
  private readonly durations: Histogram<'action' | 'path'>;
  private readonly errors: Counter<'action' | 'code'>;
  private readonly sent: Counter<'queue'>;
  private readonly received: Counter<'queue'>;
  private readonly deleted: Counter<'queue'>;
  private readonly replayed: Counter<'queue'>;
  private readonly possiblyDuplicated: Counter<'queue'>;
  private readonly restarts: Counter<'stage'>;
  private readonly expired: Counter<'queue'>;

  private readonly mode: Gauge<'mode'>;
  private readonly modeSince: Gauge;
  private readonly breaker: Gauge<'state'>;
  private readonly upstreamLastSuccess: Gauge;
  private readonly upstreamLastFailure: Gauge;
  private readonly queueMessages: Gauge<'queue' | 'state'>;
  private readonly queueBacklog: Gauge<'queue'>;
  private readonly queueOldestBacklogAge: Gauge<'queue'>;
  private readonly replayState: Gauge<'state'>;
  private readonly replayRate: Gauge;
  private readonly replayEta: Gauge;
  private readonly replayWindow: Gauge;
  private readonly replayWaits: Gauge<'queue'>;
  private readonly linkRate: Gauge;
  private readonly credentialsRefused: Gauge;
  private readonly syncState: Gauge<'state'>;
  private readonly syncPlanned: Gauge;
  private readonly syncDone: Gauge;
  private readonly syncOutcomes: Gauge<'outcome'>;
  private readonly agentsUp: Gauge<'stage'>;
  private readonly conflicts: Gauge;
  private readonly storageState: Gauge<'state'>;
  private readonly storeSize: Gauge;
  private readonly storeMaxSize: Gauge;
  private readonly diskFree: Gauge;
  private readonly diskReserve: Gauge;
  private readonly diskReserveHeld: Gauge;

  constructor() {
    const registers = [new Registry()];
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) => new Counter<L>({ name: METRICS_PREFIX + name, help, labelNames, registers });
    const gauge = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) => new Gauge<L>({ name: METRICS_PREFIX + name, help, labelNames, registers });

    this.requests = counter(
      'requests_total',
      'SQS requests carried out, by action and by path (upstream: by the region; local: by the edge store); a send the region did not take counts on both.',
      ['action', 'path'],
    );
    this.durations = new Histogram({
      name: `${METRICS_PREFIX}request_duration_seconds`,
      help: "Time from an SQS request's arrival to its answer, long polls' waits included, for requests carried out, by action and by the path it ended on (upstream, local).",
      labelNames: ['action', 'path'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.errors = counter('request_errors_total', 'SQS error answers, by action and error code.', ['action', 'code']);
    this.sent = counter('messages_sent_total', 'Messages clients sent and the edge acknowledged (to the region or stored at the edge), by queue.', ['queue']);
    this.received = counter('messages_received_total', 'Messages handed to clients by receives, by queue.', ['queue']);
    this.deleted = counter('messages_deleted_total', 'Messages clients deleted, by queue.', ['queue']);
    this.replayed = counter('messages_replayed_total', 'Messages replayed to the region and acknowledged by it, by queue.', ['queue']);
    this.possiblyDuplicated = counter(
      'replay_possibly_duplicated_messages_total',
      "FIFO messages replayed more than SQS's 5-minute deduplication interval after an unanswered attempt, by queue: the region may hold them twice.",
      ['queue'],
    );
    this.restarts = counter('fallback_agent_restarts_total', 'Restarts of fallback agents, by stage.', ['stage']);
    this.expired = counter('messages_expired_total', "Messages deleted unread at the edge for their age (past the queue's MessageRetentionPeriod), by queue.", ['queue']);

    this.mode = gauge('mode', 'The edge mode: 1 for the current one, 0 for the others.', ['mode']);
    this.modeSince = gauge('mode_since_timestamp_seconds', 'When the current mode began, in seconds since the epoch.');
    this.breaker = gauge('breaker_state', "The upstream circuit breaker's state: 1 for the current one (absent without an upstream).", ['state']);
    this.upstreamLastSuccess = gauge('upstream_last_success_timestamp_seconds', 'When an upstream request last succeeded, in seconds since the epoch.');
    this.upstreamLastFailure = gauge('upstream_last_failure_timestamp_seconds', 'When an upstream request last failed, in seconds since the epoch.');
    this.queueMessages = gauge('queue_messages', 'Messages in the local store, by queue and state (visible, in_flight, delayed).', ['queue', 'state']);
    this.queueBacklog = gauge('queue_backlog_messages', 'Local messages waiting to be replayed to the region, by queue.', ['queue']);
    this.queueOldestBacklogAge = gauge('queue_oldest_backlog_age_seconds', 'Age of the oldest message waiting to be replayed, by queue (absent when none waits).', ['queue']);
    this.replayState = gauge('replay_state', "The replayer's state: 1 for the current one.", ['state']);
    this.replayRate = gauge('replay_rate_messages_per_second', 'Messages replayed per second over the last 10 seconds.');
    this.replayEta = gauge('replay_eta_seconds', 'Time left to replay the backlog at the current rate (absent unless a replay runs).');
    this.replayWindow = gauge('replay_window_batches', 'Batches the congestion control lets be in flight to the region now.');
    this.replayWaits = gauge('replay_queue_waiting', "1 for a queue with a backlog whose replay waits (for the sync it depends on, or the region refusing it).", ['queue']);
    this.linkRate = gauge('link_bytes_per_second', 'The rate the path to the region delivered at best lately (absent before it was measured).');
    this.credentialsRefused = gauge('upstream_credentials_refused', "1 while the region refuses the edge's own credentials (or its clock), 0 otherwise (absent without an upstream).");
    this.syncState = gauge('sync_state', "The edge-to-region sync's state: 1 for the current one.", ['state']);
    this.syncPlanned = gauge('sync_items_planned', 'Items the current or last sync has to carry to the region.');
    this.syncDone = gauge('sync_items_done', 'Items the current or last sync has carried to the region so far.');
    this.syncOutcomes = gauge('sync_items', 'Items of the current or last sync by outcome (written, identical, conflict, skipped).', ['outcome']);
    this.agentsUp = gauge('fallback_agents_up', 'Fallback agents running, by stage.', ['stage']);
    this.conflicts = gauge('conflicts', 'Conflicts between the edge and the region on record, to be looked at.');
    this.storageState = gauge('storage_state', "The local store's state: 1 for the current one (ok, disk-full, store-full).", ['state']);
    this.storeSize = gauge('store_size_bytes', 'Bytes the local store (database and write-ahead log) holds.');
    this.storeMaxSize = gauge('store_max_size_bytes', 'The bound on the local store (absent when unbounded).');
    this.diskFree = gauge('disk_free_bytes', "Free bytes on the local store's disk.");
    this.diskReserve = gauge('disk_reserve_bytes', 'Bytes of disk kept free for draining the queues when the disk fills.');
    this.diskReserveHeld = gauge('disk_reserve_held', 'Whether the disk reserve file is held (1) or was given up because the disk filled (0).');

    // A constant 1 whose labels say what runs, for dashboards to join on and to see an upgrade land.
    gauge('build_info', 'The running holdfast: always 1, with its version and the Node version as labels.', ['version', 'node']).set({ version: VERSION, node: process.versions.node }, 1);

    this.registry = Registry.merge([...registers, processMetrics()]);
  }

  answered(action: string, input: Record<string, unknown>, output: Record<string, unknown>, facts: RequestFacts): void {
    this.carriedOut(action, facts);
    const { queue, sent, received, deleted } = messagesMoved(action, input, output);
    // Only an answer that moved messages names a queue here: one that exists, so no client makes up series.
    if (queue === undefined) return;
    if (sent > 0) this.sent.inc({ queue }, sent);
    if (received > 0) this.received.inc({ queue }, received);
    if (deleted > 0) this.deleted.inc({ queue }, deleted);
  }

  failed(action: string | undefined, code: string, facts: RequestFacts): void {
    if (action !== undefined) this.carriedOut(action, facts);
    this.errors.inc({ action: actionLabel(action), code: codeLabel(code) });
  }

  /** Each path the request took counts; its time goes to the path it ended on. A request refused before it was carried out has none. */
  private carriedOut(action: string, { paths, seconds }: RequestFacts): void {
    const label = actionLabel(action);
    for (const path of paths) {
      this.requests.inc({ action: label, path });
      this.byPath[path] += 1;
    }
    const last = paths.at(-1);
    if (last !== undefined) this.durations.observe({ action: label, path: last }, seconds);
  }

  messagesReplayed(queue: string, count: number): void {
    this.replayed.inc({ queue }, count);
  }

  messagesPossiblyDuplicated(queue: string, count: number): void {
    this.possiblyDuplicated.inc({ queue }, count);
  }

  agentRestarted(stage: string): void {
    this.restarts.inc({ stage });
  }

  messagesExpired(queue: string, count: number): void {
    this.expired.inc({ queue }, count);
    this.expiredByQueue.set(queue, this.expiredMessages(queue) + count);
  }

  /** Messages of a queue expired since start, for the status document's queues. */
  expiredMessages(queue: string): number {
    return this.expiredByQueue.get(queue) ?? 0;
  }

  /** SQS requests carried out since start each way, for the status document's `requests`. */
  requestsCarriedOut(): { upstream: number; local: number } {
    return { ...this.byPath };
  }

  /** The exposition of everything, its gauges as of `status`. */
  async exposition(status: EdgeStatus): Promise<string> {
    this.setGauges(status);
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private setGauges(status: EdgeStatus): void {
    stateSet(this.mode, 'mode', EDGE_MODES, status.mode);
    this.modeSince.set(Date.parse(status.since) / 1000);
    stateSet(this.breaker, 'state', BREAKER_STATES, status.breaker);
    setOrRemove(this.upstreamLastSuccess, seconds(status.upstream?.lastSuccessAt ?? null));
    setOrRemove(this.upstreamLastFailure, seconds(status.upstream?.lastFailureAt ?? null));
    setOrRemove(this.credentialsRefused, status.upstream ? (status.upstream.credentialsRefused === null ? 0 : 1) : null);

    for (const gauge of [this.queueMessages, this.queueBacklog, this.queueOldestBacklogAge, this.replayWaits]) gauge.reset();
    for (const queue of status.queues) {
      this.queueMessages.set({ queue: queue.name, state: 'visible' }, queue.local.visible);
      this.queueMessages.set({ queue: queue.name, state: 'in_flight' }, queue.local.inFlight);
      this.queueMessages.set({ queue: queue.name, state: 'delayed' }, queue.local.delayed);
      this.queueBacklog.set({ queue: queue.name }, queue.backlog);
      if (queue.oldestBacklogAgeSeconds !== null) this.queueOldestBacklogAge.set({ queue: queue.name }, queue.oldestBacklogAgeSeconds);
      if (queue.replayWaits !== null) this.replayWaits.set({ queue: queue.name }, 1);
    }

    stateSet(this.replayState, 'state', REPLAY_STATES, status.replay?.state ?? null);
    setOrRemove(this.replayRate, status.replay?.rate ?? null);
    setOrRemove(this.replayEta, status.replay?.etaSeconds ?? null);
    setOrRemove(this.replayWindow, status.replay?.window ?? null);
    setOrRemove(this.linkRate, status.replay?.linkBytesPerSecond ?? null);

    const { sync } = status;
    stateSet(this.syncState, 'state', SYNC_STATES, sync?.state ?? null);
    setOrRemove(this.syncPlanned, sync?.total ?? null);
    setOrRemove(this.syncDone, sync?.done ?? null);
    this.syncOutcomes.reset();
    if (sync) {
      this.syncOutcomes.set({ outcome: 'written' }, sync.written);
      this.syncOutcomes.set({ outcome: 'identical' }, sync.identical);
      this.syncOutcomes.set({ outcome: 'conflict' }, sync.conflicts);
      this.syncOutcomes.set({ outcome: 'skipped' }, sync.skipped);
    }

    this.agentsUp.reset();
    for (const agent of status.agents) this.agentsUp.inc({ stage: agent.stage }, agent.state === 'running' ? 1 : 0);
    this.conflicts.set(status.conflictCount);

    const { storage } = status;
    if (!storage) return;
    stateSet(this.storageState, 'state', STORAGE_STATES, storage.state);
    this.storeSize.set(storage.storeBytes);
    setOrRemove(this.storeMaxSize, storage.maxStoreBytes);
    this.diskFree.set(storage.diskFreeBytes);
    this.diskReserve.set(storage.diskReserveBytes);
    this.diskReserveHeld.set(storage.reserveHeld ? 1 : 0);
  }
}

/** One series per possible state, 1 for the current one; none at all when the state does not apply. */
function stateSet<L extends string>(gauge: Gauge<L>, label: L, states: readonly string[], current: string | null): void {
  gauge.reset();
  if (current === null) return;
  for (const state of states) gauge.set({ [label]: state } as Record<L, string>, state === current ? 1 : 0);
}

/** A value that may not apply: no sample rather than a misleading 0. */
function setOrRemove(gauge: Gauge, value: number | null): void {
  if (value === null) gauge.remove({});
  else gauge.set(value);
}

// Node's process metrics describe the process, not one shim: collected once, shared by every
// shim's registry (several run in one process in tests).
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}
