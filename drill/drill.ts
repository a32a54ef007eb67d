import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { EdgeStatus } from '../edge-shim/src/observability/status.js';
import { payments } from '../functions/src/workflows/payments.js';
import { humanReviewQueueName, stageQueueNames } from '../functions/src/workflow-definition.js';
import type { FaultMode, SteadyMode } from '../testkit/fault-modes.js';
import { FaultProxy } from '../testkit/fault-proxy.js';
import { type MadeConflict, makeConflict } from './conflict.js';
import { type EdgeTiming, SHIPPED_EDGE_TIMING } from './edge.js';
import { type DrillSite, startSite } from './site.js';
import { EdgeObserver } from './observer.js';
import { PaymentMix } from './payments-mix.js';
import { Producers } from './producers.js';
import { type DrillRegion, startRegion } from './region.js';
import { type Findings, isFinal, loadSagas, verify } from './verify.js';

export const OUTAGE_KINDS = ['blackhole', 'refuse', 'reset', 'lost-answers', 'flapping'] as const;
export type OutageKind = (typeof OUTAGE_KINDS)[number];

/** A site's uplink to the region: its rate and added latency, the same each way. */
export interface ThinLink {
  readonly bitsPerSecond: number;
  /** Added to each direction: a round trip gains twice this. */
  readonly latencyMs: number;
}

/** A DSL or LTE uplink: 1 Mbit/s, 150 ms each way. */
export const THIN_LINK: ThinLink = { bitsPerSecond: 1_000_000, latencyMs: 150 };

export function describeLink(link: ThinLink): string {
  const rate = link.bitsPerSecond >= 1e6 ? `${link.bitsPerSecond / 1e6} Mbit/s` : `${link.bitsPerSecond / 1e3} kbit/s`;
  return `a thin link, ${rate} and ${link.latencyMs} ms each way (one bottleneck per direction, shared)`;
}

/** The fault proxy's mode for the link outside the outage: a thin link (one bottleneck per direction, shared), or loopback as it is. */
export function linkMode(link: ThinLink | undefined): SteadyMode {
  if (!link) return { kind: 'pass' };
  const bytesPerSecond = Math.max(1, Math.round(link.bitsPerSecond / 8));
  return { kind: 'link', upstreamBytesPerSecond: bytesPerSecond, downstreamBytesPerSecond: bytesPerSecond, upstreamMs: link.latencyMs, downstreamMs: link.latencyMs };
}

export interface DrillOptions {
  /** How long the region is cut off. */
  readonly outageSeconds: number;
  readonly kind: OutageKind;
  /** Payments a second, all producers together. */
  readonly rate: number;
  /** Share (0 to 1) of low-risk payments: small amounts on quiet accounts. */
  readonly lowRiskShare: number;
  /** Fixes the payments sent and the flapping schedule. */
  readonly seed: number;
  /** Also run the same outage with producers talking straight to the region, for comparison. */
  readonly baseline?: boolean;
  /** Steady traffic before the cut; 5 s by default. */
  readonly warmupSeconds?: number;
  /** Traffic after the edge is back online, through the region again; 3 s by default. */
  readonly tailSeconds?: number;
  /** An AWS emulator to use (LocalStack, or one a test suite shares); a moto server of the drill's own otherwise. */
  readonly regionEndpoint?: string;
  /** How the edge detects the outage and trusts the region again; the shim's defaults unless given. */
  readonly timing?: EdgeTiming;
  /**
   * Writes one payment's authorize step differently into the region during the outage: a conflict
   * the edge must report and not overwrite. The outage then lasts until the edge has authorized a
   * low-risk payment (and the conflict is made) and escalated another, however long its agents take
   * to start: at least `outageSeconds`.
   */
  readonly makeConflict?: boolean;
  /** A wait that sees no progress for this long gives up and reports what it found; 300 s by default. */
  readonly stallSeconds?: number;
  /**
   * The edge's nodes: 1, one shim on SQLite; more, that many on one PostgreSQL database behind
   * HAProxy, and the one that holds the replay lease is SIGKILLed halfway through the outage.
   */
  readonly edgeNodes?: number;
  /** Keep the drill's directory (databases, the shim's and the region's logs) even when it passed. */
  readonly keepWorkDir?: boolean;
  /** The edge's link to the region outside the outage (and the baseline's): a thin one, or loopback as it is. */
  readonly link?: ThinLink;
  /** Ends the drill early: whatever it started is stopped, and runDrill rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Progress lines as the drill goes. */
  readonly log?: (line: string) => void;
}

