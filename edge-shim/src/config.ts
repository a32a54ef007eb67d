import { existsSync, readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { isPostgresLocation } from '../../functions/src/edge/index.js';
import type { Credential } from './auth/sigv4.js';
import type { Durability } from './sqs/database.js';
import type { IntegrityCheck } from './sqs/integrity.js';
import type { LogLevel } from './logger.js';

export class ConfigError extends Error {}

/** Names given for the workflow's tables in the region: `<workflow>-<table>` for those not given. */
export interface RegionTableNames {
  readonly idempotency?: string;
  readonly workflow?: string;
  readonly state?: string;
}

const REGION_TABLES: readonly (keyof RegionTableNames)[] = ['idempotency', 'workflow', 'state'];

/** What becomes of the hybrid edge's stored messages past their queue's retention period: kept for the replay, or expired as SQS would. */
export type BacklogRetention = 'keep' | 'sqs';

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const REGION = /^[a-z0-9-]+$/;

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

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000 };

/**
 * A duration in milliseconds: a number with ms, s or m, the one form of every duration option (the
 * shim's and the drill's). A bare number is refused: some tools read one as seconds, others as
 * milliseconds.
 */
export function parseDuration(text: string, name: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m)$/.exec(text.trim());
  if (!match) throw new ConfigError(`invalid ${name} '${text}': give a duration with its unit, such as 500ms, 30s or 2m`);
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2]!]!);
}

function parseSwitch(text: string, name: string): boolean {
  if (text === 'on' || text === 'off') return text === 'on';
  throw new ConfigError(`invalid ${name} '${text}': give on or off`);
}

function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new ConfigError(`invalid port '${text}': give a number from 0 to 65535 (0: any free port)`);
  return Number(text);
}

function validatePort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`invalid port ${port}`);
}

/** A check that a listening address is not empty (an empty one would mean every address, which is not asked for this way). */
function validateHost(host: string): void {
  if (host === '') throw new ConfigError('host must not be empty');
}

function parseCount(text: string, name: string): number {
  if (!/^\d{1,9}$/.test(text.trim())) throw new ConfigError(`invalid ${name} '${text}': give a whole number`);
  return Number(text);
}

export function parseCredential(text: string): Credential {
  const separator = text.indexOf(':');
  if (separator <= 0 || separator === text.length - 1) {
    throw new ConfigError('credentials must be ACCESS_KEY_ID:SECRET_ACCESS_KEY');
  }
  return { accessKeyId: text.slice(0, separator), secretAccessKey: text.slice(separator + 1) };
}

/**
 * The credentials of a file: a `KEY:SECRET` line each; blank lines and lines starting with `#` are
 * skipped. A file given must hold at least one; errors name the line, never what it holds.
 */
export function readCredentialsFile(file: string): Credential[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read the credentials file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const credentials = text.split('\n').flatMap((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return [];
    try {
      return [parseCredential(line)];
    } catch {
      throw new ConfigError(`line ${index + 1} of the credentials file ${file} is not ACCESS_KEY_ID:SECRET_ACCESS_KEY`);
    }
  });
  if (credentials.length === 0) throw new ConfigError(`the credentials file ${file} holds no credentials`);
  return credentials;
}

/** The name under which systemd's `LoadCredential=` hands the shim its credentials file (in $CREDENTIALS_DIRECTORY). */
export const SYSTEMD_CREDENTIAL = 'holdfast-credentials';

/** The least length of the admin token: long enough that it cannot be guessed over the network. */
const MIN_ADMIN_TOKEN_LENGTH = 16;

