/**
 * `npm run bench:hybrid [-- options]`: the hybrid edge in front of a region (moto_server on this
 * machine), in one run:
 *
 * 1. pass-through overhead: the same clients straight to the region and through the shim in front
 *    of it, in alternating slices;
 * 2. replay throughput: a backlog stored at the edge while the region is cut (fault proxy,
 *    blackhole), timed from the switch to `replaying` until it is replayed, against the same
 *    messages sent to the region by direct clients with as many batches in flight as the replayer
 *    (the load generator, and an AWS SDK client); to moto, whose sends cost time in proportion to
 *    the messages its queue holds, and to a standalone Holdfast shim as a fast region, on loopback
 *    (where the edge's own CPU is the limit) and with a region's round trip added by the proxy;
 * 3. switch time: under load, the region cut (blackhole, refuse), the time from the first failed
 *    upstream request to the mode `offline`, and what the clients' sends took meanwhile.
 *
 * Prints a markdown report and writes it to bench/results/hybrid.md (--quick: hybrid-quick.md).
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { DEFAULTS } from '../edge-shim/src/config.js';
import type { EdgeStatus } from '../edge-shim/src/observability/status.js';
import { startMoto } from '../functions/src/local-pipeline/moto.js';
import type { SteadyMode } from '../testkit/fault-modes.js';
import { FaultProxy } from '../testkit/fault-proxy.js';
import { type ShimProcess, spawnShim } from '../testkit/shim-process.js';
import { type HybridResults, type PassThroughRow, type ReplayRow, type SwitchRow, renderHybridReport } from './hybrid-report.js';
import { LoadGenerator, type PreparedRequest, type ScenarioResult, type ScenarioSpec, inSequence } from './load.js';
import { cpuSeconds } from './proc-stats.js';
import { type ProfileWindow, monotonicUs, summarizeProfile } from './profile.js';
import { type Credentials, Signer } from './sign.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(ROOT, 'bench', 'results');
const USAGE = `Usage: npm run bench:hybrid -- [options]
  --quick                a smoke run of about a minute (small sizes, short slices, one trial each)
  --clients LIST         pass-through clients sending, comma-separated (default 1,8,32; --quick: 1,8)
  --receive-clients LIST ...and receiving (default 1,8: moto answers 32 receives at once more slowly than
                         the shim's upstream timeout, and the shim rightly takes that for an outage)
  --duration S           pass-through seconds per operation, clients and side (default 6; --quick: 1)
  --slices N             ...taken in this many alternating slices (default 3; --quick: 1)
  --receive-level N      messages in the region's queue that receives get (default 100; --quick: 50)
  --messages N           backlog per replay measurement, fast region (default 20000; --quick: 1000)
  --moto-messages N      backlog per replay measurement, moto (default 500; --quick: 100)
  --regions LIST         regions to replay to (default moto,shim,shim-wan): moto; shim, a standalone
                         Holdfast shim as a fast region; shim-wan, the same with --wan-ms of round trip
  --wan-ms N             round trip added by the proxy for shim-wan (default 20)
  --groups N             FIFO message groups in the backlog (default 100; --quick: 20)
  --replay-rounds N      rounds of direct clients and replay per region and queue type (default 3; --quick: 1)
  --switch-trials N      trials per fault and settings (default 3; --quick: 1)
  --switch-clients N     clients sending during a switch (default 8)
  --skip-pass-through, --skip-replay, --skip-switch   leave a measurement out
  --cpu-prof             profile the replaying shim (node --cpu-prof) and summarize its replays
  --out FILE             report file (default bench/results/hybrid.md; --quick: hybrid-quick.md)`;

function readOptions() {
  try {
    return parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        clients: { type: 'string' },
        'receive-clients': { type: 'string', default: '1,8' },
        duration: { type: 'string' },
        slices: { type: 'string' },
        'receive-level': { type: 'string' },
        messages: { type: 'string' },
        'moto-messages': { type: 'string' },
        regions: { type: 'string', default: 'moto,shim,shim-wan' },
        'wan-ms': { type: 'string', default: '20' },
        groups: { type: 'string' },
        'replay-rounds': { type: 'string' },
        'switch-trials': { type: 'string' },
        'switch-clients': { type: 'string', default: '8' },
        'skip-pass-through': { type: 'boolean', default: false },
        'skip-replay': { type: 'boolean', default: false },
        'skip-switch': { type: 'boolean', default: false },
        'cpu-prof': { type: 'boolean', default: false },
        out: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
    });
  } catch (error) {
    return usageError((error as Error).message);
  }
}

function usageError(message: string): never {
  console.error(`${message}\n\n${USAGE}`);
  process.exit(2);
}

const { values: options } = readOptions();
if (options.help) {
  console.log(USAGE);
  process.exit(0);
}
const QUICK = options.quick;
const count = (value: string | undefined, full: number, quick: number, name: string) => {
  const parsed = Number(value ?? (QUICK ? quick : full));
  if (!Number.isInteger(parsed) || parsed < 1) usageError(`--${name} must be a positive integer`);
  return parsed;
};
const clientList = (text: string) => text.split(',').map(Number);
const CLIENTS = clientList(options.clients ?? (QUICK ? '1,8' : '1,8,32'));
const RECEIVE_CLIENTS = clientList(options['receive-clients']);
if ([...CLIENTS, ...RECEIVE_CLIENTS].some((clients) => !Number.isInteger(clients) || clients < 1)) usageError('--clients and --receive-clients must be positive integers');
const SLICES = count(options.slices, 3, 1, 'slices');
const SLICE_MS = (Number(options.duration ?? (QUICK ? 1 : 6)) * 1000) / SLICES;
if (!(SLICE_MS > 0)) usageError('--duration must be a positive number of seconds');
const RECEIVE_LEVEL = Math.ceil(count(options['receive-level'], 100, 50, 'receive-level') / 10) * 10;
const MESSAGES = { shim: Math.ceil(count(options.messages, 20_000, 1000, 'messages') / 10) * 10, moto: Math.ceil(count(options['moto-messages'], 500, 100, 'moto-messages') / 10) * 10 };
const REGIONS = options.regions.split(',');
if (REGIONS.some((region) => !['moto', 'shim', 'shim-wan'].includes(region))) usageError('--regions takes moto, shim and shim-wan');
const WAN_MS = Number(options['wan-ms']);
if (!Number.isInteger(WAN_MS) || WAN_MS < 2) usageError('--wan-ms must be an integer of at least 2');
const GROUPS = count(options.groups, 100, 20, 'groups');
const REPLAY_ROUNDS = count(options['replay-rounds'], 3, 1, 'replay-rounds');
const SWITCH_TRIALS = count(options['switch-trials'], 3, 1, 'switch-trials');
const SWITCH_CLIENTS = count(options['switch-clients'], 8, 8, 'switch-clients');
const OUT = options.out ?? join(RESULTS, QUICK ? 'hybrid-quick.md' : 'hybrid.md');

const REGION = 'us-east-1';
// The shim's clients sign with these; the shim signs its calls to the region with the emulator's.
const SHIM_CREDENTIALS: Credentials = { accessKeyId: 'AKIDHOLDFASTBENCH', secretAccessKey: 'holdfast-bench-secret' };
const REGION_CREDENTIALS: Credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
// High enough never to be what limits the replay.
const REPLAY_RATE = 1_000_000;
// The replay starts soon after the link is mended; recovery is not what is measured here.
const RECOVERY = ['--recovery-probes', '2', '--recovery-time', '1s'];
// A second row of switches with shorter timeouts than the defaults.
const SHORT_TIMEOUTS = ['--upstream-timeout', '1s', '--probe-interval', '250ms', '--probe-timeout', '500ms'];
const SHORT_TIMEOUTS_LABEL = 'upstream-timeout 1s, probe-interval 250ms, probe-timeout 500ms';
const STATUS_POLL_MS = 20;
const REPLAY_GOAL = 0.9;
const SWITCH_GOAL_MS = 2000;
// Load before each cut, so the shim is in its steady state when the region goes.
const BEFORE_CUT_MS = QUICK ? 1000 : 2000;
const STORED_FOR_REPLAY = 'the region did not take a send: stored at the edge for replay';
const SAME_FAILURE_MS = 5;

/** Somewhere SQS requests can be sent: the region itself, or a shim in front of it. */
interface Endpoint {
  readonly name: string;
  readonly url: URL;
  readonly signer: Signer;
  readonly credentials: Credentials;
  readonly pid: number;
}

