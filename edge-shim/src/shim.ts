import type { Logger } from 'pino';
import { reportActivity, tellEach } from './activity.js';
import { type ShimConfig, DEFAULTS, validateConfig } from './config.js';
import { type HttpTimeouts, createShimServer } from './http/server.js';
import { createLogger } from './logger.js';
import { Metrics } from './observability/metrics.js';
import { type OperatorPage, operatorPages } from './observability/pages.js';
import { standaloneStatus } from './observability/standalone-status.js';
import { startCheckpointer } from './sqs/checkpointer.js';
import { openDatabase } from './sqs/database.js';
import { SqsService } from './sqs/service.js';
import { StorageGuard } from './sqs/storage-guard.js';

export interface StartOptions extends Partial<ShimConfig> {
  /** A logger to use instead of one at `logLevel`. */
  readonly logger?: Logger;
  /** Milliseconds since the epoch; tests pass a clock they can move. Signatures are judged by the wall clock. */
  readonly clock?: () => number;
  readonly sweepIntervalMs?: number;
  /** Limits on receiving a request; tests shorten them. */
  readonly httpTimeouts?: HttpTimeouts;
  /** How long close() waits for requests in flight before cutting their connections. */
  readonly shutdownGraceMs?: number;
  /** How often the activity line is logged (when there was activity); a minute by default. */
  readonly activityIntervalMs?: number;
  /** Operator pages besides (or instead of) /status, /metrics and the status page, by path. */
  readonly pages?: ReadonlyMap<string, OperatorPage>;
}

export interface RunningShim {
  /** Base URL to give SQS clients as their endpoint, e.g. http://127.0.0.1:9324. */
  readonly url: string;
  readonly port: number;
  readonly service: SqsService;
  /** Stops accepting, lets requests in flight finish (long polls answer at once), closes the database. */
  close(): Promise<void>;
}

const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

/** Starts the edge shim: the same server `npm start` runs, for tests and embedding. */
export async function startShim(options: StartOptions = {}): Promise<RunningShim> {
  const { logger: givenLogger, clock = Date.now, sweepIntervalMs, httpTimeouts, shutdownGraceMs = DEFAULT_SHUTDOWN_GRACE_MS, activityIntervalMs, pages: givenPages, ...overrides } = options;
  // An option given as undefined means "the default", as it does for the CLI.
  const given = Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
  const config = validateConfig({ ...DEFAULTS, ...given });
  const logger = givenLogger ?? createLogger(config.logLevel);
  const db = openDatabase(config.dbFile, config.durability);
  const checkpointer = startCheckpointer(db, config.dbFile, config.durability, logger);
  const storage = new StorageGuard(config.dbFile, config, logger);
  const service = new SqsService({ db, storage, region: config.region, accountId: config.accountId, logger, clock, sweepIntervalMs });
  const activity = reportActivity(logger, activityIntervalMs);
  const metrics = new Metrics();
  const status = standaloneStatus(service, { startedAt: clock(), requests: () => metrics.requestsCarriedOut() });
  const pages = new Map([...operatorPages({ status, metrics }), ...(givenPages ?? [])]);
  const http = createShimServer({
    service,
    pages,
    logger,
    region: config.region,
    credentials: config.credentials,
    timeouts: httpTimeouts,
    activity: tellEach(activity, metrics.httpActivity('local')),
  });
  // After service.close(): commit what is queued, then close the database.
  const closeStorage = async () => {
    await service.drain();
    await checkpointer.stop();
    storage.stop();
    db.close();
  };
  const address = await http.listen(config.port, config.host).catch(async (error: unknown) => {
    service.close();
    activity.stop();
    await closeStorage();
    throw error;
  });
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info(
    { url, db: config.dbFile, durability: config.durability, authenticated: config.credentials.length > 0, accessKeyIds: config.credentials.map((c) => c.accessKeyId) },
    `edge shim listening on ${url}`,
  );

  let closing: Promise<void> | undefined;
  return {
    url,
    port: address.port,
    service,
    close() {
      closing ??= (async () => {
        const drained = http.close(shutdownGraceMs);
        // After the server has marked its responses `connection: close`: long polls now answer.
        service.close();
        await drained;
        activity.stop();
        await closeStorage();
        logger.info('edge shim stopped');
      })();
      return closing;
    },
  };
}
