import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS } from '../edge-shim/src/config.js';
import type { EdgeStatus } from '../edge-shim/src/observability/status.js';
import { ENV } from '../functions/src/workflow-definition.js';
import { type ShimProcess, spawnShim } from '../testkit/shim-process.js';
import type { DrillRegion } from './region.js';

/**
 * How quickly the edge notices an outage and trusts the region again: the shim's own options. The
 * drill runs the edge as shipped unless told otherwise; short trials use `FAST_EDGE_TIMING`.
 */
export interface EdgeTiming {
  readonly upstreamTimeoutMs: number;
  readonly probeIntervalMs: number;
  readonly probeTimeoutMs: number;
  readonly breakerFailures: number;
  readonly recoveryProbes: number;
  readonly recoveryMs: number;
  /** Messages a second the replay hands to the region at most. */
  readonly replayRate: number;
  /** Batches in flight per queue during a replay, writes in flight during the sync. */
  readonly replayConcurrency: number;
  /** A warm standby per fallback agent (two processes per edge stage). */
  readonly agentStandby: boolean;
}

/** The shim's defaults (`npm start -- --help`). */
export const SHIPPED_EDGE_TIMING: EdgeTiming = {
  upstreamTimeoutMs: DEFAULTS.upstreamTimeoutMs,
  probeIntervalMs: DEFAULTS.probeIntervalMs,
  probeTimeoutMs: DEFAULTS.probeTimeoutMs,
  breakerFailures: DEFAULTS.breakerFailures,
  recoveryProbes: DEFAULTS.recoveryProbes,
  recoveryMs: DEFAULTS.recoveryMs,
  replayRate: DEFAULTS.replayRate,
  replayConcurrency: DEFAULTS.replayConcurrency,
  agentStandby: DEFAULTS.agentStandby,
};

/**
 * For outages of a few seconds: probes five times a second, offline after three failures, back
 * after three good probes over a second; no standby agents (fewer processes on a small machine).
 */
export const FAST_EDGE_TIMING: EdgeTiming = {
  upstreamTimeoutMs: 3000,
  probeIntervalMs: 200,
  probeTimeoutMs: 1000,
  breakerFailures: 3,
  recoveryProbes: 3,
  recoveryMs: 1000,
  replayRate: DEFAULTS.replayRate,
  replayConcurrency: DEFAULTS.replayConcurrency,
  agentStandby: false,
};

export interface DrillEdge {
  /** The shim's URL: producers' SQS endpoint. */
  readonly url: string;
  /** Its admin listener: the operator pages (`/status`, `/metrics`, the status page at `/`). */
  readonly adminUrl: string;
  /** A credential the shim accepts (producers sign with it). */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly siteId: string;
  /** The shim's log (JSON lines). */
  readonly logFile: string;
  readonly process: ShimProcess;
  status(): Promise<EdgeStatus>;
  stop(): Promise<void>;
}

export interface EdgeOptions {
  readonly region: DrillRegion;
  /** The fault proxy's address (host:port) in front of the region: the edge's only way there. */
  readonly regionThrough: string;
  /** A directory of the drill's own for the shim's databases, its log and the agents' env file. */
  readonly dir: string;
  readonly timing: EdgeTiming;
  readonly siteId?: string;
  /** A PostgreSQL database the site's nodes share (its queues and the agents' stores); SQLite files in `dir` otherwise. */
  readonly database?: string;
  /** The credential producers sign with; one of its own otherwise. A site's nodes share one. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** This node's name in its log file's (`shim-NAME.log`); one node's log is `shim.log`. */
  readonly node?: string;
}

/** A credential for the drill's producers. */
export function drillCredentials(): { readonly accessKeyId: string; readonly secretAccessKey: string } {
  return { accessKeyId: 'AKIDDRILL', secretAccessKey: randomBytes(16).toString('hex') };
}

/**
 * The edge as a site runs it: the shim in a process of its own (`npm start` with the hybrid and
 * fallback-agent options), in front of the region through the fault proxy for SQS and for the
 * sync's DynamoDB writes alike, its fallback agents in processes of their own under its supervisor.
 */
export async function startEdge(options: EdgeOptions): Promise<DrillEdge> {
  const { region, timing } = options;
  const siteId = options.siteId ?? 'drill-site';
  const credentials = options.credentials ?? drillCredentials();
  const agentEnv = join(options.dir, 'agents.env');
  writeFileSync(agentEnv, `${ENV.gatewayUrl}=${region.gateway.url}\n${ENV.notifierUrl}=${region.notifier.url}\nPOWERTOOLS_LOG_LEVEL=ERROR\n`);
  const through = `http://${options.regionThrough}`;
  const logFile = join(options.dir, options.node ? `shim-${options.node}.log` : 'shim.log');
  // On PostgreSQL the agents' stores are in the site's database (the shim's default there).
  const databases = options.database ? { dbFile: options.database, agents: [] } : { dbFile: join(options.dir, 'edge.db'), agents: ['--edge-db', join(options.dir, 'edge-agents.db')] };
  const shim = await spawnShim({
    dbFile: databases.dbFile,
    credentials: [`${credentials.accessKeyId}:${credentials.secretAccessKey}`],
    logFile,
    args: [
      '--upstream', through,
      '--upstream-region', region.aws.region,
      '--region-dynamodb', through,
      '--site-id', siteId,
      ...databases.agents,
      '--agent-env', agentEnv,
      '--upstream-timeout', `${timing.upstreamTimeoutMs}ms`,
      '--probe-interval', `${timing.probeIntervalMs}ms`,
      '--probe-timeout', `${timing.probeTimeoutMs}ms`,
      '--breaker-failures', String(timing.breakerFailures),
      '--recovery-probes', String(timing.recoveryProbes),
      '--recovery-time', `${timing.recoveryMs}ms`,
      '--replay-rate', String(timing.replayRate),
      '--replay-concurrency', String(timing.replayConcurrency),
      '--agent-standby', timing.agentStandby ? 'on' : 'off',
      // The default 64 MiB reserve is written next to the database: more than a drill needs.
      '--disk-reserve', '8MiB',
    ],
    // The region's credentials come through the SDK's default chain, as on a site; AWS_ENDPOINT_URL
    // (LocalStack, for the drill itself) must not lead the edge around the proxy.
    env: {
      AWS_ACCESS_KEY_ID: region.aws.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: region.aws.credentials.secretAccessKey,
      AWS_REGION: region.aws.region,
      AWS_ENDPOINT_URL: through,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
  });
  return {
    url: shim.url,
    adminUrl: shim.adminUrl,
    credentials,
    siteId,
    logFile,
    process: shim,
    async status() {
      const response = await fetch(`${shim.adminUrl}/status`, { signal: AbortSignal.timeout(10_000) });
      if (!response.ok) throw new Error(`GET /status answered ${response.status}`);
      return (await response.json()) as EdgeStatus;
    },
    stop: () => shim.stop('SIGTERM'),
  };
}
