import type { Logger } from 'pino';
import { reportActivity, tellEach } from './activity.js';
import { dirname, join } from 'node:path';
import { type ShimConfig, DEFAULTS, regionTableNames, validateConfig } from './config.js';
import { type FallbackSettings, type ShimConnection, startFallbackWork } from './fallback/outage-work.js';
import { readAgentEnvironment } from './fallback/environment.js';
import { DEFAULT_WORKFLOW_MODULE, DEFAULT_WORKFLOW_ROOT, loadWorkflowModule, workflowQueues } from './fallback/workflow.js';
import { type HttpTimeouts, createShimServer } from './http/server.js';
import { createLogger } from './logger.js';
import { Metrics } from './observability/metrics.js';
import { type OperatorPage, operatorPages } from './observability/pages.js';
import { standaloneStatus } from './observability/standalone-status.js';
import { startCheckpointer } from './sqs/checkpointer.js';
import { openDatabase } from './sqs/database.js';
import { lockDatabase } from './sqs/database-lock.js';
import { SqsService } from './sqs/service.js';
import { StorageGuard } from './sqs/storage-guard.js';
import type { SqsBackend } from './backend.js';
import { readQueuesFile } from './hybrid/declared-queues.js';
import { LinkEstimates } from './hybrid/link/estimates.js';
import { type HybridEdge, startHybridEdge } from './hybrid/start.js';
import type { EdgeStatus, StatusProvider } from './observability/status.js';

export interface StartOptions extends Partial<ShimConfig> {
  /** A logger to use instead of one at `logLevel`. */
  readonly logger?: Logger;
  /**
   * Milliseconds since the epoch; tests pass a clock they can move, and it rules as given. By
   * default the engine's clock (see `EngineClock`). Signatures are judged by the wall clock.
   */
  readonly clock?: () => number;
  /** The wall clock the engine's clock follows when no `clock` is given; tests pass one that jumps. */
  readonly wallClock?: () => number;
  readonly sweepIntervalMs?: number;
  /** Limits on receiving a request; tests shorten them. */
  readonly httpTimeouts?: HttpTimeouts;
  /** How long close() waits for requests in flight before cutting their connections. */
  readonly shutdownGraceMs?: number;
  /** How often the activity line is logged (when there was activity); a minute by default. */
  readonly activityIntervalMs?: number;
  /** Credentials for the region (tests); otherwise the AWS SDK's default provider chain. */
  readonly upstreamCredentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  /** Operator pages besides (or instead of) /status, /metrics and the status page, by path. */
  readonly pages?: ReadonlyMap<string, OperatorPage>;
}

export interface RunningShim {
  /** Base URL to give SQS clients as their endpoint, e.g. http://127.0.0.1:9324. */
  readonly url: string;
  readonly port: number;
  /** The local store. */
  readonly service: SqsService;
  /** What the HTTP front calls: the local store, or the hybrid edge in front of it. */
  readonly backend: SqsBackend;
  /** The hybrid edge, when the shim runs in front of a region (`upstream`). */
  readonly hybrid: HybridEdge | undefined;
  /** The document of GET /status. */
  status(): Promise<EdgeStatus>;
  /** Stops accepting, lets requests in flight finish (long polls answer at once), closes the database. */
  close(): Promise<void>;
}

const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

/** What the fallback agents need, from the configuration: the workflow loaded, its environment, the region's tables. */
async function fallbackSettings(config: ShimConfig): Promise<FallbackSettings> {
  const workflow = await loadWorkflowModule(config.workflow ?? DEFAULT_WORKFLOW_MODULE, {
    entryRoot: config.workflowRoot ?? (config.workflow === undefined ? DEFAULT_WORKFLOW_ROOT : undefined),
  });
  return {
    workflow,
    siteId: config.siteId!,
    database: config.edgeDbFile ?? join(dirname(config.dbFile), 'edge-agents.db'),
    environment: config.agentEnvFile ? readAgentEnvironment(config.agentEnvFile) : {},
    regionTables: regionTableNames(workflow.workflow.name, config.regionTables),
    regionDynamoDbEndpoint: config.regionDynamoDb,
    syncConcurrency: config.replayConcurrency,
    supervisor: { warmStandby: config.agentStandby },
  };
}

