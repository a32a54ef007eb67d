import { BlockList, isIP } from 'node:net';
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
  /** Free disk kept for receives and deletes (see StorageGuard). */
  readonly diskReserveBytes: number;
  /** Bound on the database's size; Infinity for none. */
  readonly maxStoreBytes: number;
  /** The region's SQS endpoint: makes the shim the hybrid edge in front of it. */
  readonly upstream: string | undefined;
  /** The region of `upstream`, for signing requests to it. */
  readonly upstreamRegion: string | undefined;
  /** A JSON file of queues to know at the edge before the region was ever reached. */
  readonly queuesFile: string | undefined;
  /** How long a request to the region may take (a long poll gets its wait on top). */
  readonly upstreamTimeoutMs: number;
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly recoveryProbes: number;
  readonly recoveryMs: number;
  readonly breakerFailures: number;
  readonly replayRate: number;
  /** Batches in flight to the region during a replay, per queue. */
  readonly replayConcurrency: number;
  /** This edge site's id: given, the hybrid edge runs the workflow's fallback agents while offline. */
  readonly siteId: string | undefined;
  /** The workflow whose `runsAtEdge` stages run at the edge: MODULE[#EXPORT]; the payments workflow when absent. */
  readonly workflow: string | undefined;
  /** The directory the workflow's stage entries are relative to (the module's package by default). */
  readonly workflowRoot: string | undefined;
  /** The fallback agents' database; next to --db by default. */
  readonly edgeDbFile: string | undefined;
  /** A file of NAME=value lines for every fallback agent (gateway URLs, limits). */
  readonly agentEnvFile: string | undefined;
  /** The workflow's tables in the region, `idempotency=NAME,workflow=NAME,state=NAME`; `<workflow>-<table>` by default. */
  readonly regionTables: string | undefined;
  /** The region's DynamoDB endpoint, when not AWS's own. */
  readonly regionDynamoDb: string | undefined;
  /** Keep a warm standby per fallback agent, to take over within a second when one dies. */
  readonly agentStandby: boolean;
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
  diskReserveBytes: 64 * 2 ** 20,
  maxStoreBytes: Infinity,
  upstream: undefined,
  upstreamRegion: undefined,
  queuesFile: undefined,
  upstreamTimeoutMs: 2000,
  probeIntervalMs: 1000,
  probeTimeoutMs: 1000,
  recoveryProbes: 5,
  recoveryMs: 10_000,
  breakerFailures: 5,
  replayRate: 2000,
  replayConcurrency: 8,
  siteId: undefined,
  workflow: undefined,
  workflowRoot: undefined,
  edgeDbFile: undefined,
  agentEnvFile: undefined,
  regionTables: undefined,
  regionDynamoDb: undefined,
  agentStandby: true,
};

