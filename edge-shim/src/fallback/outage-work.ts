import { SQSClient } from '@aws-sdk/client-sqs';
import type { AwsCredentialIdentity } from '@smithy/types';
import type { Logger } from 'pino';
import { type RegionTables, stageQueueNames } from '../../../functions/src/edge/index.js';
import type { LinkEstimates } from '../hybrid/link/estimates.js';
import type { OutageParticipant } from '../hybrid/outage.js';
import type { MetricsRecorder } from '../observability/metrics.js';
import { Supervisor } from './supervisor/supervisor.js';
import { SyncBack } from './sync-back.js';
import { type LoadedWorkflow, resolveWorkflowQueues } from './workflow.js';

export interface FallbackSettings {
  readonly workflow: LoadedWorkflow;
  /** This edge site's id: its writer id in counters, and the mark on every step it runs. */
  readonly siteId: string;
  /** The fallback agents' database: a file (SQLite, WAL) next to the shim's, or the PostgreSQL URL of the site's shared database. */
  readonly database: string;
  /** Variables for every agent: gateway URLs, the edge limits. */
  readonly environment: Readonly<Record<string, string>>;
  /** The workflow's tables in the region, which the sync writes into. */
  readonly regionTables: RegionTables;
  /** The region's DynamoDB endpoint, when not AWS's own (an emulator). */
  readonly regionDynamoDbEndpoint?: string;
  /** Writes in flight during the sync. */
  readonly syncConcurrency: number;
  /** Options of the supervisor (timeouts, standby), as the shim's configuration gives them. */
  readonly supervisor?: { readonly warmStandby?: boolean; readonly stopGraceMs?: number; readonly hangTimeoutMs?: number };
}

/** The shim as its agents call it: its loopback URL, its region and a credential it accepts. */
export interface ShimConnection {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: AwsCredentialIdentity;
}

export interface FallbackContext {
  readonly settings: FallbackSettings;
  /** The shim's own queues: what the agents received and never finished is released once they are gone. */
  readonly local: { releaseInFlight(queueName: string): Promise<number> };
  /** The shim the agents poll, known once it listens. */
  readonly shim: Promise<ShimConnection>;
  /** Where the sync writes: the region and its credentials (the SDK's chain when absent). */
  readonly region: { readonly name: string; readonly credentials?: AwsCredentialIdentity };
  /** What the edge knows of its path to the region: the sync's writes go at its pace. */
  readonly link: LinkEstimates;
  /** The least time a write of the sync is given. */
  readonly minTimeoutMs: number;
  readonly metrics: MetricsRecorder;
  readonly logger: Logger;
  /** The edge's clock (the engine's), which the sync's times are told by, as the edge's transitions are. */
  readonly clock: () => number;
}

// While offline and the workflow's queues are not known at the edge yet, look again this often.
const QUEUES_RETRY_MS = 5_000;
// A sync the edge runs on its own (work of an earlier run found at start) is tried again after
// this, doubling up to the most while it fails.
const SYNC_RETRY_MS = 10_000;
const SYNC_RETRY_MAX_MS = 5 * 60_000;

/**
 * The edge's own work during an outage: the workflow's fallback agents, supervised, while the
 * shim is offline; and, when the region returns, first stopping them (they finish or give back
 * what they hold), then syncing what they did into the region's tables, before the replay of the
 * tasks that depend on it. A sync that fails (the region gone again) leaves the edge offline and its
 * agents started again; the next recovery syncs again, resuming where it stopped.
 */