/** What one run (through the edge, or the baseline) saw, beyond the findings of the checks. */
export interface RunTimings {
  /** From the cut to the edge going offline; null if it never did (an outage shorter than detection). */
  readonly detectionSeconds: number | null;
  /** From the region's return to the edge back online with nothing left to replay. */
  readonly backOnlineSeconds: number | null;
  /** From the region's return to fully synced and drained: every payment final in the region, its queues empty. */
  readonly recoverySeconds: number;
  readonly peakBacklog: number;
  readonly fallbackAgentRestarts: number;
  readonly replayed: number;
  /** The sync that carried the outage's work to the region, as the edge reported it when back online. */
  readonly sync: { readonly written: number; readonly identical: number; readonly conflicts: number; readonly skipped: number } | null;
  /** Times the edge went offline from the cut to the end (more than once: it saw the region fail again, e.g. too slow to answer). */
  readonly timesOffline: number;
  /** The edge node SIGKILLed during the outage (a site of several nodes): it held the replay lease. */
  readonly killedNode: string | null;
}

export type RunReport = Findings & RunTimings;

export interface DrillReport extends RunReport {
  readonly drill: {
    readonly outageSeconds: number;
    readonly kind: OutageKind;
    readonly rate: number;
    readonly lowRiskShare: number;
    readonly seed: number;
    readonly region: 'moto' | 'given';
    /** The link to the region outside the outage; null: loopback as it is. */
    readonly link: ThinLink | null;
    readonly timing: EdgeTiming;
    readonly edgeNodes: number;
    readonly startedAt: string;
    readonly durationSeconds: number;
  };
  /** The same outage without the edge: producers straight to the region through the same fault. */
  readonly baseline: RunReport | null;
  /** True when nothing was lost or doubled and every check passed, in both runs. */
  readonly passed: boolean;
  /** The drill's directory (databases, the shim's and the region's logs), kept when the drill failed or when asked. */
  readonly workDir: string | null;
}

const DEFAULT_STALL_SECONDS = 300;
const POLL_MS = 250;
const DRAIN_POLL_MS = 1000;

/**
 * The fault for an outage kind; flapping alternates cut-off spells with short returns, drawn from
 * the seed, the returns on the link outside the outage (`between`).
 */
export function outageFault(kind: OutageKind, seed: number, between: SteadyMode): FaultMode {
  switch (kind) {
    case 'lost-answers':
      return { kind: 'lost-answers', then: 'hang' };
    case 'flapping':
      return {
        kind: 'flapping',
        seed,
        steps: [
          { kind: 'blackhole', ms: [1000, 5000] },
          { ...between, ms: [200, 1000] },
          { kind: 'lost-answers', then: 'reset', ms: [500, 3000] },
          { ...between, ms: [200, 1000] },
        ],
      };
    default:
      return { kind };
  }
}

class Stalled extends Error {}

/** How long a wait may see no progress, and the signal that ends the drill. */
interface Patience {
  readonly stallMs: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * Waits for a state, polling: `done` on what `probe` gives. No deadline of its own, but a wait that
 * sees no progress (the `progress` signature unchanged, or the probe failing) for `stallMs` ends
 * with Stalled: the drill then reports what it found instead of waiting forever. The drill's signal
 * ends it at once.
 */
async function waitFor<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  progress: (value: T) => string,
  { stallMs, signal }: Patience,
  what: string,
  intervalMs = POLL_MS,
): Promise<T> {
  let signature: string | undefined;
  let changedAt = Date.now();
  for (;;) {
    signal?.throwIfAborted();
    let now: string;
    try {
      // A probe of a region or an edge that stopped answering must not hold a stopped drill.
      const value = await abortable(probe(), signal);
      if (done(value)) return value;
      now = progress(value);
    } catch (error) {
      signal?.throwIfAborted();
      now = `failing: ${(error as Error).message}`;
    }
    if (now !== signature) {
      signature = now;
      changedAt = Date.now();
    } else if (Date.now() - changedAt > stallMs) {
      throw new Stalled(`${what}: no progress for ${Math.round(stallMs / 1000)} s (${now})`);
    }
    await sleep(intervalMs, undefined, { signal });
  }
}