const endpoint = (name: string, url: string, credentials: Credentials, pid: number): Endpoint => ({
  name,
  url: new URL(url.endsWith('/') ? url : `${url}/`),
  signer: new Signer(REGION, credentials),
  credentials,
  pid,
});

async function call(target: Endpoint, action: string, input: Record<string, unknown>): Promise<Record<string, unknown>> {
  const body = JSON.stringify(input);
  const headers = await target.signer.sign(target.url, action, body);
  const response = await request(target.url, { method: 'POST', headers, body });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`${target.name} ${action}: HTTP ${response.statusCode} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function prepare(target: Endpoint, action: string, inputs: Array<Record<string, unknown>>): Promise<PreparedRequest[]> {
  return Promise.all(
    inputs.map(async (input) => {
      const body = JSON.stringify(input);
      return { path: target.url.pathname, headers: await target.signer.sign(target.url, action, body), body };
    }),
  );
}

const spec = (target: Endpoint, extra: Omit<ScenarioSpec, 'origin' | 'region' | 'credentials'>): ScenarioSpec => ({
  origin: target.url.origin,
  region: REGION,
  credentials: target.credentials,
  ...extra,
});

const queueUrl = async (target: Endpoint, name: string, attributes: Record<string, string> = {}) =>
  (await call(target, 'CreateQueue', { QueueName: name, Attributes: attributes })).QueueUrl as string;

async function messagesIn(target: Endpoint, url: string): Promise<number> {
  const { Attributes } = await call(target, 'GetQueueAttributes', {
    QueueUrl: url,
    AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
  });
  return Object.values(Attributes as Record<string, string>).reduce((sum, value) => sum + Number(value), 0);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `work` and measures the CPU time the processes spent meanwhile, per second of it. */
async function withCpu<T>(pids: readonly number[], work: () => Promise<T>): Promise<{ value: T; cpu: number[]; ms: number }> {
  const before = pids.map((pid) => cpuSeconds(pid));
  const started = performance.now();
  const value = await work();
  const ms = performance.now() - started;
  return { value, ms, cpu: pids.map((pid, index) => (cpuSeconds(pid) - before[index]!) / (ms / 1000)) };
}

/** A hybrid shim in its own process, with its log lines kept for reading. */
interface HybridShim {
  readonly process: ShimProcess;
  readonly endpoint: Endpoint;
  readonly log: Array<{ time: number; msg: string; [key: string]: unknown }>;
  status(): Promise<EdgeStatus>;
  /** Polls the status until `done` holds, and returns that status. */
  until(done: (status: EdgeStatus) => boolean, what: string, timeoutMs?: number): Promise<EdgeStatus>;
}

async function startHybridShim(dir: string, name: string, upstream: string, args: readonly string[], nodeOptions: readonly string[] = []): Promise<HybridShim> {
  const shim = await spawnShim({
    dbFile: join(dir, `${name}.db`),
    credentials: [`${SHIM_CREDENTIALS.accessKeyId}:${SHIM_CREDENTIALS.secretAccessKey}`],
    args: ['--upstream', upstream, '--upstream-region', REGION, ...args],
    env: { AWS_ACCESS_KEY_ID: REGION_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: REGION_CREDENTIALS.secretAccessKey },
    nodeOptions,
  });
  const log: HybridShim['log'] = [];
  createInterface({ input: shim.child.stdout! }).on('line', (line) => {
    try {
      log.push(JSON.parse(line) as HybridShim['log'][number]);
    } catch {
      // Not a log line.
    }
  });
  const status = async () => {
    const response = await request(`${shim.adminUrl}/status`);
    return (await response.body.json()) as EdgeStatus;
  };
  return {
    process: shim,
    endpoint: endpoint(name, shim.url, SHIM_CREDENTIALS, shim.pid),
    log,
    status,
    async until(done, what, timeoutMs = 30 * 60_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const current = await status();
        if (done(current)) return current;
        if (Date.now() > deadline) throw new Error(`${name}: not ${what} within ${timeoutMs / 1000} s: ${JSON.stringify({ mode: current.mode, backlog: current.backlog, lastError: current.replay?.lastError })}`);
        await sleep(100);
      }
    },
  };
}

const back = (status: EdgeStatus) => status.mode === 'online' && status.backlog === 0;
const messageBody = (index: number) => `bench message ${index} ${'x'.repeat(80)}`;

const generator = new LoadGenerator(1);
const results: HybridResults = { passThrough: [], replay: [], switches: [], notes: [] };
const profileWindows: ProfileWindow[] = [];

/**
 * One operation at each client count, direct and through the shim in alternating slices (the
 * order flips every slice); `beforeSlice` runs ahead of each, outside the measurement.
 */
async function alternate(
  operation: string,
  clientCounts: readonly number[],
  region: Endpoint,
  shim: HybridShim,
  scenario: (target: Endpoint, clients: number) => ScenarioSpec,
  beforeSlice: () => Promise<void> = async () => {},
): Promise<void> {
  for (const clients of clientCounts) {
    const parts = { direct: [] as ScenarioResult[], shim: [] as ScenarioResult[] };
    const cpu = { regionDirect: 0, regionShim: 0, shim: 0, directMs: 0, shimMs: 0 };
    for (let slice = 0; slice < SLICES; slice++) {
      const order = (slice + clients) % 2 === 0 ? (['direct', 'shim'] as const) : (['shim', 'direct'] as const);
      for (const side of order) {
        await beforeSlice();
        const target = side === 'direct' ? region : shim.endpoint;
        const started = Date.now();
        const { value, cpu: [regionCpu, shimCpu], ms } = await withCpu([region.pid, shim.endpoint.pid], () => generator.run(scenario(target, clients)));
        // A region too slow for the upstream timeout looks like an outage to the shim: the slice no longer measures pass-through.
        const left = (await shim.status()).transitions.find((transition) => transition.to !== 'online' && Date.parse(transition.at) >= started);
        if (side === 'shim' && left) results.notes.push(`${operation} (${clients} clients): the shim went ${left.to} during a slice (${left.reason}); its row is not pass-through alone.`);
        parts[side].push(value);
        if (side === 'direct') {
          cpu.regionDirect += regionCpu! * ms;
          cpu.directMs += ms;
        } else {
          cpu.regionShim += regionCpu! * ms;
          cpu.shim += shimCpu! * ms;
          cpu.shimMs += ms;
        }
      }
    }
    const row: PassThroughRow = {
      operation,
      clients,
      direct: inSequence(parts.direct),
      shim: inSequence(parts.shim),
      regionCpuDirect: cpu.regionDirect / cpu.directMs,
      regionCpuShim: cpu.regionShim / cpu.shimMs,
      shimCpu: cpu.shim / cpu.shimMs,
    };
    results.passThrough.push(row);
    for (const side of ['direct', 'shim'] as const) {
      const result = row[side];
      if (result.errors > 0) results.notes.push(`${operation} (${clients} clients, ${side}): ${result.errors} errors, e.g. ${result.errorSample}`);
    }
    console.error(
      `pass-through ${operation} ${clients} clients: direct ${row.direct.requestsPerSecond.toFixed(0)} req/s p50 ${row.direct.p50.toFixed(1)} ms, ` +
        `shim ${row.shim.requestsPerSecond.toFixed(0)} req/s p50 ${row.shim.p50.toFixed(1)} ms`,
    );
  }
}

/** 1. SendMessage and ReceiveMessage, straight to the region and through a shim. */
async function measurePassThrough(dir: string, region: Endpoint): Promise<void> {
  const shim = await startHybridShim(dir, 'pass-through', region.url.origin, []);
  try {
    // moto's sends and receives cost time in proportion to what the queue holds: every slice starts from the same queue.
    const purge = (url: string) => call(region, 'PurgeQueue', { QueueUrl: url });
    const name = `pass-through-${Date.now()}`;
    const urls = { shim: await queueUrl(shim.endpoint, name), region: (await call(region, 'GetQueueUrl', { QueueName: name })).QueueUrl as string };
    const sends = {
      direct: await prepare(region, 'SendMessage', Array.from({ length: 64 }, (_, index) => ({ QueueUrl: urls.region, MessageBody: messageBody(index) }))),
      shim: await prepare(shim.endpoint, 'SendMessage', Array.from({ length: 64 }, (_, index) => ({ QueueUrl: urls.shim, MessageBody: messageBody(index) }))),
    };
    const requestsOf = (target: Endpoint) => (target === region ? sends.direct : sends.shim);
    // Warm both paths up (connections, the shim's mirror of the queue).
    for (const target of [region, shim.endpoint]) await generator.run(spec(target, { clients: 8, durationMs: 1000, requests: requestsOf(target) }));
    await alternate(
      'SendMessage',
      CLIENTS,
      region,
      shim,
      (target, clients) => spec(target, { clients, durationMs: SLICE_MS, requests: requestsOf(target), action: 'SendMessage' }),
      async () => void (await purge(urls.region)),
    );

    // Receives leave what they get visible (VisibilityTimeout 0), so the queue holds the same messages throughout:
    // with moto, taking and deleting would need the queue refilled at its slow, growing cost between slices.
    const receiveName = `pass-through-receive-${Date.now()}`;
    const receiveUrls = { shim: await queueUrl(shim.endpoint, receiveName), region: (await call(region, 'GetQueueUrl', { QueueName: receiveName })).QueueUrl as string };
    const fill = await prepare(
      region,
      'SendMessageBatch',
      Array.from({ length: RECEIVE_LEVEL / 10 }, (_, index) => ({ QueueUrl: receiveUrls.region, Entries: Array.from({ length: 10 }, (__, entry) => ({ Id: `m${entry}`, MessageBody: messageBody(index * 10 + entry) })) })),
    );
    await generator.run(spec(region, { clients: DEFAULTS.replayConcurrency, once: true, requests: fill, messagesPerRequest: 10 }));
    const receive = (target: Endpoint, url: string) => prepare(target, 'ReceiveMessage', [{ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 0 }]);
    const receives = { direct: await receive(region, receiveUrls.region), shim: await receive(shim.endpoint, receiveUrls.shim) };
    await alternate('ReceiveMessage (10, VisibilityTimeout 0)', RECEIVE_CLIENTS, region, shim, (target, clients) =>
      spec(target, { clients, durationMs: SLICE_MS, requests: target === region ? receives.direct : receives.shim, action: 'ReceiveMessage' }),
    );
  } finally {
    await shim.process.stop();
  }
}

/** A region to replay to: its SQS straight and through the fault proxy, and the hybrid shim in front of it. */
interface Region {
  readonly name: string;
  /** Straight to the region (for checks). */
  readonly endpoint: Endpoint;
  /** The way the hybrid shim takes to the region: through the proxy (the direct client takes it too). */
  readonly throughProxy: Endpoint;
  readonly proxy: FaultProxy;
  readonly shim: HybridShim;
  readonly messages: number;
  /** The proxy's mode while the link is up: pass, or a latency. */
  readonly link: SteadyMode;
}

/** The messages of one replay measurement, as SendMessageBatch inputs of 10 for a queue URL. */
function backlogBatches(kind: ReplayRow['kind'], messages: number, url: string, tag: string): Array<Record<string, unknown>> {
  return Array.from({ length: messages / 10 }, (_, batch) => ({
    QueueUrl: url,
    Entries: Array.from({ length: 10 }, (__, entry) => {
      const index = batch * 10 + entry;
      return {
        Id: `m${entry}`,
        MessageBody: messageBody(index),
        ...(kind === 'FIFO' ? { MessageGroupId: `group-${index % GROUPS}`, MessageDeduplicationId: `${tag}-${index}` } : {}),
      };
    }),
  }));
}

const queueName = (how: string, kind: ReplayRow['kind'], tag: string) => `${how}-${kind.toLowerCase()}-${tag}${kind === 'FIFO' ? '.fifo' : ''}`;
const queueAttributes = (kind: ReplayRow['kind']): Record<string, string> => (kind === 'FIFO' ? { FifoQueue: 'true' } : {});

/**
 * The region takes the backlog's messages from a direct client, with the replayer's batches in
 * flight, on the replayer's way: the load generator's pre-signed requests, or an AWS SDK client
 * (in the generator's thread too).
 */
async function direct(region: Region, how: 'generator' | 'SDK', kind: ReplayRow['kind'], round: number, tag: string): Promise<ReplayRow> {
  const target = region.throughProxy;
  const url = await queueUrl(target, queueName(how === 'SDK' ? 'sdk' : 'direct', kind, tag), queueAttributes(kind));
  const requests = await prepare(target, 'SendMessageBatch', backlogBatches(kind, region.messages, url, tag));
  const { value: result, cpu: [regionCpu], ms } = await withCpu([target.pid], () =>
    generator.run(spec(target, { clients: DEFAULTS.replayConcurrency, once: true, requests, messagesPerRequest: 10, action: 'SendMessageBatch', sdk: how === 'SDK' })),
  );
  const inRegion = await messagesIn(target, url);
  return { region: region.name, kind, round, how, messages: region.messages, seconds: ms / 1000, inRegion, regionCpu: regionCpu!, errors: result.errors };
}

/**
 * The backlog stored at the edge while the region is cut, then replayed once the link is mended:
 * timed from the switch to `replaying` until the switch back to `online` (the backlog is 0).
 */
async function replay(region: Region, kind: ReplayRow['kind'], round: number, tag: string): Promise<ReplayRow> {
  const { shim, proxy } = region;
  await shim.until(back, 'online with nothing to replay');
  const name = queueName('replay', kind, tag);
  const url = await queueUrl(shim.endpoint, name, queueAttributes(kind));
  const requests = await prepare(shim.endpoint, 'SendMessageBatch', backlogBatches(kind, region.messages, url, tag));
  proxy.setMode('blackhole');
  // The first sends wait out the upstream timeout, take the edge offline and are stored; the rest are stored at once.
  const fillStarted = performance.now();
  const fill = await generator.run(spec(shim.endpoint, { clients: 8, once: true, requests, messagesPerRequest: 10 }));
  const fillSeconds = (performance.now() - fillStarted) / 1000;
  const stored = await shim.until((status) => status.mode === 'offline', 'offline');
  if (fill.errors > 0 || stored.backlog !== region.messages) {
    results.notes.push(`${region.name} ${kind} round ${round}: the edge stored ${stored.backlog} of ${region.messages} messages, ${fill.errors} sends failed (${fill.errorSample})`);
  }
  const mended = Date.now();
  proxy.setMode(region.link);
  // CPU and profile over the replay itself (as the status polls see it), not the recovery before it.
  await shim.until((status) => status.mode !== 'offline', 'replaying', 60_000);
  const fromUs = monotonicUs();
  const { value: done, cpu: [regionCpu, shimCpu] } = await withCpu([region.endpoint.pid, shim.endpoint.pid], () => shim.until(back, 'replayed'));
  profileWindows.push({ label: `${region.name}: ${kind} replay`, fromUs, toUs: monotonicUs() });
  // Newest first: the switch to replaying since the link was mended, and the switch back to online after it.
  const replaying = done.transitions.find((transition) => transition.to === 'replaying' && Date.parse(transition.at) >= mended);
  const online = done.transitions.find((transition) => transition.from === 'replaying' && transition.to === 'online' && replaying !== undefined && Date.parse(transition.at) >= Date.parse(replaying.at));
  if (!replaying || !online) throw new Error(`${region.name} ${kind} round ${round}: no replaying → online after the link was mended: ${JSON.stringify(done.transitions.slice(0, 5))}`);
  const regionUrl = (await call(region.endpoint, 'GetQueueUrl', { QueueName: name })).QueueUrl as string;
  return {
    region: region.name,
    kind,
    round,
    how: 'replay',
    messages: stored.backlog,
    seconds: (Date.parse(online.at) - Date.parse(replaying.at)) / 1000,
    inRegion: await messagesIn(region.endpoint, regionUrl),
    regionCpu: regionCpu!,
    shimCpu: shimCpu!,
    fillSeconds,
    errors: fill.errors,
  };
}

/** 2. Replay throughput against direct clients, FIFO and standard, the order flipping every round. */
async function measureReplay(region: Region): Promise<void> {
  for (let round = 1; round <= REPLAY_ROUNDS; round++) {
    for (const kind of ['FIFO', 'standard'] as const) {
      const tag = `${Date.now()}-${round}`;
      const order = (['generator', 'SDK', 'replay'] as const).slice();
      if (round % 2 === 0) order.reverse();
      for (const how of order) {
        const row = how === 'replay' ? await replay(region, kind, round, tag) : await direct(region, how, kind, round, tag);
        results.replay.push(row);
        console.error(`${region.name} ${how} ${kind} round ${round}: ${row.messages} messages in ${row.seconds.toFixed(1)} s, ${(row.messages / row.seconds).toFixed(0)} msg/s, ${row.inRegion} in the region`);
      }
    }
  }
}

const percentile = (sorted: readonly number[], fraction: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)]!);

/**
 * One cut under load: clients send through the shim, the region is cut, the load stops once the
 * shim is offline, the link is mended; what the shim saw and when, and what the clients saw.
 */
async function switchTrial(shim: HybridShim, proxy: FaultProxy, settings: string, fault: 'blackhole' | 'refuse', trial: number, sends: PreparedRequest[]): Promise<SwitchRow> {
  const load = generator.run(spec(shim.endpoint, { clients: SWITCH_CLIENTS, durationMs: 120_000, requests: sends, action: 'SendMessage', timeline: true }));
  await sleep(BEFORE_CUT_MS);
  const cut = Date.now();
  proxy.setMode(fault);
  // The earliest failure /status showed after the cut: its lastFailureAt is the latest failure, so poll fast.
  let firstSeen: { at: number; what: string } | undefined;
  let offline: EdgeStatus | undefined;
  const deadline = cut + 60_000;
  while (Date.now() < deadline) {
    const status = await shim.status();
    const failedAt = status.upstream?.lastFailureAt ? Date.parse(status.upstream.lastFailureAt) : undefined;
    if (failedAt !== undefined && failedAt >= cut && (firstSeen === undefined || failedAt < firstSeen.at)) firstSeen = { at: failedAt, what: status.upstream!.lastFailure ?? '' };
    if (status.mode === 'offline') {
      offline = status;
      break;
    }
    await sleep(STATUS_POLL_MS);
  }
  generator.stop();
  const result = await load;
  proxy.setMode('pass');
  const wentOffline = offline?.transitions.find((transition) => transition.to === 'offline' && Date.parse(transition.at) >= cut);
  const offlineAt = wentOffline ? Date.parse(wentOffline.at) : undefined;
  const storedSends = shim.log.filter((line) => line.msg === STORED_FOR_REPLAY && line.time >= cut);
  const firstFailedSend = storedSends[0];
  if (firstFailedSend && (firstSeen === undefined || firstFailedSend.time < firstSeen.at)) firstSeen = { at: firstFailedSend.time, what: String(firstFailedSend.reason ?? '') };
  const during: number[] = [];
  let failedSends = 0;
  const timeline = result.timeline ?? new Float64Array();
  for (let index = 0; index < timeline.length; index += 3) {
    const [start, end, ok] = [timeline[index]!, timeline[index + 1]!, timeline[index + 2]!];
    if (ok === 0) failedSends++;
    if (end >= cut && (offlineAt === undefined || start <= offlineAt)) during.push(end - start);
  }
  during.sort((a, b) => a - b);
  if (result.errors > 0) results.notes.push(`switch ${settings} ${fault} trial ${trial}: ${result.errors} sends failed, e.g. ${result.errorSample}`);
  const since = (from: number | undefined) => (from === undefined || offlineAt === undefined ? undefined : offlineAt - from);
  // A send's failure is logged right after the breaker counted it: a log line within a few ms of the first failure is that failure.
  const aSend = firstSeen !== undefined && storedSends.some((line) => line.time >= firstSeen!.at && line.time - firstSeen!.at <= SAME_FAILURE_MS);
  const row: SwitchRow = {
    settings,
    fault,
    trial,
    cutToFirstFailureMs: firstSeen ? firstSeen.at - cut : undefined,
    firstFailure: firstSeen ? `${aSend ? 'a client send' : 'the probe (not a send)'}: ${firstSeen.what.replace(/\|/g, '/').slice(0, 70)}` : '-',
    firstFailureToOfflineMs: since(firstSeen?.at),
    firstFailedSendToOfflineMs: since(firstFailedSend?.time),
    cutToOfflineMs: since(cut),
    offlineReason: wentOffline?.reason ?? 'did not go offline',
    sendsDuringSwitch: during.length,
    p50: percentile(during, 0.5),
    p99: percentile(during, 0.99),
    max: during.at(-1) ?? NaN,
    failedSends,
  };
  console.error(
    `switch ${settings} ${fault} trial ${trial}: first failure +${row.cutToFirstFailureMs} ms after the cut, offline +${row.cutToOfflineMs} ms ` +
      `(${row.firstFailureToOfflineMs} ms after the first failure); sends during: ${during.length}, max ${row.max.toFixed(0)} ms, failed ${failedSends}`,
  );
  return row;
}

/** 3. Switch time under load, for each fault, with the default settings and with shorter timeouts. */
async function measureSwitch(dir: string, moto: Region): Promise<void> {
  const trials = async (shim: HybridShim, settings: string) => {
    const name = `switch-${Date.now()}`;
    const url = await queueUrl(shim.endpoint, name);
    const regionUrl = (await call(moto.endpoint, 'GetQueueUrl', { QueueName: name })).QueueUrl as string;
    const sends = await prepare(shim.endpoint, 'SendMessage', Array.from({ length: 64 }, (_, index) => ({ QueueUrl: url, MessageBody: messageBody(index) })));
    for (let trial = 1; trial <= SWITCH_TRIALS; trial++) {
      for (const fault of ['blackhole', 'refuse'] as const) {
        await shim.until(back, 'online with nothing to replay');
        // moto's sends cost time in proportion to what the queue holds: every trial starts from an empty one.
        await call(moto.endpoint, 'PurgeQueue', { QueueUrl: regionUrl });
        results.switches.push(await switchTrial(shim, moto.proxy, settings, fault, trial, sends));
      }
    }
    await shim.until(back, 'online with nothing to replay');
  };
  await trials(moto.shim, 'defaults');
  const short = await startHybridShim(dir, 'short-timeouts', moto.throughProxy.url.origin, [...SHORT_TIMEOUTS, ...RECOVERY, '--replay-rate', String(REPLAY_RATE)]);
  try {
    await trials(short, SHORT_TIMEOUTS_LABEL);
  } finally {
    await short.process.stop();
  }
}

function motoVersion(): string {
  try {
    return execFileSync('python3', ['-c', 'import moto; print(moto.__version__)'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function revision(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return `${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', 'edge-shim') ? ' with uncommitted changes' : ''}`;
  } catch {
    return 'outside git';
  }
}