/** The admin listener's bearer token, from its file (surrounding white space dropped). */
export function readAdminToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new ConfigError(`cannot read the admin token file ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) throw new ConfigError(`the admin token in ${file} must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters (e.g. openssl rand -hex 32)`);
  return token;
}

/** Names given for the workflow's tables in the region, from `idempotency=NAME,workflow=NAME,state=NAME` (any of them). */
export function parseRegionTables(spec: string): RegionTableNames {
  const tables: { -readonly [Table in keyof RegionTableNames]: string } = {};
  for (const part of spec.split(',')) {
    const [table, name] = part.split('=').map((text) => text.trim());
    if (!table || !name || !REGION_TABLES.includes(table as keyof RegionTableNames)) {
      throw new ConfigError(`invalid region tables '${spec}': give idempotency=NAME,workflow=NAME,state=NAME`);
    }
    tables[table as keyof RegionTableNames] = name;
  }
  return tables;
}

/** The workflow's tables in the region: those given, `<workflow>-<table>` for the others. */
export function regionTableNames(workflowName: string, given: RegionTableNames = {}): { idempotency: string; workflow: string; state: string } {
  return { idempotency: `${workflowName}-idempotency`, workflow: `${workflowName}-workflow`, state: `${workflowName}-state`, ...given };
}

/** A check that a count or a duration is at least 1; `name` as the message says it. */
function atLeastOne(name: string): (value: number) => void {
  return (value) => {
    if (!(value >= 1)) throw new ConfigError(`the ${name} must be at least 1`);
  };
}

/** The headings of the help's groups of options; the general options come first, under none. */
const GROUP_HEADINGS = {
  general: undefined,
  'hybrid edge': "Hybrid edge (in front of a region's SQS; credentials from the AWS SDK's default chain):",
  'fallback agents': "Fallback agents (hybrid edge only): the workflow's stages marked runsAtEdge, run while offline:",
  security: 'Security: the operator pages, TLS, secrets kept off the command line (see the README, Security):',
} as const;

/** One option of the shim: how it is given, read, checked and described. */
export interface ConfigOption<T> {
  /** The command-line flag, without its dashes. */
  readonly flag: string;
  /** What the flag takes, as the help names it: the N of `--port N`. */
  readonly placeholder: string;
  readonly variable: string;
  /** Another program's variable, read when `variable` is unset. */
  readonly fallbackVariable?: string;
  /** The default as it would be given; where no text gives it, the value and what it means. */
  readonly default: string | { readonly value: T; readonly means: string };
  /** The value of a text given; throws a ConfigError. An option that repeats gets the values each text adds. */
  parse(text: string): T;
  /** What a value must be, parsed or given by code that starts the shim; throws a ConfigError. */
  validate?(value: Exclude<T, undefined>): void;
  readonly help: string;
  readonly group: keyof typeof GROUP_HEADINGS;
  /** Given several times on the command line, or several in the variable separated by commas or white space. */
  readonly repeats?: true;
  /** Where another program's environment gives the default (systemd's credentials directory): its text, or undefined. */
  readonly defaultFromEnvironment?: (env: NodeJS.ProcessEnv) => string | undefined;
  /** Its value is a secret: given on the command line, any local user can read it (ps, /proc), so the shim warns. */
  readonly secret?: true;
}

/** An entry of OPTIONS, its value's type inferred from its parser and its default. */
function option<T>(spec: ConfigOption<T>): ConfigOption<T> {
  return spec;
}

/** The default of an option that is unset unless given. */
const NONE = { value: undefined, means: 'none' } as const;

/** The region of a shim in front of none. */
const STANDALONE_REGION = 'us-east-1';

/** Every option of the shim, in the order of the help: ShimConfig, DEFAULTS, USAGE and the command line are made from it. */
export const OPTIONS = {
  host: option({
    flag: 'host', placeholder: 'H', variable: 'HOLDFAST_HOST', default: '127.0.0.1', group: 'general',
    help: 'address to listen on',
    parse: (text) => text,
    validate: validateHost,
  }),
  port: option({
    flag: 'port', placeholder: 'N', variable: 'HOLDFAST_PORT', default: '9324', group: 'general',
    help: 'port to listen on; 0: any free port',
    parse: parsePort,
    validate: validatePort,
  }),
  dbFile: option({
    flag: 'db', placeholder: 'FILE|URL', variable: 'HOLDFAST_DB', default: 'data/holdfast.db', group: 'general',
    help: 'SQLite database file, or postgres://user@host:port/database for a site of several nodes',
    parse: (text) => text,
    // An empty database file would be a temporary one: that is not asked for this way.
    validate: (file) => {
      if (file === '') throw new ConfigError('database file must not be empty');
      refuseOtherUrls(file);
    },
  }),
  durability: option({
    flag: 'durability', placeholder: 'D', variable: 'HOLDFAST_DURABILITY', default: 'process', group: 'general',
    help: 'process | power: survive a process crash, or also power loss (fsync every commit)',
    parse: (text) => text as Durability,
    validate: (durability) => {
      if (durability !== 'process' && durability !== 'power') throw new ConfigError(`durability must be process or power, not ${String(durability)}`);
    },
  }),
  credentials: option<readonly Credential[]>({
    flag: 'credentials', placeholder: 'K:S', variable: 'HOLDFAST_CREDENTIALS', default: { value: [], means: 'none' }, group: 'general',
    help: 'an access key id and secret that may sign requests; repeatable, or several in the variable separated by commas or spaces',
    repeats: true,
    secret: true,
    parse: (text) => [parseCredential(text)],
    validate: (credentials) => {
      if (credentials.some((credential) => !credential.accessKeyId || !credential.secretAccessKey)) {
        throw new ConfigError('credentials need both an access key id and a secret access key');
      }
    },
  }),
  region: option({
    flag: 'region', placeholder: 'R', variable: 'HOLDFAST_REGION', default: { value: undefined, means: `the upstream region with --upstream, else ${STANDALONE_REGION}` }, group: 'general',
    help: 'region in ARNs and signatures',
    parse: (text) => text,
    validate: (region) => {
      if (!REGION.test(region)) throw new ConfigError(`invalid region ${region}`);
    },
  }),
  accountId: option({
    flag: 'account-id', placeholder: 'ID', variable: 'HOLDFAST_ACCOUNT_ID', default: '000000000000', group: 'general',
    help: '12-digit account id in queue URLs and ARNs',
    parse: (text) => text,
    validate: (accountId) => {
      if (!/^\d{12}$/.test(accountId)) throw new ConfigError('account id must be 12 digits');
    },
  }),
  logLevel: option({
    flag: 'log-level', placeholder: 'L', variable: 'HOLDFAST_LOG_LEVEL', default: 'info', group: 'general',
    help: LOG_LEVELS.join(' | '),
    parse: (text) => text as LogLevel,
    validate: (level) => {
      if (!LOG_LEVELS.includes(level)) throw new ConfigError(`log level must be one of ${LOG_LEVELS.join(', ')}`);
    },
  }),
  maxStoreBytes: option({
    flag: 'max-store-bytes', placeholder: 'N', variable: 'HOLDFAST_MAX_STORE_BYTES', default: { value: Infinity, means: 'none' }, group: 'general',
    help: 'bound on the database size, e.g. 10GiB; beyond it sends are refused',
    parse: (text) => parseSize(text, 'store bound'),
    validate: (bytes) => {
      if (!(bytes > 0)) throw new ConfigError('the store bound must be a positive number of bytes');
    },
  }),
  diskReserveBytes: option({
    flag: 'disk-reserve', placeholder: 'N', variable: 'HOLDFAST_DISK_RESERVE', default: '64MiB', group: 'general',
    help: 'free disk kept for receives and deletes, e.g. 64MiB; below it sends are refused',
    parse: (text) => parseSize(text, 'disk reserve'),
    validate: (bytes) => {
      if (!(bytes >= 0) || !Number.isSafeInteger(bytes)) throw new ConfigError('the disk reserve must be a number of bytes');
    },
  }),
  accessPolicy: option({
    flag: 'access-policy', placeholder: 'FILE', variable: 'HOLDFAST_ACCESS_POLICY', default: NONE, group: 'general',
    help: 'who may do what to which queue: {"keys": {"AKID...": [{"allow": ["send", "receive"], "queues": ["payments-*"]}]}}; without it, through a hybrid edge every key may send, receive, read and create on the queues the edge knows, and a standalone shim lets every key do everything',
    parse: (text) => text,
  }),
  integrityCheck: option({
    flag: 'integrity-check', placeholder: 'full|quick|off', variable: 'HOLDFAST_INTEGRITY_CHECK', default: 'quick', group: 'general',
    help: 'what of the database is checked at start: quick (every page), full (also every index against its table; slower), or off; a corrupt database is refused',
    parse: (text) => text as IntegrityCheck,
    validate: (check) => {
      if (check !== 'full' && check !== 'quick' && check !== 'off') throw new ConfigError(`integrity check must be full, quick or off, not ${String(check)}`);
    },
  }),
  queuesFile: option({
    flag: 'queues', placeholder: 'FILE', variable: 'HOLDFAST_QUEUES', default: NONE, group: 'general',
    help: 'queues to have from the start: {"queues": [{"name": ..., "attributes": {...}}]}; a standalone shim creates them (or brings their attributes in line) at start, a hybrid edge takes sends for them even before the region was reached',
    parse: (text) => text,
  }),
  upstream: option({
    flag: 'upstream', placeholder: 'URL', variable: 'HOLDFAST_UPSTREAM', default: NONE, group: 'hybrid edge',
    help: "the region's SQS endpoint, e.g. https://sqs.eu-west-1.amazonaws.com",
    parse: (text) => text,
    validate: (upstream) => {
      const url = URL.canParse(upstream) ? new URL(upstream) : undefined;
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname.replace(/\/+$/, '') !== '' || url.search !== '') {
        throw new ConfigError(`invalid upstream '${upstream}': give the region's SQS endpoint, e.g. https://sqs.eu-west-1.amazonaws.com`);
      }
    },
  }),
  upstreamRegion: option({
    flag: 'upstream-region', placeholder: 'R', variable: 'HOLDFAST_UPSTREAM_REGION', fallbackVariable: 'AWS_REGION', default: NONE, group: 'hybrid edge',
    help: 'its region',
    // Checked with the upstream in validateConfig: AWS_REGION is set for other programs too.
    parse: (text) => text,
  }),
  stackOutputs: option({
    flag: 'stack-outputs', placeholder: 'FILE[#STACK]', variable: 'HOLDFAST_STACK_OUTPUTS', default: NONE, group: 'hybrid edge',
    help: "the deployed stack's outputs as cdk deploy --outputs-file writes them: the upstream, its region, the workflow's queues and the sync's tables, where no option gives them",
    parse: (text) => text,
  }),
  upstreamTimeoutMs: option({
    flag: 'upstream-timeout', placeholder: 'T', variable: 'HOLDFAST_UPSTREAM_TIMEOUT', default: '2s', group: 'hybrid edge',
    help: 'how long a request to the region may take, retries included; a long poll gets its wait on top',
    parse: (text) => parseDuration(text, 'upstream timeout'),
    validate: atLeastOne('upstream timeout'),
  }),
  probeIntervalMs: option({
    flag: 'probe-interval', placeholder: 'T', variable: 'HOLDFAST_PROBE_INTERVAL', default: '1s', group: 'hybrid edge',
    help: 'how often the region is probed',
    parse: (text) => parseDuration(text, 'probe interval'),
    validate: atLeastOne('probe interval'),
  }),
  probeTimeoutMs: option({
    flag: 'probe-timeout', placeholder: 'T', variable: 'HOLDFAST_PROBE_TIMEOUT', default: '1s', group: 'hybrid edge',
    help: 'how long a probe may take',
    parse: (text) => parseDuration(text, 'probe timeout'),
    validate: atLeastOne('probe timeout'),
  }),
  recoveryProbes: option({
    flag: 'recovery-probes', placeholder: 'N', variable: 'HOLDFAST_RECOVERY_PROBES', default: '5', group: 'hybrid edge',
    help: 'successful probes in a row before the edge goes back online',
    parse: (text) => parseCount(text, 'recovery probes'),
    validate: atLeastOne('recovery probes'),
  }),
  recoveryMs: option({
    flag: 'recovery-time', placeholder: 'T', variable: 'HOLDFAST_RECOVERY_TIME', default: '10s', group: 'hybrid edge',
    help: '...spread over at least this long',
    parse: (text) => parseDuration(text, 'recovery time'),
    validate: (ms) => {
      if (!(ms >= 0)) throw new ConfigError('the recovery time must not be negative');
    },
  }),
  breakerFailures: option({
    flag: 'breaker-failures', placeholder: 'N', variable: 'HOLDFAST_BREAKER_FAILURES', default: '5', group: 'hybrid edge',
    help: 'failures in a row that take the edge offline; also half the requests failing over 10 s',
    parse: (text) => parseCount(text, 'breaker failures'),
    validate: atLeastOne('breaker failures'),
  }),
  replayRate: option({
    flag: 'replay-rate', placeholder: 'N', variable: 'HOLDFAST_REPLAY_RATE', default: '2000', group: 'hybrid edge',
    help: 'messages per second replayed to the region at most',
    parse: (text) => parseCount(text, 'replay rate'),
    validate: atLeastOne('replay rate'),
  }),
  replayBandwidth: option({
    flag: 'replay-bandwidth', placeholder: 'N', variable: 'HOLDFAST_REPLAY_BANDWIDTH', default: NONE, group: 'hybrid edge',
    help: "bytes a second of messages replayed to the region at most, e.g. 512KiB: the share of a thin uplink the replay may take",
    parse: (text) => parseSize(text, 'replay bandwidth'),
    validate: atLeastOne('replay bandwidth'),
  }),
  replayConcurrency: option({
    flag: 'replay-concurrency', placeholder: 'N', variable: 'HOLDFAST_REPLAY_CONCURRENCY', default: '16', group: 'hybrid edge',
    help: 'most batches in flight to the region during a replay, all queues together, and four times as many writes during the sync: the ceiling of their congestion control',
    parse: (text) => parseCount(text, 'replay concurrency'),
    validate: atLeastOne('replay concurrency'),
  }),
  backlogRetention: option({
    flag: 'backlog-retention', placeholder: 'keep|sqs', variable: 'HOLDFAST_BACKLOG_RETENTION', default: 'keep', group: 'hybrid edge',
    help: "keep: the backlog stored at the edge waits for the replay however old (its retention starts again in the region); sqs: it expires after the queue's MessageRetentionPeriod from its send to the edge",
    parse: (text) => text as BacklogRetention,
    validate: (retention) => {
      if (retention !== 'keep' && retention !== 'sqs') throw new ConfigError(`backlog retention must be keep or sqs, not ${String(retention)}`);
    },
  }),
  siteId: option({
    flag: 'site-id', placeholder: 'ID', variable: 'HOLDFAST_SITE_ID', default: NONE, group: 'fallback agents',
    help: "this edge site's id; given, the agents run",
    parse: (text) => text,
    validate: (siteId) => {
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(siteId)) throw new ConfigError(`invalid site id '${siteId}': 1 to 64 letters, digits, '.', '_' or '-'`);
    },
  }),
  workflow: option({
    flag: 'workflow', placeholder: 'MODULE[#NAME]', variable: 'HOLDFAST_WORKFLOW', default: { value: undefined, means: 'the payments workflow' }, group: 'fallback agents',
    help: 'the workflow definition',
    parse: (text) => text,
  }),
  workflowRoot: option({
    flag: 'workflow-root', placeholder: 'DIR', variable: 'HOLDFAST_WORKFLOW_ROOT', default: { value: undefined, means: "the module's package" }, group: 'fallback agents',
    help: 'what its stage entries are relative to',
    parse: (text) => text,
  }),
  edgeDbFile: option({
    flag: 'edge-db', placeholder: 'FILE', variable: 'HOLDFAST_EDGE_DB', default: { value: undefined, means: 'edge-agents.db next to --db; on PostgreSQL, the --db database' }, group: 'fallback agents',
    help: "the agents' database (a file, or a postgres:// URL)",
    parse: (text) => text,
    validate: refuseOtherUrls,
  }),
  agentEnvFile: option({
    flag: 'agent-env', placeholder: 'FILE', variable: 'HOLDFAST_AGENT_ENV', default: NONE, group: 'fallback agents',
    help: 'NAME=value lines for every agent: gateway URLs, limits',
    parse: (text) => text,
  }),
  regionTables: option({
    flag: 'region-tables', placeholder: 'SPEC', variable: 'HOLDFAST_REGION_TABLES', default: { value: undefined, means: '<workflow>-idempotency, <workflow>-workflow, <workflow>-state' }, group: 'fallback agents',
    help: "the workflow's tables in the region, for the sync: idempotency=NAME,workflow=NAME,state=NAME (any of them)",
    parse: parseRegionTables,
  }),
  regionDynamoDb: option({
    flag: 'region-dynamodb', placeholder: 'URL', variable: 'HOLDFAST_REGION_DYNAMODB', default: { value: undefined, means: "AWS's" }, group: 'fallback agents',
    help: "the region's DynamoDB endpoint",
    parse: (text) => text,
  }),
  agentStandby: option({
    flag: 'agent-standby', placeholder: 'on|off', variable: 'HOLDFAST_AGENT_STANDBY', default: 'on', group: 'fallback agents',
    help: 'a warm standby per agent, ready while the region is up and to take over within a second',
    parse: (text) => parseSwitch(text, 'agent standby'),
  }),
  publicUrl: option({
    flag: 'public-url', placeholder: 'URL', variable: 'HOLDFAST_PUBLIC_URL', default: { value: undefined, means: 'the address the client reached' }, group: 'security',
    help: 'the base of the queue URLs given to clients, e.g. https://edge.site.example:9324: the name clients reach the shim by (also behind a proxy), instead of the Host of each request',
    parse: (text) => text.replace(/\/+$/, ''),
    validate: (publicUrl) => {
      const url = URL.canParse(publicUrl) ? new URL(publicUrl) : undefined;
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.pathname !== '/' || url.search !== '' || url.username !== '' || url.password !== '') {
        throw new ConfigError(`invalid public URL '${publicUrl}': give a scheme, a host and a port only, e.g. https://edge.site.example:9324`);
      }
    },
  }),
  adminHost: option({
    flag: 'admin-host', placeholder: 'H', variable: 'HOLDFAST_ADMIN_HOST', default: '127.0.0.1', group: 'security',
    help: 'address of the admin listener (/status, /metrics, the status page); beyond loopback it needs --admin-token-file',
    parse: (text) => text,
    validate: validateHost,
  }),
  adminPort: option({
    flag: 'admin-port', placeholder: 'N', variable: 'HOLDFAST_ADMIN_PORT', default: '9325', group: 'security',
    help: 'port of the admin listener; 0: any free port',
    parse: parsePort,
    validate: validatePort,
  }),
  adminTokenFile: option({
    flag: 'admin-token-file', placeholder: 'FILE', variable: 'HOLDFAST_ADMIN_TOKEN_FILE', default: NONE, group: 'security',
    help: 'a file holding the token every request to the admin listener must carry (Authorization: Bearer, or as the password of Basic)',
    parse: (text) => text,
  }),
  tlsCert: option({
    flag: 'tls-cert', placeholder: 'FILE', variable: 'HOLDFAST_TLS_CERT', default: NONE, group: 'security',
    help: 'PEM certificate (chain): the shim speaks HTTPS (and the admin listener too, beyond loopback); read again on SIGHUP',
    parse: (text) => text,
  }),
  tlsKey: option({
    flag: 'tls-key', placeholder: 'FILE', variable: 'HOLDFAST_TLS_KEY', default: NONE, group: 'security',
    help: "the certificate's PEM private key",
    parse: (text) => text,
  }),
  credentialsFile: option({
    flag: 'credentials-file', placeholder: 'FILE', variable: 'HOLDFAST_CREDENTIALS_FILE', default: { value: undefined, means: `$CREDENTIALS_DIRECTORY/${SYSTEMD_CREDENTIAL} when present` }, group: 'security',
    help: 'more credentials that may sign requests, a KEY:SECRET line each, kept off the command line',
    parse: (text) => text,
    defaultFromEnvironment: (env) => {
      const file = env.CREDENTIALS_DIRECTORY ? join(env.CREDENTIALS_DIRECTORY, SYSTEMD_CREDENTIAL) : undefined;
      return file !== undefined && existsSync(file) ? file : undefined;
    },
  }),
};