export const USAGE = `Usage: holdfast [options]            (from a checkout: npm start -- [options])

  --host H            address to listen on (HOLDFAST_HOST, default ${DEFAULTS.host})
  --port N            port to listen on (HOLDFAST_PORT, default ${DEFAULTS.port})
  --db FILE           SQLite database file (HOLDFAST_DB, default ${DEFAULTS.dbFile})
  --durability D      process | power: survive a process crash, or also power loss
                      (fsync every commit) (HOLDFAST_DURABILITY, default ${DEFAULTS.durability})
  --credentials K:S   an access key id and secret that may sign requests; repeatable
                      (HOLDFAST_CREDENTIALS, separated by commas or spaces)
  --region R          region in ARNs and signatures (HOLDFAST_REGION, default ${DEFAULTS.region})
  --account-id ID     12-digit account id in queue URLs and ARNs (HOLDFAST_ACCOUNT_ID, default ${DEFAULTS.accountId})
  --log-level L       fatal | error | warn | info | debug | trace | silent (HOLDFAST_LOG_LEVEL, default ${DEFAULTS.logLevel})
  --max-store-bytes N bound on the database size, e.g. 10GiB; beyond it sends are refused
                      (HOLDFAST_MAX_STORE_BYTES, default none)
  --disk-reserve N    free disk kept for receives and deletes, e.g. 64MiB; below it sends are
                      refused (HOLDFAST_DISK_RESERVE, default 64MiB)

Hybrid edge (in front of a region's SQS; credentials from the AWS SDK's default chain):
  --upstream URL            the region's SQS endpoint, e.g. https://sqs.eu-west-1.amazonaws.com
                            (HOLDFAST_UPSTREAM)
  --upstream-region R       its region (HOLDFAST_UPSTREAM_REGION, else AWS_REGION)
  --queues FILE             queues to take sends for even before the region was reached
                            (HOLDFAST_QUEUES): {"queues": [{"name": ..., "attributes": {...}}]}
  --upstream-timeout T      how long a request to the region may take, retries included
                            (HOLDFAST_UPSTREAM_TIMEOUT, default 2s; a long poll gets its wait on top)
  --probe-interval T        how often the region is probed (HOLDFAST_PROBE_INTERVAL, default 1s)
  --probe-timeout T         how long a probe may take (HOLDFAST_PROBE_TIMEOUT, default 1s)
  --recovery-probes N       successful probes in a row before the edge goes back online
                            (HOLDFAST_RECOVERY_PROBES, default ${DEFAULTS.recoveryProbes})
  --recovery-time T         ...spread over at least this long (HOLDFAST_RECOVERY_TIME, default 10s)
  --breaker-failures N      failures in a row that take the edge offline (HOLDFAST_BREAKER_FAILURES,
                            default ${DEFAULTS.breakerFailures}; also half the requests failing over 10 s)
  --replay-rate N           messages per second replayed to the region at most (HOLDFAST_REPLAY_RATE,
                            default ${DEFAULTS.replayRate})
  --replay-concurrency N    batches in flight to the region per queue during a replay
                            (HOLDFAST_REPLAY_CONCURRENCY, default ${DEFAULTS.replayConcurrency})

Fallback agents (hybrid edge only): the workflow's stages marked runsAtEdge, run while offline:
  --site-id ID              this edge site's id; given, the agents run (HOLDFAST_SITE_ID)
  --workflow MODULE[#NAME]  the workflow definition (HOLDFAST_WORKFLOW, default the payments workflow)
  --workflow-root DIR       what its stage entries are relative to (HOLDFAST_WORKFLOW_ROOT,
                            default the module's package)
  --edge-db FILE            the agents' database (HOLDFAST_EDGE_DB, default edge-agents.db next to --db)
  --agent-env FILE          NAME=value lines for every agent: gateway URLs, limits (HOLDFAST_AGENT_ENV)
  --region-tables SPEC      the workflow's tables in the region, for the sync:
                            idempotency=NAME,workflow=NAME,state=NAME (HOLDFAST_REGION_TABLES,
                            default <workflow>-idempotency, <workflow>-workflow, <workflow>-state)
  --region-dynamodb URL     the region's DynamoDB endpoint, when not AWS's (HOLDFAST_REGION_DYNAMODB)
  --agent-standby on|off    a warm standby per agent, ready while the region is up and to take over
                            within a second (HOLDFAST_AGENT_STANDBY, default on)
  --help                    print this text`;

export class ConfigError extends Error {}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** Whether only this machine can reach an address: localhost, 127.0.0.0/8 or ::1. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const address = host.replace(/^\[(.*)\]$/, '$1');
  const family = isIP(address);
  return family !== 0 && LOOPBACK.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, KB: 1e3, MB: 1e6, GB: 1e9, TB: 1e12, KIB: 2 ** 10, MIB: 2 ** 20, GIB: 2 ** 30, TIB: 2 ** 40 };