/** `promise`, or the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

const seconds = (from: number, to: number) => Math.round((to - from) / 100) / 10;

/** What a run has: its region, the fault proxy in front of it, the options, where to say how it goes. */
interface RunContext {
  readonly region: DrillRegion;
  readonly proxy: FaultProxy;
  readonly options: DrillOptions;
  readonly log: (line: string) => void;
}

/**
 * Runs the drill: a region with its agents, the edge in front of it through a fault proxy,
 * producers sending payments through the edge; the region cut for the outage, then given back;
 * every effect checked from the outside once all is synced and drained. With `baseline`, the same
 * outage again with the producers straight to the region.
 */
export async function runDrill(options: DrillOptions): Promise<DrillReport> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-drill-'));
  log(`its directory (databases, the shim's and the region's logs): ${dir}`);
  let emulator: DrillRegion['emulator'] = 'moto';
  const edgeRun = await inRegion(
    options,
    log,
    async (context) => {
      emulator = context.region.emulator;
      return runThroughEdge(context, dir);
    },
    join(dir, 'region.log'),
  );
  const baseline = options.baseline ? await inRegion(options, log, runBaseline) : null;
  const passed = edgeRun.failures.length === 0 && (baseline?.failures.length ?? 0) === 0;
  const keep = !passed || options.keepWorkDir === true;
  if (!keep) rmSync(dir, { recursive: true, force: true });
  return {
    drill: {
      outageSeconds: options.outageSeconds,
      kind: options.kind,
      rate: options.rate,
      lowRiskShare: options.lowRiskShare,
      seed: options.seed,
      region: emulator,
      link: options.link ?? null,
      timing: options.timing ?? SHIPPED_EDGE_TIMING,
      edgeNodes: options.edgeNodes ?? 1,
      startedAt: new Date(started).toISOString(),
      durationSeconds: seconds(started, Date.now()),
    },
    ...edgeRun,
    baseline,
    passed,
    workDir: keep ? dir : null,
  };
}

/**
 * A run in a region of its own (each its own moto server, so that neither run's tables slow the
 * other's: moto copies a whole table for every TransactWriteItems), behind a fault proxy of its own
 * playing the link outside the outage.
 */
async function inRegion<T>(options: DrillOptions, log: (line: string) => void, run: (context: RunContext) => Promise<T>, logFile?: string): Promise<T> {
  options.signal?.throwIfAborted();
  log(`starting the region (${options.regionEndpoint ? `at ${options.regionEndpoint}` : 'a moto server of its own'}), its agents, the gateway and the notifier`);
  const region = await startRegion({ endpoint: options.regionEndpoint, logFile });
  if (region.emulatorPid !== null) log(`the region's moto server: pid ${region.emulatorPid}`);
  let proxy: FaultProxy | undefined;
  try {
    options.signal?.throwIfAborted();
    proxy = await FaultProxy.start({ target: new URL(region.aws.endpoint).host, mode: linkMode(options.link) });
    if (options.link) log(`the link to the region: ${describeLink(options.link)}, outside the outage`);
    return await run({ region, proxy, options, log });
  } finally {
    await proxy?.close();
    await region.close();
  }
}