/** The shim's configuration: a value for each option. */
export type ShimConfig = { readonly [Key in keyof typeof OPTIONS]: (typeof OPTIONS)[Key] extends ConfigOption<infer T> ? T : never };

/** OPTIONS as a list, for what goes over every option. */
const OPTION_LIST = Object.entries(OPTIONS) as [keyof ShimConfig, ConfigOption<unknown>][];

function defaultValue<T>(option: ConfigOption<T>): T {
  return typeof option.default === 'string' ? option.parse(option.default) : option.default.value;
}

export const DEFAULTS = Object.fromEntries(OPTION_LIST.map(([key, option]) => [key, defaultValue(option)])) as ShimConfig;

/** An option's flag, variables and default, as --help and the README show them. */
export function describeOption(option: ConfigOption<unknown>): { flag: string; environment: string; default: string } {
  return {
    flag: `--${option.flag} ${option.placeholder}`,
    environment: option.fallbackVariable === undefined ? option.variable : `${option.variable}, else ${option.fallbackVariable}`,
    default: typeof option.default === 'string' ? option.default : option.default.means,
  };
}

const HELP_COLUMN = 28;
const HELP_WIDTH = 100;

/** A flag and its help, the help wrapped in a column of its own. */
function helpEntry(flag: string, help: string): string {
  const lines = [`  ${flag}`.padEnd(HELP_COLUMN - 1)];
  for (const word of help.split(' ')) {
    if (lines.at(-1)!.length + 1 + word.length > HELP_WIDTH) lines.push(' '.repeat(HELP_COLUMN - 1));
    lines[lines.length - 1] += ` ${word}`;
  }
  return lines.join('\n');
}

