import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { reportActivity, tellEach } from './activity.js';
import { dirname } from 'node:path';
import { type ShimConfig, ConfigError, DEFAULTS, edgeDatabase, isLoopback, withoutPassword, readAdminToken, readCredentialsFile, regionTableNames, shimRegion, validateConfig } from './config.js';
import { type FallbackSettings, type ShimConnection, startFallbackWork } from './fallback/outage-work.js';
import { syncWritesCeiling } from './fallback/sync-back.js';
import { readAgentEnvironment } from './fallback/environment.js';
import { DEFAULT_WORKFLOW_MODULE, DEFAULT_WORKFLOW_ROOT, type LoadedWorkflow, loadWorkflowModule, workflowQueues } from './fallback/workflow.js';
import { createAdminServer } from './http/admin-server.js';
import { type Certificate, type TlsFiles, loadCertificate } from './http/listener.js';
import { type HttpTimeouts, createShimServer } from './http/server.js';
import { createLogger } from './logger.js';
import { StatusHistory } from './observability/history.js';
import { Metrics } from './observability/metrics.js';
import { type OperatorPage, operatorPages } from './observability/pages.js';
import { standaloneStatus } from './observability/standalone-status.js';
import { startCheckpointer } from './sqs/checkpointer.js';
import { openDatabase, refuseNewerFile } from './sqs/database.js';
import { EDGE_SCHEMA_VERSION, isPostgresLocation } from '../../functions/src/edge/index.js';
import { type StackWiring, deployedWorkflow, readStackOutputs, withStackWiring } from './stack-outputs.js';
import { lockDatabase } from './sqs/database-lock.js';
import { SqsService } from './sqs/service.js';
import { SqliteEngine, type SqliteStorage } from './sqs/sqlite-engine.js';
import { PostgresEngine } from './sqs/postgres/engine.js';
import { StorageGuard } from './sqs/storage-guard.js';
import type { SqsBackend } from './backend.js';
import { AuthorizingBackend } from './authz/authorizing-backend.js';
import { AccessPolicy } from './authz/policy.js';
import { createDeclaredQueues, readQueuesFile } from './hybrid/declared-queues.js';
import { LinkEstimates } from './hybrid/link/estimates.js';
import { type HybridEdge, startHybridEdge } from './hybrid/start.js';
import type { SiteStore } from './hybrid/site/ports.js';
import { postgresSite } from './hybrid/site/postgres-site.js';
import { sqliteSite } from './hybrid/site/sqlite-site.js';
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
  /** How long a query to a PostgreSQL store may go unanswered before the database is taken as unreachable; tests shorten it. */
  readonly databaseQueryTimeoutMs?: number;
  /** Limits on receiving a request; tests shorten them. */
  readonly httpTimeouts?: HttpTimeouts;
  /** How long close() waits for requests in flight before cutting their connections. */
  readonly shutdownGraceMs?: number;
  /** How often the activity line is logged (when there was activity); a minute by default. */
  readonly activityIntervalMs?: number;
  /** How often the status page's history samples the status; 5 s by default. */
  readonly historyIntervalMs?: number;
  /** Credentials for the region (tests); otherwise the AWS SDK's default provider chain. */
  readonly upstreamCredentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  /** Operator pages of the admin listener besides (or instead of) /status, /metrics and the status page, by path. */
  readonly pages?: ReadonlyMap<string, OperatorPage>;
}

export interface RunningShim {
  /** Base URL to give SQS clients as their endpoint, e.g. http://127.0.0.1:9324. */
  readonly url: string;
  readonly port: number;
  /** Base URL of the admin listener: /status, /metrics, the status page, /conflicts/ID, /health. */
  readonly adminUrl: string;
  /** The local store. */
  readonly service: SqsService;
  /** The same, when the store is SQLite: with what only SQLite has (its database, reads from memory). */
  readonly sqlite: SqliteService | undefined;
  /** What the HTTP front calls: the local store, or the hybrid edge in front of it. */
  readonly backend: SqsBackend;
  /** The hybrid edge, when the shim runs in front of a region (`upstream`). */
  readonly hybrid: HybridEdge | undefined;
  /** The document of GET /status. */
  status(): Promise<EdgeStatus>;
  /** Reads the TLS certificate and key again (on SIGHUP): new connections get them; if they are not usable, the old ones stay, and it is logged. */
  reloadCertificates(): void;
  /** Stops accepting, lets requests in flight finish (long polls answer at once), closes the database. */
  close(): Promise<void>;
}

/** The SQS semantics on the embedded engine. */
export type SqliteService = SqsService<SqliteStorage, SqliteEngine>;