/** The run through the edge: producers send to the shim, which is cut from the region by the proxy; its files go in `dir`. */
async function runThroughEdge(context: RunContext, dir: string): Promise<RunReport> {
  const { region, proxy, options, log } = context;
  const runId = randomBytes(4).toString('hex');
  log(`starting the edge shim in hybrid mode with its fallback agents (run ${runId})`);
  const edge = await startSite({ region, regionThrough: proxy.address, dir, timing: options.timing ?? SHIPPED_EDGE_TIMING, nodes: options.edgeNodes ?? 1 });
  for (const node of edge.nodes) log(`the edge shim: ${node.url}, pid ${node.process.pid}, operator pages on ${node.adminUrl}`);
  if (edge.nodes.length > 1) log(`${edge.nodes.length} nodes on PostgreSQL behind HAProxy at ${edge.url}`);
  const observer = new EdgeObserver(() => edge.status());
  observer.start();
  let producers: Producers | undefined;
  try {
    await observer.until((status) => status.mode === 'online', options.signal);
    const queueUrl = await firstQueueUrl(edge.url, edge.credentials);
    producers = new Producers({ endpoint: edge.url, region: region.aws.region, credentials: edge.credentials, queueUrl }, new PaymentMix(runId, options.lowRiskShare, options.seed), options.rate);
    const outage = await runOutage(context, producers, { edge, observer, runId });
    const final = await edge.status();
    const findings = await verify({ region, sent: producers.sent, edge: final, madeConflicts: outage.madeConflicts });
    const failures = [...findings.failures, ...outage.failures];
    if (findings.rejected > 0) failures.unshift(`the edge refused ${findings.rejected} payments`);
    const firstSync = outage.sync;
    const sync = firstSync && { written: firstSync.written, identical: firstSync.identical, conflicts: firstSync.conflicts, skipped: firstSync.skipped };
    return {
      ...findings,
      failures,
      detectionSeconds: outage.detectionSeconds,
      backOnlineSeconds: outage.backOnlineSeconds,
      recoverySeconds: outage.recoverySeconds,
      peakBacklog: observer.peakBacklog,
      fallbackAgentRestarts: (await Promise.all(edge.running().map((node) => agentRestarts(node.adminUrl)))).reduce((sum, restarts) => sum + restarts, 0),
      replayed: final.replay?.replayed ?? 0,
      sync,
      timesOffline: final.transitions.filter((transition) => transition.to === 'offline' && Date.parse(transition.at) >= outage.cutAt).length,
      killedNode: outage.killedNode,
    };
  } catch (error) {
    if (!(error instanceof Stalled)) throw error;
    throw new Error(`${error.message}; the edge's log is in ${edge.logFile}`, { cause: error });
  } finally {
    producers?.close();
    await observer.stop();
    await edge.stop();
  }
}

/** The baseline: the same outage, producers straight to the region through the same proxy. */
async function runBaseline(context: RunContext): Promise<RunReport> {
  const { region, proxy, options, log } = context;
  const runId = randomBytes(4).toString('hex');
  log(`baseline (run ${runId}): the same outage with the producers straight to the region`);
  const endpoint = `http://${proxy.address}`;
  const queueUrl = await firstQueueUrl(endpoint, region.aws.credentials);
  const producers = new Producers({ endpoint, region: region.aws.region, credentials: region.aws.credentials, queueUrl }, new PaymentMix(runId, options.lowRiskShare, options.seed), options.rate);
  try {
    const outage = await runOutage(context, producers, { runId });
    const findings = await verify({ region, sent: producers.sent, madeConflicts: [] });
    // What the baseline loses is its rejected sends: its result, not a failure of the drill.
    return {
      ...findings,
      failures: [...findings.failures, ...outage.failures],
      detectionSeconds: null,
      backOnlineSeconds: null,
      recoverySeconds: outage.recoverySeconds,
      peakBacklog: 0,
      fallbackAgentRestarts: 0,
      replayed: 0,
      sync: null,
      timesOffline: 0,
      killedNode: null,
    };
  } finally {
    producers.close();
  }
}