export const USAGE = [
  'Usage: holdfast [options]            (from a checkout: npm start -- [options])',
  ...Object.entries(GROUP_HEADINGS).flatMap(([group, heading]) => [
    '',
    ...(heading === undefined ? [] : [heading]),
    ...OPTION_LIST.filter(([, option]) => option.group === group).map(([, option]) => {
      const { flag, environment, default: shownDefault } = describeOption(option);
      return helpEntry(flag, `${option.help} (${environment}, default ${shownDefault})`);
    }),
  ]),
  helpEntry('--version', 'print the version'),
  helpEntry('--help', 'print this text'),
  '',
  'Usage: holdfast backup FILE [options]',
  helpEntry(
    'FILE',
    "an online copy of the shim's database (--db) to FILE, and of the fallback agents' (--edge-db) when there is one to FILE with .edge-agents before its extension; the shim may run meanwhile (README: Upgrade and rollback)",
  ),
  'A duration T is a number with its unit: 500ms, 30s, 2m.',
].join('\n');

/** Checks a configuration, each value and then the values that go together; throws a ConfigError saying what is wrong. */
export function validateConfig(config: ShimConfig): ShimConfig {
  for (const [key, option] of OPTION_LIST) {
    const value = config[key];
    if (value !== undefined) option.validate?.(value);
  }
  // The stack's outputs give the upstream and its region where no option does.
  const wired = config.stackOutputs !== undefined;
  if (config.upstream !== undefined && !wired && !(config.upstreamRegion && REGION.test(config.upstreamRegion))) {
    throw new ConfigError('the upstream needs its region: pass --upstream-region, or set AWS_REGION');
  }
  if (config.siteId !== undefined && config.upstream === undefined && !wired) {
    throw new ConfigError('fallback agents (--site-id) run only in front of a region: pass --upstream (or --stack-outputs) too');
  }
  if (isPostgresLocation(config.dbFile) && config.edgeDbFile !== undefined && !isPostgresLocation(config.edgeDbFile)) {
    throw new ConfigError("on PostgreSQL the fallback agents' stores are shared by the site's nodes: give --edge-db a postgres:// URL, or leave it out for the --db database");
  }
  if (!isLoopback(config.host) && config.credentials.length === 0 && config.credentialsFile === undefined) {
    throw new ConfigError(`refusing to listen on ${config.host} without credentials: pass --credentials-file FILE (or --credentials KEY:SECRET), or listen on loopback`);
  }
  if (!isLoopback(config.adminHost) && config.adminTokenFile === undefined) {
    throw new ConfigError(`refusing to serve the operator pages on ${config.adminHost} without a token: pass --admin-token-file FILE, or keep --admin-host on loopback`);
  }
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    throw new ConfigError('TLS needs both --tls-cert and --tls-key');
  }
  return config;
}