const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

/** This node's name in the site's status: its host, and a mark of this run (two nodes may share a host). */
function siteNodeName(): string {
  return `${hostname()}/${randomBytes(3).toString('hex')}`;
}

/**
 * The workflow whose queues the edge knows from the start, and whose fallback agents it runs (with a
 * site id): under the stack's name for it when the edge is wired from the stack's outputs.
 */
async function edgeWorkflow(config: ShimConfig, wiring: StackWiring | undefined): Promise<LoadedWorkflow | undefined> {
  if (config.siteId === undefined && wiring === undefined) return undefined;
  const loaded = await loadWorkflowModule(config.workflow ?? DEFAULT_WORKFLOW_MODULE, {
    entryRoot: config.workflowRoot ?? (config.workflow === undefined ? DEFAULT_WORKFLOW_ROOT : undefined),
  });
  return wiring ? { ...loaded, workflow: deployedWorkflow(loaded.workflow, wiring) } : loaded;
}

/** What the fallback agents need, from the configuration: the workflow loaded, its environment, the region's tables. */
function fallbackSettings(config: ShimConfig, workflow: LoadedWorkflow): FallbackSettings {
  return {
    workflow,
    siteId: config.siteId!,
    database: edgeDatabase(config),
    environment: config.agentEnvFile ? readAgentEnvironment(config.agentEnvFile) : {},
    regionTables: regionTableNames(workflow.workflow.name, config.regionTables),
    regionDynamoDbEndpoint: config.regionDynamoDb,
    syncConcurrency: syncWritesCeiling(config.replayConcurrency),
    supervisor: { warmStandby: config.agentStandby },
  };
}

/** Warns when others than the shim's user may read a directory that holds its databases. */
function warnIfShared(directory: string, logger: Logger): void {
  const mode = statSync(directory).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    logger.warn({ directory, mode: `0${mode.toString(8)}` }, `other users may read ${directory}, which holds the messages: chmod 700 it`);
  }
}

/** The local store: the SQS semantics on the engine the database option names. */
interface LocalStore {
  readonly service: SqsService;
  /** The same, when the store is SQLite. */
  readonly sqlite: SqliteService | undefined;
  /** Whether the store has a queue, answered from memory (SQLite): the access policy's "known" queues. */
  readonly knows: ((name: string) => boolean) | undefined;
  /** Opens what the hybrid edge keeps beside the queues, on the same engine. */
  openSite(nodeName: string): Promise<SiteStore>;
  /** After service.close(): commits what is queued and closes the database. */
  close(): Promise<void>;
}

interface StoreParts {
  readonly region: string;
  readonly logger: Logger;
  readonly clock: (() => number) | undefined;
  readonly wallClock: (() => number) | undefined;
  readonly sweepIntervalMs: number | undefined;
  readonly databaseQueryTimeoutMs: number | undefined;
  readonly metrics: Metrics;
}

/** Opens the store: PostgreSQL for a `postgres://` URL, else the SQLite file, held for this shim alone. */
async function openLocalStore(config: ShimConfig, parts: StoreParts): Promise<LocalStore> {
  const { region, logger, clock, wallClock, sweepIntervalMs, databaseQueryTimeoutMs, metrics } = parts;
  // A hybrid edge's store is backlog owed to the region: it expires only when asked to, and loudly.
  const expireMessages = config.upstream === undefined || config.backlogRetention === 'sqs';
  const semantics = {
    logger,
    sweepIntervalMs,
    expiryLogLevel: config.upstream === undefined ? ('info' as const) : ('warn' as const),
    expiryRecorder: metrics,
  };
  if (isPostgresLocation(config.dbFile)) {
    const url = config.dbFile;
    const engine = await PostgresEngine.open({ url, region, accountId: config.accountId, logger, clock, expireMessages, queryTimeoutMs: databaseQueryTimeoutMs });
    const service = new SqsService({ engine, ...semantics });
    return {
      service,
      sqlite: undefined,
      knows: undefined,
      openSite: (nodeName) => postgresSite({ url, region, accountId: config.accountId, nodeName, logger, clock: service.clock }),
      close: () => service.drain(),
    };
  }
  // One shim per database: a second one is refused before it reads or writes anything.
  const lock = lockDatabase(config.dbFile);
  const db = (() => {
    try {
      return openDatabase(config.dbFile, config.durability, { clock, integrityCheck: config.integrityCheck });
    } catch (error) {
      lock.release();
      throw error;
    }
  })();
  if (config.dbFile !== ':memory:') warnIfShared(dirname(config.dbFile), logger);
  const checkpointer = startCheckpointer(db, config.dbFile, config.durability, logger);
  const storage = new StorageGuard(config.dbFile, db, config, logger);
  const engine = new SqliteEngine({
    db,
    storage,
    region,
    accountId: config.accountId,
    logger,
    clock,
    wallClock,
    expireMessages,
  });
  const service: SqliteService = new SqsService({ engine, ...semantics });
  return {
    service,
    sqlite: service,
    knows: (name) => engine.queues.byName(name) !== undefined,
    openSite: async (nodeName) => sqliteSite(engine, nodeName, service.clock),
    async close() {
      await service.drain();
      await checkpointer.stop();
      storage.stop();
      db.close();
      lock.release();
    },
  };
}

