import { readFileSync } from 'node:fs';
import type { AwsCredentialIdentity } from '@smithy/types';
import type { ShimConfig } from '../config.js';
import type { Logger } from 'pino';
import { SqsError } from '../sqs/errors.js';
import type { QueueAttributes } from '../sqs/queue-attributes.js';
import type { Db } from '../sqs/database.js';
import type { SqsService } from '../sqs/service.js';
import { HybridBackend } from './hybrid.js';
import { QueueMirror } from './mirror.js';
import { type Mode, ModeMachine } from './mode.js';
import { Replayer } from './replayer.js';
import type { Metrics } from '../observability/metrics.js';
import type { EdgeStatus } from '../observability/status.js';
import { type EdgeWork, hybridStatus } from './status.js';
import { Upstream } from './upstream.js';

/** The hybrid's timings and rates, as the shim's configuration names them. */
type HybridTimings = Pick<
  ShimConfig,
  'upstreamTimeoutMs' | 'probeIntervalMs' | 'probeTimeoutMs' | 'recoveryProbes' | 'recoveryMs' | 'breakerFailures' | 'replayRate' | 'replayConcurrency'
>;

export interface HybridSettings extends HybridTimings {
  /** The region's SQS endpoint. */
  readonly upstream: string;
  readonly upstreamRegion: string;
  /** Fixed credentials for the region (tests); otherwise the AWS SDK's default provider chain. */
  readonly upstreamCredentials?: AwsCredentialIdentity;
  /** Queues to know at the edge before the region was ever reached (see `readQueuesFile`). */
  readonly queues: readonly DeclaredQueue[];
}

export interface DeclaredQueue {
  readonly name: string;
  readonly attributes: QueueAttributes;
}

export interface HybridEdge {
  readonly backend: HybridBackend;
  readonly mode: ModeMachine;
  readonly replayer: Replayer;
  readonly mirror: QueueMirror;
  status(): EdgeStatus;
  /** Hooks the fallback agents and the sync into the edge: their status, and what runs before a replay. */
  attach(work: EdgeWork & { beforeReplay?(): Promise<void>; onOffline?(): void }): void;
  close(): Promise<void>;
}

// The breaker's failure-rate arm: half the requests over 10 s, at 5 or more a second.
const FAILURE_RATE = 0.5;
const FAILURE_RATE_WINDOW_MS = 10_000;
const FAILURE_RATE_MINIMUM_RPS = 5;
const MAX_ATTEMPTS = 3;

/**
 * Reads the queues file: `{ "queues": [{ "name": "orders.fifo", "attributes": { "FifoQueue": "true", ... } }] }`,
 * attributes as CreateQueue takes them; a redrive policy may name a dead-letter queue by its ARN in
 * any account and region (only the name counts), listed before or after it.
 */