async function firstQueueUrl(endpoint: string, credentials: { accessKeyId: string; secretAccessKey: string }): Promise<string> {
  const sqs = new SQSClient({ endpoint, region: 'us-east-1', credentials });
  try {
    const name = stageQueueNames(payments, payments.stages[0]!).queue;
    return (await sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
  } finally {
    sqs.destroy();
  }
}

/** Restarts of fallback agents, from the edge's /metrics on its admin listener (a counter over the shim's life, by stage). */
async function agentRestarts(adminUrl: string): Promise<number> {
  const families = parsePrometheusTextFormat(await (await fetch(`${adminUrl}/metrics`)).text());
  const restarts = families.find((family) => family.name === 'holdfast_edge_fallback_agent_restarts_total');
  return (restarts?.metrics ?? []).reduce((sum, sample) => sum + Number(sample.value), 0);
}

interface OutageResult {
  readonly cutAt: number;
  readonly sync: EdgeStatus['sync'];
  readonly detectionSeconds: number | null;
  readonly backOnlineSeconds: number | null;
  readonly recoverySeconds: number;
  readonly madeConflicts: MadeConflict[];
  readonly failures: string[];
  readonly killedNode: string | null;
}

/**
 * The drill's schedule, for either run: steady traffic, the cut, the outage, the region given
 * back, the edge back online (when there is one), some traffic after, then the drain: every
 * acknowledged payment final in the region, its queues empty, the edge's backlog empty.
 */
async function runOutage(
  context: RunContext,
  producers: Producers,
  run: { runId: string; edge?: DrillSite; observer?: EdgeObserver },
): Promise<OutageResult> {
  const { region, proxy, options, log } = context;
  const { edge, observer } = run;
  const patience: Patience = { stallMs: (options.stallSeconds ?? DEFAULT_STALL_SECONDS) * 1000, signal: options.signal };
  const failures: string[] = [];
  const t0 = Date.now();
  const say = (line: string) => log(`[${seconds(t0, Date.now()).toFixed(1).padStart(6)} s] ${line}`);

  producers.start();
  const warmup = Math.max(3, Math.round(options.rate * (options.warmupSeconds ?? 5)));
  say(`producers started: ${options.rate} payments/s, ${Math.round(options.lowRiskShare * 100)}% low-risk; waiting for ${warmup} acknowledged and the first payment through the pipeline`);
  await waitFor(async () => producers.acknowledged, (acked) => acked >= warmup, String, patience, 'waiting for the first payments to be acknowledged');
  const ours = (paymentId: string) => paymentId.startsWith(`pay-${run.runId}-`);
  await waitFor(
    async () => region.notifier.state.notifications.filter((notification) => ours(notification.paymentId)).length,
    (count) => count > 0,
    () => String(producers.acknowledged),
    patience,
    'waiting for the first payment through the pipeline',
  );

  const cutAt = Date.now();
  const between = linkMode(options.link);
  proxy.setMode(outageFault(options.kind, options.seed, between));
  say(`region cut off (${options.kind}) for ${options.outageSeconds} s${options.makeConflict ? ' at least' : ''}`);
  let killedNode: string | null = null;
  let endOutage!: () => void;
  const outageOver = new Promise<void>((resolve) => (endOutage = resolve));
  const conflictMaking = options.makeConflict && observer ? makeConflictOnceOffline(region, producers, observer, outageOver) : undefined;
  try {
    if (edge && edge.nodes.length > 1) {
      // Halfway through the outage the node that would replay fails: another takes the lease over.
      await sleep((options.outageSeconds * 1000) / 2, undefined, { signal: options.signal });
      killedNode = await edge.killReplayingNode();
      say(`SIGKILLed edge node ${killedNode}, which held the replay lease`);
      await sleep((options.outageSeconds * 1000) / 2, undefined, { signal: options.signal });
    } else {
      await sleep(options.outageSeconds * 1000, undefined, { signal: options.signal });
    }
    if (conflictMaking && observer) {
      let made = false;
      void conflictMaking.then((conflict) => (made = conflict !== undefined));
      const escalatedAtEdge = () => observer.latest?.queues.find((queue) => queue.name === humanReviewQueueName(payments))?.backlog ?? 0;
      try {
        await waitFor(
          async () => ({ made, escalated: escalatedAtEdge() }),
          (state) => state.made && state.escalated > 0,
          (state) => `conflict ${state.made ? 'made' : 'not made yet'}, ${state.escalated} escalated at the edge, ${producers.sent.length} sent`,
          patience,
          'keeping the region cut until the edge has authorized and escalated payments',
        );
      } catch (error) {
        if (!(error instanceof Stalled)) throw error;
        say(error.message);
      }
    }
  } finally {
    // Ends the conflict's making too when the drill is stopped.
    endOutage();
  }
  const restoredAt = Date.now();
  proxy.setMode(between);
  say(`region restored; ${producers.sent.length} sent, ${producers.acknowledged} acknowledged so far${observer?.latest ? `, edge ${observer.latest.mode} with a backlog of ${observer.latest.backlog}` : ''}`);
  const madeConflicts: MadeConflict[] = [];
  if (conflictMaking) {
    const made = await conflictMaking;
    if (made) madeConflicts.push(made);
    else failures.push('no conflict could be made: no low-risk payment was authorized at the edge during the outage');
  }

  let detectionSeconds: number | null = null;
  let backOnlineSeconds: number | null = null;
  let sync: EdgeStatus['sync'] = null;
  let stuck = false;
  if (edge) {
    try {
      const back = await waitFor(
        () => edge.status(),
        (status) => status.mode === 'online' && status.backlog === 0 && status.sync?.state !== 'running',
        (status) => `${status.mode}, backlog ${status.backlog}, replayed ${status.replay?.replayed}, sync ${status.sync?.state} ${status.sync?.done}/${status.sync?.total}`,
        patience,
        'waiting for the edge to sync, replay and come back online',
      );
      backOnlineSeconds = seconds(restoredAt, Date.now());
      const offline = [...back.transitions].reverse().find((transition) => transition.to === 'offline' && Date.parse(transition.at) >= cutAt);
      detectionSeconds = offline ? seconds(cutAt, Date.parse(offline.at)) : null;
      sync = back.sync;
      // The edge's work reaches the region before the tasks that depend on it: the last return's sync finished before its replay began.
      const replaying = back.transitions.find((transition) => transition.to === 'replaying');
      if (offline && (!replaying || back.sync?.state !== 'done' || Date.parse(back.sync.finishedAt ?? '') > Date.parse(replaying.at))) {
        failures.push(`the sync did not finish before the replay began: sync ${JSON.stringify(back.sync)}, replaying since ${replaying?.at}`);
      }
      say(`edge back online ${backOnlineSeconds} s after the region's return: ${describeEdge(back)}`);
    } catch (error) {
      if (!(error instanceof Stalled)) throw error;
      failures.push(`${error.message}; the edge's log is in ${edge.logFile}`);
      stuck = true;
    }
  }

  if (!stuck) {
    // Some traffic after the return, all the way through the region again.
    const tail = Math.max(2, Math.round(options.rate * (options.tailSeconds ?? 3)));
    const from = producers.sent.length;
    await waitFor(
      async () => producers.sent.slice(from).filter((record) => record.acknowledged).length,
      (acked) => acked >= tail,
      String,
      patience,
      'sending after the return',
    );
  }
  await producers.stop();
  say(`producers stopped: ${producers.sent.length} sent, ${producers.acknowledged} acknowledged; draining the pipeline`);

  const acknowledgedIds = new Set(producers.sent.filter((record) => record.acknowledged).map((record) => record.payment.paymentId));
  // A rejected send the region never took will never be final: only acknowledged payments hold the drain up.
  const pending = new Set(acknowledgedIds);
  if (!stuck) {
    // Cheapest first, so that watching the drain does not slow it: the edge's backlog, the
    // region's queues, and only once both are empty the sagas still pending.
    await waitFor(
      async () => {
        const edgeBacklog = edge ? (await edge.status()).backlog : 0;
        const queued = Object.values(await region.queueDepths()).reduce((sum, count) => sum + count, 0);
        if (edgeBacklog === 0 && queued === 0) {
          const sagas = await loadSagas(region, [...pending]);
          for (const [id, saga] of sagas) if (isFinal(saga)) pending.delete(id);
        }
        return { edgeBacklog, queued, pending: pending.size };
      },
      (state) => state.edgeBacklog === 0 && state.queued === 0 && state.pending === 0,
      (state) => JSON.stringify(state),
      patience,
      'draining the pipeline',
      DRAIN_POLL_MS,
    ).catch((error: unknown) => {
      if (!(error instanceof Stalled)) throw error;
      failures.push(error.message);
    });
  }
  const recoverySeconds = seconds(restoredAt, Date.now());
  say(`drained ${recoverySeconds} s after the region's return; checking everything from the outside`);
  return { cutAt, sync, detectionSeconds, backOnlineSeconds, recoverySeconds, madeConflicts, failures, killedNode };
}

/** Waits for the edge to go offline, then makes a conflict (see makeConflict) before the outage is over. */
async function makeConflictOnceOffline(region: DrillRegion, producers: Producers, observer: EdgeObserver, outageOver: Promise<unknown>): Promise<MadeConflict | undefined> {
  const offline = await Promise.race([observer.until((status) => status.mode === 'offline'), outageOver.then(() => undefined)]);
  if (!offline) return undefined;
  return makeConflict(region, producers.sent, Date.now(), outageOver);
}

function describeEdge(status: EdgeStatus): string {
  const sync = status.sync ? `sync ${status.sync.state} (${status.sync.written} written, ${status.sync.identical} identical, ${status.sync.conflicts} conflicts)` : 'no sync';
  return `${sync}, ${status.replay?.replayed ?? 0} replayed, ${status.conflictCount} conflicts on record`;
}
