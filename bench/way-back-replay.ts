/**
 * The replay rows of `npm run bench:hybrid -- --way-back ...` (bench/way-back.ts): a backlog stored at the edge while the region is cut
 * (fault proxy, blackhole), then the way back through a given path (a thin link, loopback, a slow
 * region), measured from the edge's side (its log and /status), from a live client's (row 1) and
 * from the region's (every queue drained at the end: each message once, FIFO groups in order).
 * One run is one shim (this checkout's, or an earlier one's for a "before" row) on a moto of its own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EdgeStatus } from '../edge-shim/src/observability/status.js';
import { type Moto, startMoto } from '../functions/src/local-pipeline/moto.js';
import type { SteadyMode } from '../testkit/fault-modes.js';
import { FaultProxy } from '../testkit/fault-proxy.js';
import { type Endpoint, type HybridShim, REGION_CREDENTIALS, call, endpoint, percentile, queueUrl, sleep, startHybridShim } from './hybrid-shim.js';
import { cpuSeconds } from './proc-stats.js';

/** How a backlog is laid out: queues, FIFO groups, messages and their size. */
export interface BacklogShape {
  readonly fifoQueues: number;
  readonly groupsPerFifoQueue: number;
  readonly standardQueues: number;
  readonly messagesPerQueue: number;
  /** Bytes of each message's body. */
  readonly bodyBytes: number;
}

export const backlogSize = (shape: BacklogShape) => (shape.fifoQueues + shape.standardQueues) * shape.messagesPerQueue;

/** The live client of row 1: one SendMessage after another, each at least `periodMs` after the one before. */
export interface LiveSpec {
  readonly periodMs: number;
  readonly bodyBytes: number;
  /** How long the live client measures over the link before the cut (the idle link's latency). */
  readonly idleMs: number;
}

export interface ReplayRunSpec {
  readonly row: string;
  readonly side: 'after' | 'before';
  /** The checkout whose shim runs (absent: this one). */
  readonly root?: string;
  readonly shape: BacklogShape;
  /** The proxy's mode before the cut. */
  readonly link: SteadyMode;
  /** The proxy's mode once the link is mended: the way back. */
  readonly comeback: SteadyMode;
  readonly live?: LiveSpec;
  /** How long the replay may take before the run stops and reports what it reached. */
  readonly boundMs: number;
  /** More options for the shim. */
  readonly args: readonly string[];
}

/** What the region holds once the run is over, queue by queue, against what was stored at the edge. */
export interface RegionCheck {
  /** Distinct messages of the backlog found in the region. */
  readonly delivered: number;
  /** Messages found more than once (each extra copy counts). */
  readonly duplicates: number;
  /** Of those, copies in FIFO queues (a standard queue's copy after an unanswered batch is within SQS's at-least-once). */
  readonly fifoDuplicates: number;
  /** FIFO messages received before one that came earlier in their group. */
  readonly outOfOrder: number;
  /** Messages of the backlog still at the edge when the run stopped. */
  readonly stillAtEdge: number;
  /** Neither in the region nor at the edge. */
  readonly lost: number;
}

export interface LiveStats {
  readonly sends: number;
  readonly failed: number;
  readonly errorSample?: string;
  /** Live sends the edge stored for replay instead of passing them through (the region failed them). */
  readonly storedAtEdge: number;
  /** Live sends made while the live queue had a backlog of its own at the edge (stored behind it, not passed through). */
  readonly behindBacklog: number;
  /** Live sends made while the edge was offline again (answered from its own store). */
  readonly whileOffline: number;
  /** The live queue's largest backlog at the edge. */
  readonly liveBacklogMax: number;
  /** Sends passed through to the region (the live queue on the upstream path), and their latency. */
  readonly passedThrough: number;
  readonly passedP50: number;
  readonly passedP99: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  /** The same client's sends over the idle link before the cut. */
  readonly idleSends: number;
  readonly idleP50: number;
  readonly idleP99: number;
}