/** Starts the edge shim: the same server `npm start` runs, for tests and embedding. */
export async function startShim(options: StartOptions = {}): Promise<RunningShim> {
  const {
    logger: givenLogger,
    clock: givenClock,
    wallClock,
    sweepIntervalMs,
    httpTimeouts,
    shutdownGraceMs = DEFAULT_SHUTDOWN_GRACE_MS,
    activityIntervalMs,
    upstreamCredentials,
    pages: givenPages,
    ...overrides
  } = options;
  // An option given as undefined means "the default", as it does for the CLI.
  const given = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
  const config = validateConfig({ ...DEFAULTS, ...given });
  const logger = givenLogger ?? createLogger(config.logLevel);
  // The fallback agents' workflow is loaded first: a workflow that cannot run fails the start, not an outage.
  const fallback = config.siteId === undefined ? undefined : await fallbackSettings(config);
  // One shim per database: a second one is refused before it reads or writes anything.
  const lock = lockDatabase(config.dbFile);
  const db = (() => {
    try {
      return openDatabase(config.dbFile, config.durability, { clock: givenClock, integrityCheck: config.integrityCheck });
    } catch (error) {
      lock.release();
      throw error;
    }
  })();
  const checkpointer = startCheckpointer(db, config.dbFile, config.durability, logger);
  const storage = new StorageGuard(config.dbFile, config, logger);
  const metrics = new Metrics();
  const service = new SqsService({
    db,
    storage,
    region: config.region,
    accountId: config.accountId,
    logger,
    clock: givenClock,
    wallClock,
    sweepIntervalMs,
    // A hybrid edge's store is backlog owed to the region: it expires only when asked to, and loudly.
    expireMessages: config.upstream === undefined || config.backlogRetention === 'sqs',
    expiryLogLevel: config.upstream === undefined ? 'info' : 'warn',
    expiryRecorder: metrics,
  });
  // Every time of the edge is the engine's, so that ages and deadlines agree with its messages'.
  const clock = service.clock;
  const startedAt = clock();
  // The fallback agents call the shim: its address is known once it listens.
  let listening!: { resolve(connection: ShimConnection): void; reject(error: Error): void };
  const shimConnection = new Promise<ShimConnection>((resolve, reject) => (listening = { resolve, reject }));
  shimConnection.catch(() => {});
  // What the edge learns of its path to the region: the replay and the sync go at its pace.
  const link = new LinkEstimates({ clock });
  const participant =
    config.upstream && fallback
      ? startFallbackWork({
          settings: fallback,
          local: service,
          shim: shimConnection,
          region: { name: config.upstreamRegion!, ...(upstreamCredentials ? { credentials: upstreamCredentials } : {}) },
          link,
          minTimeoutMs: config.upstreamTimeoutMs,
          metrics,
          logger,
        })
      : undefined;
  const hybrid = config.upstream
    ? await startHybridEdge(
        { local: service, db, link, participant, metrics, logger, clock },
        {
          ...config,
          upstream: config.upstream,
          upstreamRegion: config.upstreamRegion!,
          upstreamCredentials,
          // The fallback agents' queues are known at the edge from the start, as the queues file's are.
          queues: [...(config.queuesFile ? readQueuesFile(config.queuesFile) : []), ...(fallback ? workflowQueues(fallback.workflow.workflow) : [])],
        },
      )
    : undefined;
  const backend: SqsBackend = hybrid?.router ?? service;
  const status: StatusProvider = hybrid
    ? () => hybrid.status()
    : standaloneStatus(service, { startedAt, requests: () => metrics.requestsCarriedOut(), expired: (queue) => metrics.expiredMessages(queue) });
  const pages = new Map([...operatorPages({ status, metrics }), ...(givenPages ?? [])]);
  const activity = reportActivity(logger, activityIntervalMs);
  const http = createShimServer({
    backend,
    pages,
    logger,
    region: config.region,
    credentials: config.credentials,
    timeouts: httpTimeouts,
    // The hybrid backend tells the metrics itself which way each request went.
    activity: tellEach(activity, metrics.httpActivity(hybrid ? undefined : 'local')),
  });
  // After service.close(): commit what is queued, then close the database.
  const closeStorage = async () => {
    await participant?.close();
    await hybrid?.close();
    await service.drain();
    await checkpointer.stop();
    storage.stop();
    db.close();
    lock.release();
  };
  const address = await http.listen(config.port, config.host).catch(async (error: unknown) => {
    listening.reject(error as Error);
    service.close();
    activity.stop();
    await closeStorage();
    throw error;
  });
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  // The agents call the shim on this machine: on loopback when it listens on every address.
  const unspecified = address.address === '0.0.0.0' || address.address === '::';
  listening.resolve({
    endpoint: unspecified ? `http://127.0.0.1:${address.port}` : url,
    region: config.region,
    credentials: config.credentials[0] ?? { accessKeyId: 'fallback-agent', secretAccessKey: 'unchecked' },
  });
  logger.info(
    { url, db: config.dbFile, durability: config.durability, authenticated: config.credentials.length > 0, accessKeyIds: config.credentials.map((c) => c.accessKeyId) },
    `edge shim listening on ${url}`,
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    service,
    backend,
    hybrid,
    status: async () => status(),
    close() {
      closing ??= (async () => {
        const drained = http.close(shutdownGraceMs);
        // After the server has marked its responses `connection: close`: long polls now answer.
        service.close();
        hybrid?.router.endWaits();
        await drained;
        activity.stop();
        await closeStorage();
        logger.info('edge shim stopped');
      })();
      return closing;
    },
  };
}