/** Starts the edge shim: the same server `npm start` runs, for tests and embedding. */
export async function startShim(options: StartOptions = {}): Promise<RunningShim> {
  const {
    logger: givenLogger,
    clock: givenClock,
    wallClock,
    sweepIntervalMs,
    databaseQueryTimeoutMs,
    httpTimeouts,
    shutdownGraceMs = DEFAULT_SHUTDOWN_GRACE_MS,
    activityIntervalMs,
    historyIntervalMs,
    upstreamCredentials,
    pages: givenPages,
    ...overrides
  } = options;
  // An option given as undefined means "the default", as it does for the CLI.
  const given: ShimConfig = { ...DEFAULTS, ...Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined)) };
  const wiring = given.stackOutputs === undefined ? undefined : readStackOutputs(given.stackOutputs);
  const config = validateConfig(wiring ? withStackWiring(given, wiring) : given);
  const logger = givenLogger ?? createLogger(config.logLevel);
  const region = shimRegion(config);
  // Files are read before anything is opened: a file that cannot be used fails the start.
  const credentials = [...config.credentials, ...(config.credentialsFile === undefined ? [] : readCredentialsFile(config.credentialsFile))];
  const adminToken = config.adminTokenFile === undefined ? undefined : readAdminToken(config.adminTokenFile);
  const tlsFiles: TlsFiles | undefined = config.tlsCert === undefined ? undefined : { certFile: config.tlsCert, keyFile: config.tlsKey! };
  const tls = tlsFiles && loadCertificate(tlsFiles);
  if (tls && config.publicUrl === undefined) {
    // Queue URLs then name the address reached (a Host is never echoed), which the certificate may not name.
    logger.warn('TLS without --public-url: queue URLs name the address each client reached; give the name the certificate is for as --public-url');
  }
  const declaredQueues = config.queuesFile ? readQueuesFile(config.queuesFile) : [];
  // On loopback the admin listener stays plain HTTP, for local tools; beyond it, its token travels.
  const adminTls = isLoopback(config.adminHost) ? undefined : tls;
  // The workflow is loaded first: a workflow that cannot run fails the start, not an outage.
  const workflow = await edgeWorkflow(config, wiring);
  const fallback = config.siteId === undefined ? undefined : fallbackSettings(config, workflow!);
  // The agents' database is opened only in an outage: one a newer holdfast wrote is refused now.
  if (fallback && !isPostgresLocation(fallback.database)) refuseNewerFile(fallback.database, EDGE_SCHEMA_VERSION);
  // Who may do what: the policy file, else the default of the mode (the edge guards its AWS identity).
  const policy = config.accessPolicy ? AccessPolicy.fromFile(config.accessPolicy) : config.upstream ? AccessPolicy.defaultForEdge() : AccessPolicy.defaultForStandalone();
  if (isPostgresLocation(config.dbFile) && !config.upstream && policy.coversKnownQueues()) {
    throw new ConfigError('grants on "known" queues need the queues in memory, which a standalone store on PostgreSQL does not keep: name the queues in the access policy');
  }
  const metrics = new Metrics();
  const store = await openLocalStore(config, { region, logger, clock: givenClock, wallClock, sweepIntervalMs, databaseQueryTimeoutMs, metrics });
  const { service } = store;
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
          clock,
        })
      : undefined;
  const hybrid = config.upstream
    ? await startHybridEdge(
        { local: service, site: await store.openSite(siteNodeName()), link, participant, metrics, logger, clock },
        {
          ...config,
          upstream: config.upstream,
          upstreamRegion: config.upstreamRegion!,
          upstreamCredentials,
          // The workflow's queues are known at the edge from the start, as the queues file's are.
          queues: [...declaredQueues, ...(workflow ? workflowQueues(workflow.workflow) : [])],
        },
      )
    : undefined;
  // A hybrid edge knows the site's queues from its view of them (on PostgreSQL, read again every second).
  const known = hybrid
    ? { knows: (name: string) => hybrid.view.queue(name) !== undefined, refresh: () => hybrid.view.refresh(), existsBeyond: (name: string) => hybrid.region.exists(name) }
    : { knows: (name: string) => store.knows?.(name) === true };
  const backend: SqsBackend = new AuthorizingBackend(hybrid?.router ?? service, policy, known, hybrid ? config.accountId : undefined);
  const status: StatusProvider = hybrid
    ? () => hybrid.status()
    : standaloneStatus(service, { startedAt, requests: () => metrics.requestsCarriedOut(), expired: (queue) => metrics.expiredMessages(queue) });
  const history = new StatusHistory(status, { intervalMs: historyIntervalMs, logger });
  const pages = new Map([...operatorPages({ status, metrics, history, conflict: participant && ((id) => participant.conflict(id)) }), ...(givenPages ?? [])]);
  const admin = createAdminServer({ pages, health: () => backend.health(), token: adminToken, tls: adminTls, logger });
  const activity = reportActivity(logger, activityIntervalMs);
  const sqsServer = (serverTls: Certificate | undefined) =>
    createShimServer({
      backend,
      logger,
      region,
      credentials,
      publicUrl: config.publicUrl,
      tls: serverTls,
      timeouts: httpTimeouts,
      activity: tellEach(activity, metrics),
    });
  const http = sqsServer(tls);
  // The fallback agents call the shim on this machine, where the certificate's name does not
  // lead: over TLS they get a plain listener of their own on loopback, with the same checks.
  const agentsHttp = tls && participant ? sqsServer(undefined) : undefined;
  // After service.close(): commit what is queued, then close the database.
  const closeStorage = async () => {
    await participant?.close();
    await hybrid?.close();
    await store.close();
  };
  const listeners = await (async () => {
    // A standalone shim has the declared queues before it takes a request, as ElasticMQ does.
    if (!hybrid) await createDeclaredQueues(service, declaredQueues);
    const adminListening = await admin.listen(config.adminPort, config.adminHost);
    const sqsListening = await http.listen(config.port, config.host);
    return { admin: adminListening, sqs: sqsListening, agents: await agentsHttp?.listen(0, '127.0.0.1') };
  })().catch(async (error: unknown) => {
    listening.reject(error as Error);
    await Promise.all([admin.close(), http.close(0), agentsHttp?.close(0)]);
    service.close();
    activity.stop();
    history.stop();
    await closeStorage();
    throw error;
  });
  const { address, url } = listeners.sqs;
  const adminUrl = listeners.admin.url;
  // The agents call the shim on this machine: on loopback when it listens on every address.
  const unspecified = address.address === '0.0.0.0' || address.address === '::';
  listening.resolve({
    endpoint: listeners.agents?.url ?? (unspecified ? `http://127.0.0.1:${address.port}` : url),
    region,
    credentials: credentials[0] ?? { accessKeyId: 'fallback-agent', secretAccessKey: 'unchecked' },
  });
  logger.info(
    { url, adminUrl, db: withoutPassword(config.dbFile), durability: config.durability, authenticated: credentials.length > 0, accessKeyIds: credentials.map((c) => c.accessKeyId), tls: tls !== undefined },
    `edge shim listening on ${url} (operator pages on ${adminUrl})`,
  );
  if (!tls && !isLoopback(config.host)) {
    logger.warn({ url }, 'messages and receipt handles cross the network in clear: give --tls-cert and --tls-key, or put a TLS proxy in front');
  }
  if (!tls && !isLoopback(config.adminHost)) {
    logger.warn({ adminUrl }, 'the admin token and the operator pages cross the network in clear: give --tls-cert and --tls-key');
  }

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    adminUrl,
    service,
    sqlite: store.sqlite,
    backend,
    hybrid,
    status: async () => status(),
    reloadCertificates() {
      if (!tlsFiles) {
        logger.info('nothing to reload: the shim speaks no TLS');
        return;
      }
      let certificate: Certificate;
      try {
        certificate = loadCertificate(tlsFiles);
      } catch (error) {
        logger.error({ err: error, cert: tlsFiles.certFile }, 'cannot reload the TLS certificate; the one loaded before stays in use');
        return;
      }
      for (const listener of [http.listener, admin.listener]) listener.useCertificate(certificate);
      logger.info({ cert: tlsFiles.certFile }, 'TLS certificate reloaded: new connections get it');
    },
    close() {
      closing ??= (async () => {
        history.stop();
        const drained = Promise.all([http.close(shutdownGraceMs), agentsHttp?.close(shutdownGraceMs), admin.close()]);
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
