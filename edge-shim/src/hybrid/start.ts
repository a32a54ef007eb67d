import type { AwsCredentialIdentity } from '@smithy/types';
import type { Logger } from 'pino';
import type { ShimConfig } from '../config.js';
import type { Metrics } from '../observability/metrics.js';
import type { EdgeStatus } from '../observability/status.js';
import { type DeclaredQueue, deadLettersFirst } from './declared-queues.js';
import type { LocalQueues } from './local-queues.js';
import { type Mode, ModeMachine } from './mode.js';
import type { OutageParticipant } from './outage.js';
import { RegionClient } from './region/client.js';
import { QueueMirror } from './region/mirror.js';
import { Region } from './region/region.js';
import { Replayer } from './replay/replayer.js';
import { ReplayStore } from './replay/store.js';
import { HybridRouter } from './router.js';
import { hybridStatus } from './status.js';
import type { LinkEstimates } from './link/estimates.js';
import { RepeatedLog } from '../repeated-log.js';
import type { QueueView, SiteNode, SiteStore } from './site/ports.js';
import { SITE_QUESTION_MS, within } from './site/within.js';

/** The hybrid's timings and rates, as the shim's configuration names them. */
type HybridTimings = Pick<
  ShimConfig,
  'upstreamTimeoutMs' | 'probeIntervalMs' | 'probeTimeoutMs' | 'recoveryProbes' | 'recoveryMs' | 'breakerFailures' | 'replayRate' | 'replayBandwidth' | 'replayConcurrency'
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

/** What the hybrid edge stands on: the edge's own queues, the site's store, and whatever takes part in an outage. */
export interface HybridFoundation {
  readonly local: LocalQueues;
  readonly site: SiteStore;
  /** What the edge learns of its path to the region, shared with the sync. */
  readonly link: LinkEstimates;
  readonly participant?: OutageParticipant;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly clock?: () => number;
}

export interface HybridEdge {
  /** What the HTTP front calls: the SQS operations, routed between the region and the edge. */
  readonly router: HybridRouter;
  readonly mode: ModeMachine;
  readonly region: Region;
  readonly replayer: Replayer;
  /** The site's queues, as the routing reads them (the access policy's "known" queues). */
  readonly view: QueueView;
  /** The status document, on a shared site with the view of its queues read again first. */
  status(): Promise<EdgeStatus>;
  close(): Promise<void>;
}

// The breaker's failure-rate arm: half the requests over 10 s, at 5 or more a second.
const FAILURE_RATE = 0.5;
const FAILURE_RATE_WINDOW_MS = 10_000;
const FAILURE_RATE_MINIMUM_RPS = 5;
const MAX_ATTEMPTS = 3;
// On a site of several nodes, each reads what the others changed (queues, backlog, mirror) and tells them its mode this often.
const SITE_REFRESH_MS = 1000;