/** Whether the database option names a PostgreSQL database rather than an SQLite file. */
/** A database location that is a URL of another scheme than PostgreSQL's: refused rather than taken for a file's name. */
function refuseOtherUrls(location: string): void {
  try {
    isPostgresLocation(location);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

/** The database option as logs may show it: a PostgreSQL URL's password masked. */
export function withoutPassword(db: string): string {
  if (!isPostgresLocation(db)) return db;
  const url = new URL(db);
  if (url.password !== '') url.password = '***';
  return url.href;
}

/** The region in the shim's ARNs and in the signatures it checks: the one given, else its upstream's (clients sign for the site's region), else us-east-1. */
export function shimRegion(config: Pick<ShimConfig, 'region' | 'upstream' | 'upstreamRegion'>): string {
  return config.region ?? (config.upstream === undefined ? undefined : config.upstreamRegion) ?? STANDALONE_REGION;
}

/** The fallback agents' database: the one given, else edge-agents.db next to the shim's, or on PostgreSQL the shim's own database. */
export function edgeDatabase(config: Pick<ShimConfig, 'dbFile' | 'edgeDbFile'>): string {
  return config.edgeDbFile ?? (isPostgresLocation(config.dbFile) ? config.dbFile : join(dirname(config.dbFile), 'edge-agents.db'));
}

/** The configuration from command-line options, then environment variables (an empty one counts as unset), then defaults. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): ShimConfig | 'help' | 'version' {
  const commandLine = parseCommandLine(argv);
  if (commandLine.help) return 'help';
  if (commandLine.version) return 'version';
  const values = OPTION_LIST.map(([key, option]) => {
    // A text, or the texts of an option that repeats: every option but --help and --version takes text.
    const given = commandLine[option.flag] as string | string[] | undefined;
    const texts = typeof given === 'string' ? [given] : (given ?? textsOfVariable(option, env));
    return [key, texts === undefined ? defaultValue(option) : valueOf(option, texts)];
  });
  return validateConfig(Object.fromEntries(values) as ShimConfig);
}

/** The texts of an option's variable, or of its fallback, or of another program's environment; an empty variable counts as unset. */
function textsOfVariable(option: ConfigOption<unknown>, env: NodeJS.ProcessEnv): string[] | undefined {
  const text = env[option.variable] || (option.fallbackVariable && env[option.fallbackVariable]) || option.defaultFromEnvironment?.(env);
  if (!text) return undefined;
  return option.repeats ? text.split(/[\s,]+/).filter((part) => part !== '') : [text];
}

/** The value of the texts given: a repeated option's values one after the other, else the one text's. */
function valueOf(option: ConfigOption<unknown>, texts: string[]): unknown {
  return option.repeats ? texts.flatMap((text) => option.parse(text) as unknown[]) : option.parse(texts[0]!);
}

/** The flags of secret options given on the command line, where any local user can read them. */
export function secretsOnCommandLine(argv: string[]): string[] {
  const commandLine = parseCommandLine(argv);
  return OPTION_LIST.filter(([, option]) => option.secret && commandLine[option.flag] !== undefined).map(([, option]) => `--${option.flag}`);
}

function parseCommandLine(argv: string[]) {
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean' }, version: { type: 'boolean' } };
  for (const [, option] of OPTION_LIST) options[option.flag] = { type: 'string', multiple: option.repeats === true };
  try {
    return parseArgs({ args: argv, options, strict: true }).values;
  } catch (error) {
    // parseArgs errors (unknown option, missing value, stray argument) are configuration errors.
    throw new ConfigError((error as Error).message);
  }
}