export function readQueuesFile(file: string): DeclaredQueue[] {
  let document: unknown;
  try {
    document = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read the queues file ${file}: ${(error as Error).message}`);
  }
  const list = (document as { queues?: unknown } | null)?.queues;
  if (!Array.isArray(list)) throw new Error(`the queues file ${file} must hold {"queues": [{"name": ..., "attributes": {...}}]}`);
  return list.map((entry, index) => {
    const { name, attributes = {} } = (entry ?? {}) as { name?: unknown; attributes?: unknown };
    const valid = typeof attributes === 'object' && attributes !== null && Object.values(attributes).every((value) => typeof value === 'string');
    if (typeof name !== 'string' || name === '' || !valid) throw new Error(`queue ${index + 1} of ${file} needs a "name" and string "attributes"`);
    return { name, attributes: attributes as QueueAttributes };
  });
}

/** Dead-letter queues first: a queue's redrive policy must find its dead-letter queue at the edge. */
function deadLettersFirst(queues: readonly DeclaredQueue[]): DeclaredQueue[] {
  const targetOf = (queue: DeclaredQueue) => {
    try {
      return String((JSON.parse(queue.attributes.RedrivePolicy ?? '{}') as { deadLetterTargetArn?: string }).deadLetterTargetArn ?? '').split(':').pop();
    } catch {
      return undefined;
    }
  };
  const ordered: DeclaredQueue[] = [];
  const visit = (queue: DeclaredQueue, path: Set<string>) => {
    if (ordered.includes(queue) || path.has(queue.name)) return;
    path.add(queue.name);
    const target = queues.find((candidate) => candidate.name === targetOf(queue));
    if (target) visit(target, path);
    ordered.push(queue);
  };
  for (const queue of queues) visit(queue, new Set());
  return ordered;
}

/** Starts the hybrid edge in front of the region, over the local store. */
export async function startHybridEdge(local: SqsService, db: Db, settings: HybridSettings, logger: Logger, metrics: Metrics): Promise<HybridEdge> {
  const upstream = new Upstream({
    endpoint: settings.upstream,
    region: settings.upstreamRegion,
    credentials: settings.upstreamCredentials,
    connectTimeoutMs: Math.min(settings.upstreamTimeoutMs, 1000),
    requestTimeoutMs: settings.upstreamTimeoutMs,
    maxAttempts: MAX_ATTEMPTS,
  });
  let work: (EdgeWork & { beforeReplay?(): Promise<void>; onOffline?(): void }) | undefined;
  const mode = new ModeMachine(
    {
      consecutiveFailures: settings.breakerFailures,
      failureRate: FAILURE_RATE,
      failureRateWindowMs: FAILURE_RATE_WINDOW_MS,
      failureRateMinimumRps: FAILURE_RATE_MINIMUM_RPS,
      probeIntervalMs: settings.probeIntervalMs,
      recoveryProbes: settings.recoveryProbes,
      recoveryMs: settings.recoveryMs,
    },
    // A cheap call any principal may make; a refusal (access denied) proves the region answers too.
    () => upstream.call('ListQueues', { MaxResults: 1 }, undefined, settings.probeTimeoutMs).catch((error: unknown) => {
      if (error instanceof SqsError) return {};
      throw error;
    }),
    async () => work?.beforeReplay?.(),
    logger.child({ component: 'mode' }),
  );
  const mirror = new QueueMirror(db, upstream, local, logger.child({ component: 'mirror' }));
  const replayer = new Replayer(local, upstream, mirror, mode, { ratePerSecond: settings.replayRate, concurrency: settings.replayConcurrency }, metrics, logger.child({ component: 'replay' }));
  const backend = new HybridBackend(local, upstream, mirror, mode, replayer, metrics, logger.child({ component: 'hybrid' }));
  const released = await local.releaseReplayLeases();
  if (released > 0) logger.info({ released }, 'made visible again the messages a replay had taken when the shim stopped');
  for (const queue of deadLettersFirst(settings.queues)) {
    const attributes = mirror.toLocalAttributes(queue.attributes);
    await mirror.declare(queue.name, attributes, 'declared');
  }
  mode.on('change', (transition) => {
    replayer.wake();
    if (transition.to === 'offline') work?.onOffline?.();
  });
  // Whether the region is there decides the first mode: one probe, answered or not.
  const initial: Mode = await upstream
    .call('ListQueues', { MaxResults: 1 }, undefined, settings.upstreamTimeoutMs)
    .then(
      () => 'online' as const,
      (error: unknown) => (error instanceof SqsError ? ('online' as const) : ('offline' as const)),
    );
  mode.start(initial, initial === 'offline' ? 'the region did not answer at start' : 'the region answered at start');
  replayer.start();
  logger.info({ upstream: upstream.endpoint, region: upstream.region, mode: initial, declaredQueues: settings.queues.length }, `hybrid edge in front of ${upstream.endpoint}`);
  return {
    backend,
    mode,
    replayer,
    mirror,
    status: () => hybridStatus({ local, upstream, mirror, mode, replayer, metrics, work }),
    attach(attached) {
      work = attached;
      if (mode.mode === 'offline') attached.onOffline?.();
    },
    async close() {
      mode.stop();
      await replayer.stop();
      upstream.destroy();
    },
  };
}