/** A size in bytes: a whole number, optionally with a unit (KB, MB, GB, TB or KiB, MiB, GiB, TiB). */
export function parseSize(text: string, name: string): number {
  const match = /^(\d+)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? SIZE_UNITS[match[2]!.toUpperCase()] : undefined;
  if (!match || unit === undefined) throw new ConfigError(`invalid ${name} '${text}': give bytes, or a number with KB, MB, GB, KiB, MiB or GiB`);
  return Number(match[1]) * unit;
}

const DURATION_UNITS: Record<string, number> = { '': 1, ms: 1, s: 1000, m: 60_000 };

/** A duration in milliseconds: a number with ms, s or m (milliseconds when it has none). */
export function parseDuration(text: string, name: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new ConfigError(`invalid ${name} '${text}': give a duration such as 500ms, 2s or 1m`);
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? '']!);
}

function parseSwitch(text: string, name: string): boolean {
  if (text === 'on' || text === 'off') return text === 'on';
  throw new ConfigError(`invalid ${name} '${text}': give on or off`);
}

function parseCount(text: string, name: string): number {
  if (!/^\d{1,9}$/.test(text.trim())) throw new ConfigError(`invalid ${name} '${text}': give a whole number`);
  return Number(text);
}

function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new ConfigError(`invalid port '${text}': give a number from 0 to 65535 (0: any free port)`);
  return Number(text);
}

export function parseCredential(text: string): Credential {
  const separator = text.indexOf(':');
  if (separator <= 0 || separator === text.length - 1) {
    throw new ConfigError('credentials must be ACCESS_KEY_ID:SECRET_ACCESS_KEY');
  }
  return { accessKeyId: text.slice(0, separator), secretAccessKey: text.slice(separator + 1) };
}

/** Checks a configuration as a whole; throws a ConfigError saying what is wrong. */
export function validateConfig(config: ShimConfig): ShimConfig {
  // An empty host would mean every address, an empty database file a temporary one: neither is asked for that way.
  if (config.host === '') throw new ConfigError('host must not be empty');
  if (config.dbFile === '') throw new ConfigError('database file must not be empty');
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) throw new ConfigError(`invalid port ${config.port}`);
  if (config.durability !== 'process' && config.durability !== 'power') {
    throw new ConfigError(`durability must be process or power, not ${String(config.durability)}`);
  }
  if (!LOG_LEVELS.includes(config.logLevel)) throw new ConfigError(`log level must be one of ${LOG_LEVELS.join(', ')}`);
  if (!/^\d{12}$/.test(config.accountId)) throw new ConfigError('account id must be 12 digits');
  if (!/^[a-z0-9-]+$/.test(config.region)) throw new ConfigError(`invalid region ${config.region}`);
  if (config.credentials.some((credential) => !credential.accessKeyId || !credential.secretAccessKey)) {
    throw new ConfigError('credentials need both an access key id and a secret access key');
  }
  if (!(config.maxStoreBytes > 0)) throw new ConfigError('the store bound must be a positive number of bytes');
  if (!(config.diskReserveBytes >= 0) || !Number.isSafeInteger(config.diskReserveBytes)) throw new ConfigError('the disk reserve must be a number of bytes');
  if (config.upstream !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(config.upstream);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname.replace(/\/+$/, '') !== '' || url.search !== '') {
      throw new ConfigError(`invalid upstream '${config.upstream}': give the region's SQS endpoint, e.g. https://sqs.eu-west-1.amazonaws.com`);
    }
    if (!config.upstreamRegion || !/^[a-z0-9-]+$/.test(config.upstreamRegion)) {
      throw new ConfigError('the upstream needs its region: pass --upstream-region, or set AWS_REGION');
    }
  }
  for (const [name, value] of [
    ['upstream timeout', config.upstreamTimeoutMs],
    ['probe interval', config.probeIntervalMs],
    ['probe timeout', config.probeTimeoutMs],
    ['recovery probes', config.recoveryProbes],
    ['breaker failures', config.breakerFailures],
    ['replay rate', config.replayRate],
    ['replay concurrency', config.replayConcurrency],
  ] as const) {
    if (!(value >= 1)) throw new ConfigError(`the ${name} must be at least 1`);
  }
  if (!(config.recoveryMs >= 0)) throw new ConfigError('the recovery time must not be negative');
  if (config.siteId !== undefined) {
    if (config.upstream === undefined) throw new ConfigError('fallback agents (--site-id) run only in front of a region: pass --upstream too');
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(config.siteId)) throw new ConfigError(`invalid site id '${config.siteId}': 1 to 64 letters, digits, '.', '_' or '-'`);
    if (config.regionTables !== undefined) parseRegionTables(config.regionTables, 'unused');
  }
  if (!isLoopback(config.host) && config.credentials.length === 0) {
    throw new ConfigError(`refusing to listen on ${config.host} without credentials: pass --credentials KEY:SECRET, or listen on loopback`);
  }
  return config;
}

