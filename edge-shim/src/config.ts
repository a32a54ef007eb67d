import { parseArgs } from 'node:util';
import type { Credential } from './auth/sigv4.js';
import type { Durability } from './sqs/database.js';
import type { LogLevel } from './logger.js';

export interface ShimConfig {
  readonly host: string;
  readonly port: number;
  readonly dbFile: string;
  readonly durability: Durability;
  readonly credentials: readonly Credential[];
  readonly region: string;
  readonly accountId: string;
  readonly logLevel: LogLevel;
}

export const DEFAULTS: ShimConfig = {
  host: '127.0.0.1',
  port: 9324,
  dbFile: 'data/holdfast.db',
  durability: 'process',
  credentials: [],
  region: 'us-east-1',
  accountId: '000000000000',
  logLevel: 'info',
};

export const USAGE = `Usage: npm start -- [options]

  --host H            address to listen on (HOLDFAST_HOST, default ${DEFAULTS.host})
  --port N            port to listen on (HOLDFAST_PORT, default ${DEFAULTS.port})
  --db FILE           SQLite database file (HOLDFAST_DB, default ${DEFAULTS.dbFile})
  --durability D      process | power: survive a process crash, or also power loss
                      (fsync every commit) (HOLDFAST_DURABILITY, default ${DEFAULTS.durability})
  --credentials K:S   an access key id and secret that may sign requests; repeatable
                      (HOLDFAST_CREDENTIALS, comma-separated)
  --region R          region in ARNs and signatures (HOLDFAST_REGION, default ${DEFAULTS.region})
  --account-id ID     12-digit account id in queue URLs and ARNs (HOLDFAST_ACCOUNT_ID, default ${DEFAULTS.accountId})
  --log-level L       fatal | error | warn | info | debug | trace | silent (HOLDFAST_LOG_LEVEL, default ${DEFAULTS.logLevel})
  --help              print this text`;

export class ConfigError extends Error {}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function parseCredential(text: string): Credential {
  const separator = text.indexOf(':');
  if (separator <= 0 || separator === text.length - 1) {
    throw new ConfigError('credentials must be ACCESS_KEY_ID:SECRET_ACCESS_KEY');
  }
  return { accessKeyId: text.slice(0, separator), secretAccessKey: text.slice(separator + 1) };
}

/** Checks a configuration as a whole; throws a ConfigError saying what is wrong. */
export function validateConfig(config: ShimConfig): ShimConfig {
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) throw new ConfigError(`invalid port ${config.port}`);
  if (config.durability !== 'process' && config.durability !== 'power') {
    throw new ConfigError(`durability must be process or power, not ${String(config.durability)}`);
  }
  if (!LOG_LEVELS.includes(config.logLevel)) throw new ConfigError(`log level must be one of ${LOG_LEVELS.join(', ')}`);
  if (!/^\d{12}$/.test(config.accountId)) throw new ConfigError('account id must be 12 digits');
  if (!/^[a-z0-9-]+$/.test(config.region)) throw new ConfigError(`invalid region ${config.region}`);
  if (!LOOPBACK.test(config.host) && config.credentials.length === 0) {
    throw new ConfigError(`refusing to listen on ${config.host} without credentials: pass --credentials KEY:SECRET, or listen on loopback`);
  }
  return config;
}

/** The configuration from command-line options, then environment variables, then defaults. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): ShimConfig | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      db: { type: 'string' },
      durability: { type: 'string' },
      credentials: { type: 'string', multiple: true },
      region: { type: 'string' },
      'account-id': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const credentials = values.credentials ?? (env.HOLDFAST_CREDENTIALS ? env.HOLDFAST_CREDENTIALS.split(',') : []);
  const port = values.port ?? env.HOLDFAST_PORT;
  return validateConfig({
    host: values.host ?? env.HOLDFAST_HOST ?? DEFAULTS.host,
    port: port === undefined ? DEFAULTS.port : Number(port),
    dbFile: values.db ?? env.HOLDFAST_DB ?? DEFAULTS.dbFile,
    durability: (values.durability ?? env.HOLDFAST_DURABILITY ?? DEFAULTS.durability) as Durability,
    credentials: credentials.map(parseCredential),
    region: values.region ?? env.HOLDFAST_REGION ?? DEFAULTS.region,
    accountId: values['account-id'] ?? env.HOLDFAST_ACCOUNT_ID ?? DEFAULTS.accountId,
    logLevel: (values['log-level'] ?? env.HOLDFAST_LOG_LEVEL ?? DEFAULTS.logLevel) as LogLevel,
  });
}