export interface ReplayRun {
  readonly row: string;
  readonly side: 'after' | 'before';
  readonly revision: string;
  readonly shape: BacklogShape;
  /** Messages of the backlog sent to the edge, and how many it held when the link was mended. */
  readonly messages: number;
  readonly stored: number;
  readonly fillSeconds: number;
  /** From the link mended to the first switch to `replaying` (undefined: it never switched). */
  readonly mendToReplayingSeconds: number | undefined;
  /** The backlog reached 0 within the bound. */
  readonly converged: boolean;
  /** From the first switch to `replaying` to the backlog 0 (or to the bound: from the mend if it never replayed). */
  readonly seconds: number;
  readonly boundSeconds: number;
  /** Messages that left the edge's backlog. */
  readonly replayed: number;
  /** Switches to `offline` after the first switch to `replaying`. */
  readonly returnsToOffline: number;
  readonly offlineReasons: readonly string[];
  /** FIFO messages the edge counted as possibly duplicated (replayed past the deduplication interval); undefined: the shim has no such count. */
  readonly possiblyDuplicated: number | undefined;
  /** The congestion window's sizes seen on /status during the replay (undefined: the shim has none). */
  readonly window: { readonly min: number; readonly median: number; readonly max: number } | undefined;
  /** The link rate the edge had measured at the end (bytes a second). */
  readonly linkBytesPerSecond: number | undefined;
  /** Replay rate over the first and the last fifth of the messages replayed (messages a second). */
  readonly rateFirstFifth: number | undefined;
  readonly rateLastFifth: number | undefined;
  /** Bytes of message bodies replayed a second, from the switch to \`replaying\` to the end. */
  readonly payloadBytesPerSecond: number;
  /** Bytes a second the proxy forwarded to the region over the samples taken while replaying (every request on the link, with its headers and JSON). */
  readonly wireBytesPerSecond: number | undefined;
  readonly shimCpu: number;
  readonly regionCpu: number;
  readonly region: RegionCheck;
  readonly live?: LiveStats;
  readonly notes: readonly string[];
}

const STATUS_POLL_MS = 250;
// With a live client, the live queue's path is read this often.
const LIVE_STATUS_POLL_MS = 100;
const LIVE_TIMEOUT_MS = 30_000;
const STORED_FOR_REPLAY = 'the region did not take a send: stored at the edge for replay';
const FILL_WORKERS = 8;
// Messages are drained 10 at a time and deleted once read (a FIFO group with a message in flight
// gives nothing more; moto's receives cost time in proportion to what a queue holds, in flight too).
const DRAIN_VISIBILITY_SECONDS = 900;
const DRAIN_WORKERS = 8;

interface QueueOfBacklog {
  readonly name: string;
  readonly fifo: boolean;
  /** At the edge (the clients' URL) and in the region. */
  edgeUrl: string;
  regionUrl: string;
}

const queuesOf = (row: string, shape: BacklogShape, tag: string): QueueOfBacklog[] => [
  ...Array.from({ length: shape.fifoQueues }, (_, index) => ({ name: `${row}-${tag}-f${index}.fifo`, fifo: true, edgeUrl: '', regionUrl: '' })),
  ...Array.from({ length: shape.standardQueues }, (_, index) => ({ name: `${row}-${tag}-s${index}`, fifo: false, edgeUrl: '', regionUrl: '' })),
];

/** A message's body: its queue and index, then padding to the shape's size. */
const bodyOf = (queue: string, index: number, bytes: number) => {
  const head = `${queue} ${index} `;
  return head + 'x'.repeat(Math.max(0, bytes - head.length));
};
const indexOf = (body: string) => Number(body.split(' ', 2)[1]);
const groupOf = (index: number, shape: BacklogShape) => `g${index % shape.groupsPerFifoQueue}`;