export function startFallbackWork(context: FallbackContext): OutageParticipant {
  const { settings, metrics } = context;
  const logger = context.logger.child({ component: 'fallback' });
  let supervisor: Supervisor | undefined;
  let starting: NodeJS.Timeout | undefined;
  let offline = false;
  let closed = false;
  // Whether the agents' work has yet to reach the region: until known, as if it had. Each outage
  // (the agents at work again) starts a new generation, which a sync begun before cannot settle.
  let unsynced = true;
  let generation = 0;
  let syncing: Promise<void> | undefined;
  let syncRetry: NodeJS.Timeout | undefined;
  const workflowQueues = new Set(
    settings.workflow.workflow.stages.flatMap((stage) => Object.values(stageQueueNames(settings.workflow.workflow, stage))),
  );
  const sync = new SyncBack({
    database: settings.database,
    tables: settings.regionTables,
    concurrency: settings.syncConcurrency,
    link: context.link,
    minTimeoutMs: context.minTimeoutMs,
    region: { ...context.region, dynamoDbEndpoint: settings.regionDynamoDbEndpoint },
    logger,
    clock: context.clock,
  });
  // The conflicts an earlier run kept, on the status from the start: read from an SQLite file
  // before the shim serves any request, from PostgreSQL once the database answers.
  sync.readConflicts().catch((error: unknown) => logger.warn({ err: error }, 'cannot read the sync conflicts kept; the status shows them after the next sync'));

  /** One sync at a time: the recovery's, or the one the edge runs for work an earlier run left. */
  function syncOnce(): Promise<void> {
    const synced = generation;
    syncing ??= sync.run().then(
      () => {
        if (generation === synced) unsynced = false;
        syncing = undefined;
      },
      (error: unknown) => {
        syncing = undefined;
        throw error;
      },
    );
    return syncing;
  }

  /**
   * Work of the agents that never reached the region (a sync that failed, then a restart) is
   * synced before the replay of the workflow's queues, whether the edge starts online or offline:
   * online, the edge syncs on its own, again and again until it succeeds or an outage comes.
   */
  async function syncLeftovers(delayMs = SYNC_RETRY_MS): Promise<void> {
    if (closed || offline || !unsynced) return;
    try {
      await syncOnce();
    } catch (error) {
      logger.error({ err: error, retryInSeconds: delayMs / 1000 }, `the fallback agents' work of an earlier run cannot reach the region yet; the replay of the workflow's queues waits for it: ${(error as Error).message}`);
      syncRetry = setTimeout(() => void syncLeftovers(Math.min(SYNC_RETRY_MAX_MS, delayMs * 2)), delayMs);
    }
  }

  /**
   * With no agent left, nothing the agents received is being worked on: a receive whose answer an
   * agent never read (it was stopped or killed as the answer came) would otherwise keep its
   * messages from the replay for their whole visibility timeout.
   */
  async function releaseAgentQueues(): Promise<void> {
    for (const stage of settings.workflow.workflow.stages.filter((candidate) => candidate.runsAtEdge)) {
      const queue = stageQueueNames(settings.workflow.workflow, stage).queue;
      const released = await context.local.releaseInFlight(queue);
      if (released > 0) logger.info({ queue, released }, 'messages the stopped agents had received are visible again, for the replay');
    }
  }

  // Agents of an earlier run died with it: what they held is released before any agent starts.
  const startup = releaseAgentQueues().catch((error: unknown) => {
    logger.warn({ err: error }, 'cannot release what the agents of an earlier run held; it comes back after its visibility timeout');
  });

  /** The supervisor, created once the workflow's queues are known at the shim; throws while they are not. */
  async function workflowSupervisor(): Promise<Supervisor> {
    if (supervisor) return supervisor;
    const shim = await context.shim;
    const sqs = new SQSClient({ endpoint: shim.endpoint, region: shim.region, credentials: shim.credentials });
    try {
      const { queues, humanReviewQueueUrl } = await resolveWorkflowQueues(sqs, settings.workflow.workflow);
      if (!supervisor) {
        // Another caller may have created it while the queues were being resolved.
        supervisor = new Supervisor({
          workflow: settings.workflow.workflow,
          entryRoot: settings.workflow.entryRoot,
          siteId: settings.siteId,
          database: settings.database,
          shim,
          queues,
          humanReviewQueueUrl,
          environment: settings.environment,
          ...settings.supervisor,
          logger,
        });
        supervisor.on('restart', (restart) => metrics.agentRestarted(restart.stage));
      }
      return supervisor;
    } finally {
      sqs.destroy();
    }
  }

  /** Readies the agents on standby while the region is there, so that an outage finds them loaded. */
  async function prepareAgents(): Promise<void> {
    try {
      const ready = await workflowSupervisor();
      if (!closed) ready.prepare();
    } catch (error) {
      // Started when the edge goes offline instead, as long as the queues are known by then.
      logger.debug({ err: error }, 'fallback agents not readied ahead of an outage');
    }
  }

  async function startAgents(): Promise<void> {
    starting = undefined;
    await startup;
    if (!offline || supervisor?.started) return;
    try {
      const ready = await workflowSupervisor();
      if (offline) ready.start();
    } catch (error) {
      logger.error({ err: error, retryInMs: QUEUES_RETRY_MS }, 'cannot start the fallback agents yet: declare the workflow\'s queues (--queues) so that the edge knows them offline');
      if (offline) starting = setTimeout(() => void startAgents(), QUEUES_RETRY_MS);
    }
  }

  void startup.then(prepareAgents);
  void startup
    .then(() => sync.pending())
    .then(
      (pending) => {
        unsynced = pending > 0;
        if (unsynced) logger.warn({ records: pending }, 'the fallback agents\' work of an earlier run has yet to reach the region: it is synced before the workflow\'s queues are replayed');
        return syncLeftovers();
      },
      (error: unknown) => logger.error({ err: error }, 'cannot read what the fallback agents\' work has yet to sync; the workflow\'s queues are replayed after the next sync'),
    );
  return {
    offline() {
      offline = true;
      unsynced = true;
      generation += 1;
      clearTimeout(syncRetry);
      void startAgents();
    },
    async beforeReplay() {
      offline = false;
      clearTimeout(starting);
      if (supervisor?.started) {
        await supervisor.stop();
        supervisor.prepare();
      }
      try {
        await releaseAgentQueues();
        // A sync begun before this outage's work (an earlier run's) does not cover it: sync again.
        do await syncOnce();
        while (unsynced && !closed);
      } catch (error) {
        // Still offline as far as the edge is concerned: the agents go back to work meanwhile.
        offline = true;
        void startAgents();
        throw error;
      }
    },
    holdsReplayOf: (queueName) => unsynced && workflowQueues.has(queueName),
    // Process ids stay in: they tell nothing an operator acts on, and much to whoever reads the page.
    status: () => ({ agents: supervisor?.status().map(({ pid: _pid, ...agent }) => agent) ?? [], sync: sync.status(), conflicts: sync.conflicts() }),
    conflict: (id) => sync.conflict(id),
    async close() {
      offline = false;
      closed = true;
      clearTimeout(starting);
      clearTimeout(syncRetry);
      await syncing?.catch(() => {});
      await supervisor?.stop();
      await sync.close();
    },
  };
}