/** Starts the hybrid edge in front of the region, over the edge's own queues. */
export async function startHybridEdge(foundation: HybridFoundation, settings: HybridSettings): Promise<HybridEdge> {
  const { local, site, link, participant, metrics, logger, clock = Date.now } = foundation;
  const client = new RegionClient({
    endpoint: settings.upstream,
    region: settings.upstreamRegion,
    credentials: settings.upstreamCredentials,
    connectTimeoutMs: Math.min(settings.upstreamTimeoutMs, 1000),
    requestTimeoutMs: settings.upstreamTimeoutMs,
    maxAttempts: MAX_ATTEMPTS,
    maxTransfers: settings.replayConcurrency,
  });
  const mirror = new QueueMirror(site.mirrorRows, { endpoint: client.endpoint, name: client.region }, local, site.view, logger.child({ component: 'mirror' }), clock);
  await mirror.reload();
  const region = new Region({
    client,
    mirror,
    breaker: {
      consecutiveFailures: settings.breakerFailures,
      failureRate: FAILURE_RATE,
      failureRateWindowMs: FAILURE_RATE_WINDOW_MS,
      failureRateMinimumRps: FAILURE_RATE_MINIMUM_RPS,
      halfOpenAfterMs: settings.probeIntervalMs,
    },
    probeTimeoutMs: settings.probeTimeoutMs,
    requestTimeoutMs: settings.upstreamTimeoutMs,
    link,
    logger: logger.child({ component: 'region' }),
    clock,
  });
  const mode = new ModeMachine(
    { probeIntervalMs: settings.probeIntervalMs, recoveryProbes: settings.recoveryProbes, recoveryMs: settings.recoveryMs },
    region,
    participant,
    logger.child({ component: 'mode' }),
    clock,
  );
  const store = new ReplayStore(local, (context) => site.ledger(context));
  // The first declaration of a queue gives its priority (the queues file's come before the workflow's).
  const priorities = new Map<string, number>();
  for (const queue of settings.queues) if (!priorities.has(queue.name)) priorities.set(queue.name, queue.priority ?? 0);
  const replayer = new Replayer(
    {
      store,
      view: site.view,
      lease: site.replayLease,
      region,
      mode,
      link,
      mayReplay: (name) => !participant?.holdsReplayOf(name),
      priorityOf: (name) => priorities.get(name) ?? 0,
      metrics,
      logger: logger.child({ component: 'replay' }),
      clock,
    },
    { ratePerSecond: settings.replayRate, bytesPerSecond: settings.replayBandwidth, concurrency: settings.replayConcurrency, minTimeoutMs: settings.upstreamTimeoutMs },
  );
  const router = new HybridRouter({
    local,
    region,
    mirror,
    view: site.view,
    mode,
    stored: (name, count) => {
      site.view.stored(name, count);
      replayer.wake();
    },
    logger: logger.child({ component: 'hybrid' }),
    clock,
  });
  for (const queue of deadLettersFirst(settings.queues)) {
    await mirror.declare(queue.name, mirror.toLocalAttributes(queue.attributes), 'declared');
  }
  mode.on('change', () => replayer.wake());
  site.replayLease.onChange(() => replayer.wake());
  // Whether the region is there decides the first mode: one probe, answered or not.
  const first = await region.reachable(settings.upstreamTimeoutMs);
  const initial: Mode = first.reachable ? 'online' : 'offline';
  mode.start(initial, first.reachable ? 'the region answered at start' : `the region did not answer at start: ${first.reason}`);
  replayer.start();
  const self = (): SiteNode => ({ name: site.nodeName, mode: mode.mode, replays: site.replayLease.held, seenAt: clock() });
  let nodes: readonly SiteNode[] = [self()];
  const sharing = site.shared ? keepUpWithSite(site, mirror, () => mode.mode, (heard) => (nodes = heard), logger) : undefined;
  logger.info({ upstream: region.endpoint, region: region.name, mode: initial, declaredQueues: settings.queues.length }, `hybrid edge in front of ${region.endpoint}`);
  return {
    router,
    mode,
    region,
    replayer,
    view: site.view,
    async status() {
      // What the site holds now, not as of the last refresh; a database that does not answer leaves the last one read.
      if (site.shared) await within(SITE_QUESTION_MS, site.view.refresh(), undefined);
      return hybridStatus({ local, view: site.view, region, link, mode, replayer, metrics, participant, nodes: () => (site.shared ? [self(), ...nodes.slice(1)] : [self()]) }, clock);
    },
    async close() {
      await sharing?.stop();
      mode.stop();
      await replayer.stop();
      region.destroy();
      await site.close();
    },
  };
}

/** Reads what the other nodes of a shared site changed, and tells them this node's mode, every second until stopped. */
function keepUpWithSite(site: SiteStore, mirror: QueueMirror, mode: () => Mode, heard: (nodes: readonly SiteNode[]) => void, logger: Logger): { stop(): Promise<void> } {
  const log = new RepeatedLog(logger);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const tick = async () => {
    try {
      await site.view.refresh();
      await mirror.reload();
      heard(await site.heartbeat(mode()));
      log.clear('site');
    } catch (error) {
      log.log('warn', 'site', { err: error }, 'cannot read the site\'s state from the database; the last one read stands');
    }
    if (stopped) return;
    timer = setTimeout(() => (running = tick()), SITE_REFRESH_MS);
    timer.unref();
  };
  running = tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
