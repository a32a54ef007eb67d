import type { Logger } from 'pino';
import { type ShimConfig, DEFAULTS, validateConfig } from './config.js';
import { createShimServer, listen } from './http/server.js';
import { createLogger } from './logger.js';
import { openDatabase } from './sqs/database.js';
import { SqsService } from './sqs/service.js';

export interface StartOptions extends Partial<ShimConfig> {
  /** A logger to use instead of one at `logLevel`. */
  readonly logger?: Logger;
  /** Milliseconds since the epoch; tests pass a clock they can move. */
  readonly clock?: () => number;
  readonly sweepIntervalMs?: number;
}

export interface RunningShim {
  /** Base URL to give SQS clients as their endpoint, e.g. http://127.0.0.1:9324. */
  readonly url: string;
  readonly port: number;
  readonly service: SqsService;
  /** Stops accepting, lets requests in flight finish (long polls answer at once), closes the database. */
  close(): Promise<void>;
}

/** Starts the edge shim: the same server `npm start` runs, for tests and embedding. */
export async function startShim(options: StartOptions = {}): Promise<RunningShim> {
  const { logger: givenLogger, clock = Date.now, sweepIntervalMs, ...overrides } = options;
  const config = validateConfig({ ...DEFAULTS, ...overrides });
  const logger = givenLogger ?? createLogger(config.logLevel);
  const db = openDatabase(config.dbFile, config.durability);
  const service = new SqsService({ db, region: config.region, accountId: config.accountId, logger, clock, sweepIntervalMs });
  const server = createShimServer({ service, logger, region: config.region, credentials: config.credentials, clock });
  const address = await listen(server, config.port, config.host).catch((error: unknown) => {
    service.close();
    db.close();
    throw error;
  });
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  logger.info(
    { url: `http://${host}:${address.port}`, db: config.dbFile, durability: config.durability, authenticated: config.credentials.length > 0 },
    'edge shim listening',
  );

  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    service,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        service.close();
        server.closeIdleConnections();
      }).then(() => {
        db.close();
        logger.info('edge shim stopped');
      });
      return closing;
    },
  };
}