/** Things to stop at the end, last started first stopped. */
const running: Array<() => Promise<void>> = [];

/** The fault proxy in front of a region, and a hybrid shim (default timeouts) through it. */
async function startRegion(
  dir: string,
  name: string,
  endpointOf: (origin: string) => Endpoint,
  messages: number,
  link: SteadyMode,
  profileDir: string | undefined,
  extraArgs: readonly string[] = [],
): Promise<Region> {
  const regionEndpoint = endpointOf('');
  const proxy = await FaultProxy.start({ target: regionEndpoint.url.host, mode: link });
  running.push(() => proxy.close());
  const throughProxy = endpointOf(`http://${proxy.address}`);
  const nodeOptions = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, name.replace(/\W+/g, '-'))}`] : [];
  const shim = await startHybridShim(dir, `${name.replace(/\W+/g, '-')}-edge`, throughProxy.url.origin, [...RECOVERY, '--replay-rate', String(REPLAY_RATE), ...extraArgs], nodeOptions);
  running.push(() => shim.process.stop());
  return { name, endpoint: regionEndpoint, throughProxy, proxy, shim, messages, link };
}

async function main(): Promise<void> {
  const started = new Date();
  const loadBefore = loadavg();
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-bench-hybrid-'));
  const profileDir = options['cpu-prof'] ? join(RESULTS, 'profiles', `hybrid-${started.toISOString().replace(/[:.]/g, '-')}`) : undefined;
  const regions: Region[] = [];
  try {
    const moto = await startMoto();
    running.push(() => moto.stop());
    const motoAt = (origin: string) => endpoint('moto', origin || moto.endpoint, REGION_CREDENTIALS, moto.pid);
    if (!options['skip-pass-through']) await measurePassThrough(dir, motoAt(''));
    if (!options['skip-replay'] || !options['skip-switch']) {
      const motoRegion = await startRegion(dir, 'moto', motoAt, MESSAGES.moto, { kind: 'pass' }, profileDir);
      regions.push(motoRegion);
      if (!options['skip-replay'] && REGIONS.includes('moto')) await measureReplay(motoRegion);
      if (!options['skip-switch']) await measureSwitch(dir, motoRegion);
    }
    if (!options['skip-replay'] && (REGIONS.includes('shim') || REGIONS.includes('shim-wan'))) {
      // A standalone Holdfast shim as the region: SQS over SQLite, many times faster than moto; on loopback, or as far away as a region.
      const fast = await spawnShim({ dbFile: join(dir, 'region.db'), credentials: [`${REGION_CREDENTIALS.accessKeyId}:${REGION_CREDENTIALS.secretAccessKey}`] });
      running.push(() => fast.stop());
      const links: Array<[string, string, SteadyMode]> = [
        ['shim', 'standalone shim', { kind: 'pass' }],
        ['shim-wan', `standalone shim, ${WAN_MS} ms away`, { kind: 'latency', upstreamMs: Math.floor(WAN_MS / 2), downstreamMs: Math.ceil(WAN_MS / 2) }],
      ];
      for (const [, name, link] of links.filter(([option]) => REGIONS.includes(option))) {
        // A quick run shortens the fills, which wait out the upstream timeout before the edge goes offline.
        const quicker = QUICK ? ['--upstream-timeout', '1s'] : [];
        const region = await startRegion(dir, name, (origin) => endpoint(name, origin || fast.url, REGION_CREDENTIALS, fast.pid), MESSAGES.shim, link, profileDir, quicker);
        regions.push(region);
        await measureReplay(region);
      }
    }
  } finally {
    await generator.close();
    for (const stop of running.reverse()) await stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const profileSummary = profileDir
    ? regions
        .map((region) => {
          const regionDir = join(profileDir, region.name.replace(/\W+/g, '-'));
          const [profile] = readdirSync(regionDir).filter((file) => file.endsWith('.cpuprofile'));
          const windows = profileWindows.filter((window) => window.label.startsWith(`${region.name}:`));
          return profile && windows.length > 0 ? `### In front of ${region.name}\n\n${summarizeProfile(join(regionDir, profile), ROOT, windows)}` : '';
        })
        .filter(Boolean)
        .join('\n\n')
    : undefined;
  const defaults = `--upstream-timeout ${DEFAULTS.upstreamTimeoutMs / 1000}s, --probe-interval ${DEFAULTS.probeIntervalMs / 1000}s, --probe-timeout ${DEFAULTS.probeTimeoutMs / 1000}s, --breaker-failures ${DEFAULTS.breakerFailures} (and half the requests failing over 10 s), the SDK's 3 attempts per request`;
  const description = [
    `Edge shim at ${revision()}, in its own process as \`npm start\` runs it (SigV4 verified, --durability process). The region is moto_server ${motoVersion()} on this ` +
      'machine: its sends and receives cost time in proportion to the messages the queue holds (each reads the queue\'s attributes, which counts every message), ' +
      'so queues are purged before each slice and trial, and replay backlogs against moto are small. Load: closed-loop clients (bench/load.ts, one worker thread, pre-signed requests).',
    '',
    `Pass-through: the shim talks to moto directly, default settings; ${CLIENTS.join(', ')} clients sending and ${RECEIVE_CLIENTS.join(', ')} receiving, ` +
      `${((SLICE_MS * SLICES) / 1000).toFixed(0)} s per side in ${SLICES} alternating slice(s); receives get up to 10 of the ${RECEIVE_LEVEL} messages a queue holds and leave them visible (VisibilityTimeout 0). Replay and switch: the shim talks to the region through the fault proxy (testkit/fault-proxy.ts, in the benchmark's process), ` +
      `default timeouts and probes, --replay-rate ${REPLAY_RATE.toLocaleString('en-US')} (far above what either region takes, so never the limit) and ${RECOVERY.join(' ')} ` +
      `(so that the replay starts soon after the link is mended). Backlogs of ${MESSAGES.moto.toLocaleString('en-US')} (moto) and ${MESSAGES.shim.toLocaleString('en-US')} (standalone shim) ` +
      `messages of ${messageBody(0).length} bytes, FIFO in ${GROUPS} groups with explicit deduplication ids, stored at the edge by 8 clients sending SendMessageBatch of 10; ` +
      `${REPLAY_ROUNDS} round(s); the replayer and the direct clients (on the same way through the proxy) keep ${DEFAULTS.replayConcurrency} batches in flight.${QUICK ? ' QUICK run: small sizes, one trial, --upstream-timeout 1s for the standalone regions\' edges; not for comparison.' : ''}`,
  ];
  const text = renderHybridReport(results, {
    started,
    finished: new Date(),
    description,
    loadBefore,
    loadAfter: loadavg(),
    replayGoal: REPLAY_GOAL,
    switchGoalMs: SWITCH_GOAL_MS,
    defaultSettings: defaults,
    profileSummary,
  });
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(OUT, text);
  console.log(text);
  console.error(`written to ${OUT}`);
}

await main();