/** The configuration from command-line options, then environment variables, then defaults. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): ShimConfig | 'help' {
  const values = parseOptions(argv);
  if (values.help) return 'help';
  // Several credentials in one environment variable: separated by commas or white space.
  const credentials = values.credentials ?? (env.HOLDFAST_CREDENTIALS ?? '').split(/[\s,]+/).filter((text) => text !== '');
  const port = values.port ?? env.HOLDFAST_PORT;
  const maxStore = values['max-store-bytes'] ?? env.HOLDFAST_MAX_STORE_BYTES;
  const diskReserve = values['disk-reserve'] ?? env.HOLDFAST_DISK_RESERVE;
  return validateConfig({
    host: values.host ?? env.HOLDFAST_HOST ?? DEFAULTS.host,
    port: port === undefined ? DEFAULTS.port : parsePort(port),
    dbFile: values.db ?? env.HOLDFAST_DB ?? DEFAULTS.dbFile,
    durability: (values.durability ?? env.HOLDFAST_DURABILITY ?? DEFAULTS.durability) as Durability,
    credentials: credentials.map(parseCredential),
    region: values.region ?? env.HOLDFAST_REGION ?? DEFAULTS.region,
    accountId: values['account-id'] ?? env.HOLDFAST_ACCOUNT_ID ?? DEFAULTS.accountId,
    logLevel: (values['log-level'] ?? env.HOLDFAST_LOG_LEVEL ?? DEFAULTS.logLevel) as LogLevel,
    maxStoreBytes: maxStore === undefined ? DEFAULTS.maxStoreBytes : parseSize(maxStore, 'store bound'),
    diskReserveBytes: diskReserve === undefined ? DEFAULTS.diskReserveBytes : parseSize(diskReserve, 'disk reserve'),
    upstream: values.upstream ?? (env.HOLDFAST_UPSTREAM || undefined),
    upstreamRegion: values['upstream-region'] ?? (env.HOLDFAST_UPSTREAM_REGION || env.AWS_REGION || undefined),
    queuesFile: values.queues ?? (env.HOLDFAST_QUEUES || undefined),
    upstreamTimeoutMs: option(values['upstream-timeout'], env.HOLDFAST_UPSTREAM_TIMEOUT, DEFAULTS.upstreamTimeoutMs, (text) => parseDuration(text, 'upstream timeout')),
    probeIntervalMs: option(values['probe-interval'], env.HOLDFAST_PROBE_INTERVAL, DEFAULTS.probeIntervalMs, (text) => parseDuration(text, 'probe interval')),
    probeTimeoutMs: option(values['probe-timeout'], env.HOLDFAST_PROBE_TIMEOUT, DEFAULTS.probeTimeoutMs, (text) => parseDuration(text, 'probe timeout')),
    recoveryProbes: option(values['recovery-probes'], env.HOLDFAST_RECOVERY_PROBES, DEFAULTS.recoveryProbes, (text) => parseCount(text, 'recovery probes')),
    recoveryMs: option(values['recovery-time'], env.HOLDFAST_RECOVERY_TIME, DEFAULTS.recoveryMs, (text) => parseDuration(text, 'recovery time')),
    breakerFailures: option(values['breaker-failures'], env.HOLDFAST_BREAKER_FAILURES, DEFAULTS.breakerFailures, (text) => parseCount(text, 'breaker failures')),
    replayRate: option(values['replay-rate'], env.HOLDFAST_REPLAY_RATE, DEFAULTS.replayRate, (text) => parseCount(text, 'replay rate')),
    replayConcurrency: option(values['replay-concurrency'], env.HOLDFAST_REPLAY_CONCURRENCY, DEFAULTS.replayConcurrency, (text) => parseCount(text, 'replay concurrency')),
    siteId: values['site-id'] ?? (env.HOLDFAST_SITE_ID || undefined),
    workflow: values.workflow ?? (env.HOLDFAST_WORKFLOW || undefined),
    workflowRoot: values['workflow-root'] ?? (env.HOLDFAST_WORKFLOW_ROOT || undefined),
    edgeDbFile: values['edge-db'] ?? (env.HOLDFAST_EDGE_DB || undefined),
    agentEnvFile: values['agent-env'] ?? (env.HOLDFAST_AGENT_ENV || undefined),
    regionTables: values['region-tables'] ?? (env.HOLDFAST_REGION_TABLES || undefined),
    regionDynamoDb: values['region-dynamodb'] ?? (env.HOLDFAST_REGION_DYNAMODB || undefined),
    agentStandby: option(values['agent-standby'], env.HOLDFAST_AGENT_STANDBY, DEFAULTS.agentStandby, (text) => parseSwitch(text, 'agent standby')),
  });
}

/** The workflow's tables in the region from `idempotency=NAME,workflow=NAME,state=NAME`, or the default names. */
export function parseRegionTables(spec: string | undefined, workflowName: string): { idempotency: string; workflow: string; state: string } {
  const tables = { idempotency: `${workflowName}-idempotency`, workflow: `${workflowName}-workflow`, state: `${workflowName}-state` };
  if (spec === undefined) return tables;
  for (const part of spec.split(',')) {
    const [key, name] = part.split('=').map((text) => text.trim());
    if (!key || !name || !Object.hasOwn(tables, key)) throw new ConfigError(`invalid region tables '${spec}': give idempotency=NAME,workflow=NAME,state=NAME`);
    tables[key as keyof typeof tables] = name;
  }
  return tables;
}