/** Stores each queue's messages at the edge, queue by queue in order (so that FIFO order is the index order), several queues at once. */
async function fill(shim: Endpoint, queues: readonly QueueOfBacklog[], shape: BacklogShape, tag: string): Promise<{ seconds: number; errors: string[] }> {
  const started = performance.now();
  const errors: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < queues.length) {
      const queue = queues[next++]!;
      for (let first = 0; first < shape.messagesPerQueue; first += 10) {
        const entries = Array.from({ length: Math.min(10, shape.messagesPerQueue - first) }, (_, entry) => {
          const index = first + entry;
          return {
            Id: `m${entry}`,
            MessageBody: bodyOf(queue.name, index, shape.bodyBytes),
            ...(queue.fifo ? { MessageGroupId: groupOf(index, shape), MessageDeduplicationId: `${tag}-${index}` } : {}),
          };
        });
        try {
          const answer = await call(shim, 'SendMessageBatch', { QueueUrl: queue.edgeUrl, Entries: entries }, LIVE_TIMEOUT_MS);
          const failed = (answer.Failed as unknown[] | undefined) ?? [];
          if (failed.length > 0) errors.push(`${queue.name}: ${JSON.stringify(failed[0])}`);
        } catch (error) {
          errors.push(`${queue.name}: ${(error as Error).message.slice(0, 200)}`);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: FILL_WORKERS }, worker));
  return { seconds: (performance.now() - started) / 1000, errors };
}

/** One queue of the region, drained: the bodies in the order received. */
async function drainQueue(region: Endpoint, queue: QueueOfBacklog): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const { Messages } = (await call(region, 'ReceiveMessage', { QueueUrl: queue.regionUrl, MaxNumberOfMessages: 10, VisibilityTimeout: DRAIN_VISIBILITY_SECONDS, WaitTimeSeconds: 0 })) as {
      Messages?: Array<{ Body: string; ReceiptHandle: string }>;
    };
    if (!Messages || Messages.length === 0) return bodies;
    bodies.push(...Messages.map((message) => message.Body));
    await call(region, 'DeleteMessageBatch', { QueueUrl: queue.regionUrl, Entries: Messages.map((message, index) => ({ Id: `d${index}`, ReceiptHandle: message.ReceiptHandle })) });
  }
}

/** Every queue drained from the region, checked against what was stored at the edge. */
async function checkRegion(region: Endpoint, queues: readonly QueueOfBacklog[], shape: BacklogShape, stillAtEdge: number): Promise<RegionCheck> {
  let delivered = 0;
  let duplicates = 0;
  let fifoDuplicates = 0;
  let outOfOrder = 0;
  let next = 0;
  const worker = async () => {
    while (next < queues.length) {
      const queue = queues[next++]!;
      const bodies = await drainQueue(region, queue);
      const seen = new Set<number>();
      const lastInGroup = new Map<string, number>();
      for (const body of bodies) {
        const index = indexOf(body);
        if (seen.has(index)) {
          duplicates++;
          if (queue.fifo) fifoDuplicates++;
        } else {
          seen.add(index);
        }
        if (queue.fifo) {
          const group = groupOf(index, shape);
          if ((lastInGroup.get(group) ?? -1) > index) outOfOrder++;
          else lastInGroup.set(group, index);
        }
      }
      delivered += seen.size;
    }
  };
  await Promise.all(Array.from({ length: DRAIN_WORKERS }, worker));
  return { delivered, duplicates, fifoDuplicates, outOfOrder, stillAtEdge, lost: Math.max(0, backlogSize(shape) - delivered - stillAtEdge) };
}

interface Sample {
  readonly at: number;
  /** Of the measured queues. */
  readonly backlog: number;
  readonly window: number | undefined;
  readonly link: number | undefined;
  /** Where a send to the live queue goes now, and its own backlog. */
  readonly livePath: string | undefined;
  readonly liveBacklog: number;
  /** Bytes the proxy had forwarded to the region so far (requests: the replay's, the live client's, the probe's). */
  readonly upstreamBytes: number;
}

interface LiveSend {
  readonly start: number;
  readonly ms: number;
  readonly ok: boolean;
  readonly error?: string;
}

/** One client sending small messages through the edge, one at a time, at most one every `periodMs`. */
class LiveClient {
  readonly sends: LiveSend[] = [];
  private stopped = false;
  private loopDone: Promise<void> | undefined;

