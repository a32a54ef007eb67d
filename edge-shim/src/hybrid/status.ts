import type { Metrics } from '../observability/metrics.js';
import { withoutAccountDetails } from '../observability/redaction.js';
import type { EdgeStatus, SiteStatus } from '../observability/status.js';
import type { LocalQueues } from './local-queues.js';
import type { QueueView, SiteNode } from './site/ports.js';
import type { ModeMachine } from './mode.js';
import type { OutageParticipant, OutageWorkStatus } from './outage.js';
import type { LinkEstimates } from './link/estimates.js';
import type { Region } from './region/region.js';
import type { Replayer } from './replay/replayer.js';

const NO_WORK: OutageWorkStatus = { agents: [], sync: null, conflicts: { latest: [], count: 0 } };

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
const ageSeconds = (since: number | undefined, now: number) => (since === undefined ? null : Math.max(0, Math.round((now - since) / 1000)));

export interface HybridParts {
  readonly local: LocalQueues;
  /** The site's queues and what they hold (every node's backlog, on a site of several). */
  readonly view: QueueView;
  readonly region: Region;
  readonly link: LinkEstimates;
  readonly mode: ModeMachine;
  readonly replayer: Replayer;
  readonly metrics: Metrics;
  readonly participant?: OutageParticipant;
  /** The site's nodes as last heard, this one first. */
  readonly nodes: () => readonly SiteNode[];
}

// A node not heard from for this long no longer counts towards the site's mode (it is shown, with its age).
const NODE_SILENT_MS = 10_000;

/**
 * The status of the hybrid edge: mode and why, the region, the backlog queue by queue, replay, sync
 * and agents. Texts that may quote the region (reasons, failures, errors) are shown without ARNs
 * or account ids: the log keeps them whole.
 */
export function hybridStatus(parts: HybridParts, clock: () => number = Date.now): EdgeStatus {
  const { local, view, region, link, mode, replayer, metrics } = parts;
  const work = parts.participant?.status() ?? NO_WORK;
  const now = clock();
  const queues = view.queues().map((queue) => ({
    name: queue.name,
    fifo: queue.fifo,
    local: view.counts(queue.name),
    stored: view.storedMessages(queue.name),
    oldest: view.oldestMessageAt(queue.name),
  }));
  const backlog = queues.reduce((sum, queue) => sum + queue.stored, 0);
  const oldest = queues.reduce<number | undefined>((min, queue) => (queue.oldest !== undefined && (min === undefined || queue.oldest < min) ? queue.oldest : min), undefined);
  const [latest] = mode.transitions;
  const recovery = mode.recoveryProgress;
  const rate = replayer.ratePerSecond();
  return {
    mode: mode.mode,
    since: new Date(latest!.at).toISOString(),
    reason: withoutAccountDetails(mode.reason),
    transitions: mode.transitions.map((transition) => ({ ...transition, at: new Date(transition.at).toISOString(), reason: withoutAccountDetails(transition.reason) })),
    breaker: region.breakerState,
    upstream: {
      url: region.endpoint,
      region: region.name,
      lastSuccessAt: iso(region.lastSuccessAt),
      lastFailureAt: iso(region.lastFailureAt),
      lastFailure: withoutAccountDetails(region.lastFailure ?? null),
      credentialsRefused: withoutAccountDetails(region.identityProblem?.message ?? null),
      recovery: {
        successes: recovery.successes,
        needed: recovery.needed,
        sinceFirstSuccessSeconds: recovery.sinceFirstSuccessMs === undefined ? null : recovery.sinceFirstSuccessMs / 1000,
        neededSeconds: recovery.neededMs / 1000,
      },
    },
    backlog,
    oldestBacklogAgeSeconds: ageSeconds(oldest, now),
    replay: {
      state: backlog === 0 ? 'idle' : mode.mode === 'offline' ? 'waiting' : 'running',
      replayed: replayer.replayed,
      rate,
      etaSeconds: backlog > 0 && rate > 0 ? Math.ceil(backlog / rate) : null,
      lastError: withoutAccountDetails(replayer.lastError ?? null),
      window: replayer.window.size,
      linkBytesPerSecond: link.bytesPerSecond === undefined ? null : Math.round(link.bytesPerSecond),
      possiblyDuplicated: replayer.possiblyDuplicated,
    },
    sync: work.sync && { ...work.sync, lastError: withoutAccountDetails(work.sync.lastError) },
    // An agent's restart reason may quote its error, which may name the region's resources.
    agents: work.agents.map((agent) => ({ ...agent, lastRestartReason: withoutAccountDetails(agent.lastRestartReason) })),
    conflicts: work.conflicts.latest,
    conflictCount: work.conflicts.count,
    queues: queues.map((queue) => {
      const progress = replayer.queueProgress(queue.name);
      return {
        name: queue.name,
        fifo: queue.fifo,
        local: queue.local,
        backlog: queue.stored,
        oldestBacklogAgeSeconds: ageSeconds(queue.oldest, now),
        replayed: progress?.replayed ?? 0,
        replayRate: replayer.ratePerSecond(queue.name),
        replayWaits: queue.stored === 0 ? null : withoutAccountDetails(replayer.waitReason(queue.name) ?? null),
        possiblyDuplicated: progress?.possiblyDuplicated ?? 0,
        expired: metrics.expiredMessages(queue.name),
        path: mode.mode === 'offline' || queue.stored > 0 ? 'local' : 'upstream',
      };
    }),
    storage: local.health().storage,
    requests: metrics.requestsCarriedOut(),
    site: siteStatus(parts.nodes(), backlog, now),
  };
}

function siteStatus(nodes: readonly SiteNode[], backlog: number, now: number): SiteStatus {
  const heard = nodes.filter((node, index) => index === 0 || now - node.seenAt < NODE_SILENT_MS);
  const mode = heard.some((node) => node.mode === 'offline') ? 'offline' : backlog > 0 ? 'replaying' : 'online';
  return {
    mode,
    node: nodes[0]!.name,
    nodes: nodes.map((node) => ({ name: node.name, mode: node.mode, replays: node.replays, seenSecondsAgo: Math.max(0, Math.round((now - node.seenAt) / 1000)) })),
  };
}