/** An option from the command line, else its environment variable, else the default. */
function option<T>(given: string | undefined, fromEnv: string | undefined, fallback: T, parse: (text: string) => T): T {
  const text = given ?? (fromEnv === '' ? undefined : fromEnv);
  return text === undefined ? fallback : parse(text);
}

function parseOptions(argv: string[]) {
  try {
    return parseArgs({
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
        'max-store-bytes': { type: 'string' },
        'disk-reserve': { type: 'string' },
        upstream: { type: 'string' },
        'upstream-region': { type: 'string' },
        queues: { type: 'string' },
        'upstream-timeout': { type: 'string' },
        'probe-interval': { type: 'string' },
        'probe-timeout': { type: 'string' },
        'recovery-probes': { type: 'string' },
        'recovery-time': { type: 'string' },
        'breaker-failures': { type: 'string' },
        'replay-rate': { type: 'string' },
        'replay-concurrency': { type: 'string' },
        'site-id': { type: 'string' },
        workflow: { type: 'string' },
        'workflow-root': { type: 'string' },
        'edge-db': { type: 'string' },
        'agent-env': { type: 'string' },
        'region-tables': { type: 'string' },
        'region-dynamodb': { type: 'string' },
        'agent-standby': { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
    }).values;
  } catch (error) {
    // parseArgs errors (unknown option, missing value, stray argument) are configuration errors.
    throw new ConfigError((error as Error).message);
  }
}