  constructor(
    private readonly shim: Endpoint,
    private readonly url: string,
    private readonly spec: LiveSpec,
  ) {}

  get running(): boolean {
    return this.loopDone !== undefined && !this.stopped;
  }

  start(): void {
    this.stopped = false;
    this.loopDone = this.loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loopDone;
  }

  private async loop(): Promise<void> {
    for (let sequence = 0; !this.stopped; sequence++) {
      const start = Date.now();
      try {
        await call(this.shim, 'SendMessage', { QueueUrl: this.url, MessageBody: bodyOf('live', sequence, this.spec.bodyBytes) }, LIVE_TIMEOUT_MS);
        this.sends.push({ start, ms: Date.now() - start, ok: true });
      } catch (error) {
        this.sends.push({ start, ms: Date.now() - start, ok: false, error: (error as Error).message.slice(0, 200) });
      }
      await sleep(Math.max(0, start + this.spec.periodMs - Date.now()));
    }
  }
}

interface TransitionLine {
  readonly time: number;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
}

/** The edge's transitions, from its log (/status keeps only the last 50). */
const transitionsOf = (shim: HybridShim): TransitionLine[] =>
  shim.log.filter((line) => typeof line.to === 'string' && typeof line.from === 'string').map((line) => ({ time: line.time, from: String(line.from), to: String(line.to), reason: String(line.reason ?? '') }));

/** The rate over the first and the last fifth of what was replayed, from the status samples. */
function fifthRates(samples: ReadonlyArray<{ at: number; backlog: number }>, stored: number): [number | undefined, number | undefined] {
  const replayed = stored - (samples.at(-1)?.backlog ?? stored);
  if (replayed < 5 || samples.length < 3) return [undefined, undefined];
  const when = (count: number) => samples.find((sample) => stored - sample.backlog >= count);
  const rate = (from: number, to: number) => {
    const [a, b] = [when(from), when(to)];
    return a && b && b.at > a.at ? (stored - b.backlog - (stored - a.backlog)) / ((b.at - a.at) / 1000) : undefined;
  };
  return [rate(0, replayed / 5), rate((4 * replayed) / 5, replayed)];
}

/** Bytes a second forwarded upstream between the first and the last sample. */
function wireRate(samples: readonly Sample[]): number | undefined {
  const [first, last] = [samples[0], samples.at(-1)];
  return first && last && last.at > first.at ? (last.upstreamBytes - first.upstreamBytes) / ((last.at - first.at) / 1000) : undefined;
}

/**
 * One replay run: moto, the fault proxy in front of it, a shim in front of the proxy; queues made
 * through the shim, the region cut, the backlog stored, the link mended to `comeback`, and the
 * replay watched until the backlog is 0 or the bound.
 */
export async function replayRun(spec: ReplayRunSpec, revisionOf: (root?: string) => string, say: (line: string) => void): Promise<ReplayRun> {
  const dir = mkdtempSync(join(tmpdir(), `holdfast-way-back-${spec.row}-`));
  const stops: Array<() => Promise<void>> = [];
  const notes: string[] = [];
  try {
    const moto: Moto = await startMoto();
    stops.push(() => moto.stop());
    const region = endpoint('moto', moto.endpoint, REGION_CREDENTIALS, moto.pid);
    const proxy = await FaultProxy.start({ target: new URL(moto.endpoint).host, mode: spec.link });
    stops.push(() => proxy.close());
    const shim = await startHybridShim(dir, `${spec.row}-${spec.side}`, `http://${proxy.address}`, spec.args, spec.root === undefined ? {} : { root: spec.root });
    stops.push(() => shim.process.stop());
    const tag = String(Date.now());
    const queues = queuesOf(spec.row, spec.shape, tag);
    for (const queue of queues) {
      queue.edgeUrl = await queueUrl(shim.endpoint, queue.name, queue.fifo ? { FifoQueue: 'true' } : {});
      queue.regionUrl = (await call(region, 'GetQueueUrl', { QueueName: queue.name })).QueueUrl as string;
    }
    let live: LiveClient | undefined;
    let idle: LiveSend[] = [];
    const liveName = `${spec.row}-${tag}-live`;
    if (spec.live) {
      const liveUrl = await queueUrl(shim.endpoint, liveName);
      const idleClient = new LiveClient(shim.endpoint, liveUrl, spec.live);
      idleClient.start();
      await sleep(spec.live.idleMs);
      await idleClient.stop();
      idle = idleClient.sends;
      live = new LiveClient(shim.endpoint, liveUrl, spec.live);
    }

    proxy.setMode('blackhole');
    await shim.until((status) => status.mode === 'offline', 'offline', 60_000);
    const filled = await fill(shim.endpoint, queues, spec.shape, tag);
    if (filled.errors.length > 0) notes.push(`${filled.errors.length} batches of the backlog failed at the edge, e.g. ${filled.errors[0]}`);
    const names = new Set(queues.map((queue) => queue.name));
    // The backlog of the measured queues alone (a live queue may hold some too).
    const backlogOf = (status: EdgeStatus) => status.queues.filter((queue) => names.has(queue.name)).reduce((sum, queue) => sum + queue.backlog, 0);
    const stored = backlogOf(await shim.status());
    say(`${spec.row} ${spec.side}: ${stored} messages stored at the edge in ${filled.seconds.toFixed(1)} s; the link is mended (${spec.comeback.kind})`);

    const mendedAt = Date.now();
    proxy.setMode(spec.comeback);
    const deadline = mendedAt + spec.boundMs;
    const cpuBefore = [cpuSeconds(shim.endpoint.pid), cpuSeconds(moto.pid)];
    const samples: Sample[] = [];
    let last: EdgeStatus;
    let backlog = stored;
    for (;;) {
      last = await shim.status();
      const now = Date.now();
      backlog = backlogOf(last);
      const replaying = transitionsOf(shim).some((line) => line.to === 'replaying' && line.time >= mendedAt);
      if (replaying) {
        const liveQueue = last.queues.find((queue) => queue.name === liveName);
        samples.push({
          at: now,
          backlog,
          window: last.replay?.window,
          link: last.replay?.linkBytesPerSecond ?? undefined,
          livePath: liveQueue?.path,
          liveBacklog: liveQueue?.backlog ?? 0,
          upstreamBytes: proxy.stats().upstream.forwarded,
        });
        if (live && !live.running) live.start();
      }
      if (backlog === 0 || now >= deadline) break;
      await sleep(spec.live ? LIVE_STATUS_POLL_MS : STATUS_POLL_MS);
    }
    const converged = backlog === 0;
    if (!converged) {
      const waits = last.queues.filter((queue) => queue.replayWaits).map((queue) => `${queue.name}: ${queue.replayWaits}`);
      notes.push(`at the bound /status said: mode ${last.mode} (${last.reason}); the replay's last error: ${last.replay?.lastError ?? 'none'}${waits.length > 0 ? `; waits: ${waits.join(', ')}` : ''}`.slice(0, 600));
    }
    const doneAt = Date.now();
    const cpuSpent = [cpuSeconds(shim.endpoint.pid) - cpuBefore[0]!, cpuSeconds(moto.pid) - cpuBefore[1]!];
    await live?.stop();
    const transitions = transitionsOf(shim).filter((line) => line.time >= mendedAt);
    const firstReplaying = transitions.find((line) => line.to === 'replaying');
    const offline = firstReplaying ? transitions.filter((line) => line.to === 'offline' && line.time >= firstReplaying.time) : [];
    const from = firstReplaying?.time ?? mendedAt;
    const seconds = (doneAt - from) / 1000;

    let liveStats: LiveStats | undefined;
    if (live) {
      // Offline spells after the replay began: from a switch to offline to the next switch away from it.
      const spells = offline.map((line) => [line.time, transitions.find((other) => other.time > line.time && other.to !== 'offline')?.time ?? doneAt] as const);
      // Where each live send went: the live queue's path in the last status seen before it.
      const pathAt = (at: number) => samples.filter((sample) => sample.at <= at).at(-1)?.livePath;
      const sorted = (sends: readonly LiveSend[]) => sends.map((send) => send.ms).sort((a, b) => a - b);
      const all = sorted(live.sends.filter((send) => send.ok));
      const passed = sorted(live.sends.filter((send) => send.ok && pathAt(send.start) !== 'local'));
      const idleLatencies = sorted(idle.filter((send) => send.ok));
      const failed = live.sends.filter((send) => !send.ok);
      liveStats = {
        sends: live.sends.length,
        failed: failed.length,
        ...(failed[0]?.error !== undefined && { errorSample: failed[0].error }),
        storedAtEdge: shim.log.filter((line) => line.msg === STORED_FOR_REPLAY && line.queue === liveName && line.time >= mendedAt).length,
        behindBacklog: live.sends.filter((send) => pathAt(send.start) === 'local').length,
        whileOffline: live.sends.filter((send) => spells.some(([start, end]) => send.start >= start && send.start < end)).length,
        liveBacklogMax: Math.max(0, ...samples.map((sample) => sample.liveBacklog)),
        p50: percentile(all, 0.5),
        p99: percentile(all, 0.99),
        max: all.at(-1) ?? NaN,
        passedThrough: passed.length,
        passedP50: percentile(passed, 0.5),
        passedP99: percentile(passed, 0.99),
        idleSends: idle.length,
        idleP50: percentile(idleLatencies, 0.5),
        idleP99: percentile(idleLatencies, 0.99),
      };
    }
    // The edge stops before the region is read, so that nothing more arrives meanwhile.
    await shim.process.stop();
    const check = await checkRegion(region, queues, spec.shape, backlog);
    const windows = samples.map((sample) => sample.window).filter((size): size is number => typeof size === 'number').sort((a, b) => a - b);
    const [rateFirstFifth, rateLastFifth] = fifthRates(samples, stored);
    const run: ReplayRun = {
      row: spec.row,
      side: spec.side,
      revision: revisionOf(spec.root),
      shape: spec.shape,
      messages: backlogSize(spec.shape),
      stored,
      fillSeconds: filled.seconds,
      mendToReplayingSeconds: firstReplaying ? (firstReplaying.time - mendedAt) / 1000 : undefined,
      converged,
      seconds,
      boundSeconds: spec.boundMs / 1000,
      replayed: stored - backlog,
      returnsToOffline: offline.length,
      possiblyDuplicated: last.replay?.possiblyDuplicated,
      offlineReasons: [...new Set(offline.map((line) => line.reason.replace(/\d+(\.\d+)?/g, 'N').slice(0, 160)))],
      window: windows.length > 0 ? { min: windows[0]!, median: percentile(windows, 0.5), max: windows.at(-1)! } : undefined,
      linkBytesPerSecond: samples.map((sample) => sample.link).filter((rate): rate is number => typeof rate === 'number').at(-1),
      rateFirstFifth,
      rateLastFifth,
      payloadBytesPerSecond: ((stored - backlog) * spec.shape.bodyBytes) / seconds,
      wireBytesPerSecond: wireRate(samples),
      shimCpu: cpuSpent[0]! / seconds,
      regionCpu: cpuSpent[1]! / seconds,
      region: check,
      ...(liveStats && { live: liveStats }),
      notes,
    };
    say(
      `${spec.row} ${spec.side}: ${converged ? 'replayed' : `NOT replayed within ${spec.boundMs / 1000} s:`} ${run.replayed} of ${stored} in ${seconds.toFixed(1)} s, ` +
        `${run.returnsToOffline} returns to offline; region: ${check.delivered} delivered, ${check.duplicates} duplicates (${check.fifoDuplicates} FIFO), ${check.outOfOrder} out of order, ${check.lost} lost` +
        (liveStats ? `; live p50 ${liveStats.p50.toFixed(0)} ms p99 ${liveStats.p99.toFixed(0)} ms (${liveStats.sends} sends, ${liveStats.failed} failed)` : ''),
    );
    return run;
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
