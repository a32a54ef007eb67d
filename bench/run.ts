/**
 * `npm run bench [-- options]`: measures the edge shim, a bare node:http server (the ceiling of a
 * one-process Node server on this machine, and of the load generator itself), and optionally any
 * other SQS endpoint, in one run; prints a markdown report and writes it to bench/results/.
 *
 * The load generator is closed-loop clients on undici pools with keep-alive, in worker threads.
 * Requests are SigV4-signed like an SDK's. Signing with @smithy/signature-v4 costs ~40 µs of
 * generator CPU, about what the bare server spends on a whole request, so signing every request
 * would make the generator the bottleneck: fixed requests (SendMessage, SendMessageBatch,
 * ReceiveMessage) are signed ahead, 64 different bodies sent in rotation, which the server still
 * verifies in full on every request (it keeps no memory of signatures seen); DeleteMessageBatch
 * carries fresh receipt handles and is signed for each request. `--sign-each` signs every fixed
 * request anew instead, as a client would.
 *
 * `--engines sqlite,postgres` also measures the shim on PostgreSQL (postgres-site.ts): one node,
 * directly and behind HAProxy, two nodes behind HAProxy, and the bare ceiling of PostgreSQL through
 * pg with no shim (bare-postgres.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { type ShimProcess, spawnShim } from '../testkit/shim-process.js';
import { spawnBare } from './bare-process.js';
import { BarePostgres } from './bare-postgres.js';
import { LoadGenerator, type PreparedRequest, type ScenarioResult, type ScenarioSpec, inSequence } from './load.js';
import { cpuSeconds, memory } from './proc-stats.js';
import { type ProfileWindow, monotonicUs, summarizeProfile } from './profile.js';
import { type PostgresSite, startPostgresSite } from './postgres-site.js';
import { type Results, renderReport } from './report.js';
import { type Credentials, Signer } from './sign.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RESULTS = join(ROOT, 'bench', 'results');
const USAGE = `Usage: npm run bench -- [options]
  --duration S             seconds per measurement (default 5; --quick: 1)
  --clients LIST           concurrent clients, comma-separated (default 1,8,32)
  --quick                  a small run for a smoke check (1 s measurements, 20,000-message backlog)
  --skip-backlog           skip the receive-with-backlog and memory measurements
  --backlog N              messages in the backlog (default 1000000)
  --durability D           the shim's --durability, process or power (default process)
  --engines LIST           storage engines to measure the shim on, comma-separated: sqlite, postgres
                           (default sqlite). postgres: one node (directly and behind HAProxy), two
                           nodes behind HAProxy, and a bare PostgreSQL ceiling (pg, no shim), on a
                           throwaway cluster (Debian's server and HAProxy, installed when missing);
                           the report goes to bench/results/postgres.md
  --unauthenticated        run the shim without credentials (no SigV4 verification)
  --sign-each              sign every request in the generator instead of reusing signatures
  --threads N              load generator worker threads (default 1)
  --cpu-prof               profile the shim (node --cpu-prof) and summarize it in the report
  --target URL             also measure this SQS endpoint (AWS JSON protocol)
  --target-name NAME       its name in the report (default target)
  --target-region R        its region (default us-east-1)
  --target-credentials K:S its credentials (default test:test)
  --out FILE               report file (default bench/results/latest.md; --quick: quick.md; with
                           postgres among the engines: postgres.md)`;

/** The options given, or the usage printed instead of a stack trace when one is unknown or malformed. */
function readOptions() {
  try {
    return parseArgs({
      options: {
        duration: { type: 'string' },
        clients: { type: 'string', default: '1,8,32' },
        quick: { type: 'boolean', default: false },
        'skip-backlog': { type: 'boolean', default: false },
        backlog: { type: 'string' },
        durability: { type: 'string', default: 'process' },
        engines: { type: 'string', default: 'sqlite' },
        unauthenticated: { type: 'boolean', default: false },
        'sign-each': { type: 'boolean', default: false },
        threads: { type: 'string', default: '1' },
        'cpu-prof': { type: 'boolean', default: false },
        target: { type: 'string' },
        'target-name': { type: 'string', default: 'target' },
        'target-region': { type: 'string', default: 'us-east-1' },
        'target-credentials': { type: 'string', default: 'test:test' },
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
const DURATION_MS = Number(options.duration ?? (options.quick ? 1 : 5)) * 1000;
const CLIENTS = options.clients.split(',').map(Number);
const BACKLOG = Number(options.backlog ?? (options.quick ? 20_000 : 1_000_000));
// Receive from a small queue first, as the like-for-like reference for the backlog.
const SMALL_QUEUE = Math.min(BACKLOG, options.quick ? 5_000 : 50_000);
const FILL_CLIENTS = 32;
const REGION = 'us-east-1';
const SHIM_CREDENTIALS: Credentials = { accessKeyId: 'AKIDHOLDFASTBENCH', secretAccessKey: 'holdfast-bench-secret' };
const ENGINES = options.engines.split(',');
const OUT = options.out ?? join(RESULTS, options.quick ? 'quick.md' : ENGINES.includes('postgres') ? 'postgres.md' : 'latest.md');
if (ENGINES.some((engine) => engine !== 'sqlite' && engine !== 'postgres')) usageError('--engines must name sqlite, postgres or both');
if (options.durability !== 'process' && options.durability !== 'power') usageError('--durability must be process or power');
if (CLIENTS.some((clients) => !Number.isInteger(clients) || clients < 1)) usageError('--clients must be positive integers');
if (!(DURATION_MS > 0) || !(BACKLOG >= 0) || !(Number(options.threads) >= 1)) usageError('--duration, --backlog and --threads must be numbers');

/** A server under measurement. */
interface System {
  readonly name: string;
  readonly endpoint: URL;
  readonly signer: Signer;
  readonly region: string;
  readonly credentials: Credentials;
  /** The server's processes, when they run on this machine (for CPU, and for memory when there is one). */
  readonly pids: readonly number[];
}

async function call(system: System, action: string, input: Record<string, unknown>): Promise<Record<string, unknown>> {
  const body = JSON.stringify(input);
  const headers = await system.signer.sign(system.endpoint, action, body);
  const response = await request(system.endpoint, { method: 'POST', headers, body });
  const text = await response.body.text();
  if (response.statusCode !== 200) throw new Error(`${system.name} ${action}: HTTP ${response.statusCode} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

async function prepare(system: System, action: string, inputs: Array<Record<string, unknown>>): Promise<PreparedRequest[]> {
  return Promise.all(
    inputs.map(async (input) => {
      const body = JSON.stringify(input);
      return { path: system.endpoint.pathname, headers: await system.signer.sign(system.endpoint, action, body), body };
    }),
  );
}

// The bare PostgreSQL ceiling's operations, beside SendMessage and receive+delete in the report.
const INSERT_OPERATION = 'INSERT (1 message)';
const DELETE_OPERATION = 'DELETE … RETURNING (1 message)';

const messageBody = (index: number) => `bench message ${index} ${'x'.repeat(80)}`;
const sendInputs = (queueUrl: string) => Array.from({ length: 64 }, (_, index) => ({ QueueUrl: queueUrl, MessageBody: messageBody(index) }));
const batchInputs = (queueUrl: string) =>
  Array.from({ length: 64 }, (_, index) => ({
    QueueUrl: queueUrl,
    Entries: Array.from({ length: 10 }, (_, entry) => ({ Id: `m${entry}`, MessageBody: messageBody(index * 10 + entry) })),
  }));

function spec(system: System, extra: Omit<ScenarioSpec, 'origin' | 'region' | 'credentials'>): ScenarioSpec {
  return { origin: system.endpoint.origin, region: system.region, credentials: system.credentials, ...extra };
}

const generator = new LoadGenerator(Number(options.threads));
const results: Results = { rows: [], backlogRows: [], fillRows: [], memoryRows: [], notes: [] };
const { rows, backlogRows, fillRows, memoryRows, notes } = results;

// Stretches of the run whose shim CPU profile is summarized (with --cpu-prof).
const profileWindows: ProfileWindow[] = [];

async function profiled(system: System, label: string, run: () => Promise<ScenarioResult>): Promise<ScenarioResult> {
  const fromUs = monotonicUs();
  const result = await run();
  if (system.name === 'shim') profileWindows.push({ label, fromUs, toUs: monotonicUs() });
  return result;
}

async function measure(system: System, operation: string, clients: number, scenario: ScenarioSpec): Promise<ScenarioResult> {
  const cpu = () => system.pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const cpuBefore = cpu();
  const run = () => generator.run(scenario);
  const result = clients === Math.max(...CLIENTS) ? await profiled(system, `${operation}, ${clients} clients`, run) : await run();
  const serverCpu = system.pids.length > 0 ? (cpu() - cpuBefore) / (result.elapsedMs / 1000) : undefined;
  record(system.name, operation, clients, result, serverCpu);
  return result;
}

function record(system: string, operation: string, clients: number, result: ScenarioResult, serverCpu?: number): void {
  rows.push({ system, operation, clients, result, serverCpu, load: loadavg()[0]! });
  if (result.errors > 0) notes.push(`${system} ${operation} (${clients} clients): ${result.errors} errors, e.g. ${result.errorSample}`);
  console.error(
    `${system.padEnd(8)} ${operation.padEnd(34)} ${String(clients).padStart(3)} clients: ${result.requestsPerSecond.toFixed(0)} req/s, ` +
      `${result.messagesPerSecond.toFixed(0)} msg/s, p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms, errors ${result.errors}`,
  );
}

async function measureBare(bare: System): Promise<void> {
  // The same requests as SendMessage, so the generator does the same work per request.
  const requests = await prepare(bare, 'SendMessage', sendInputs('http://bare/000000000000/bench'));
  await generator.run(spec(bare, { clients: 8, durationMs: Math.min(1000, DURATION_MS), requests }));
  for (const clients of CLIENTS) {
    await measure(bare, 'bare HTTP (fixed answer)', clients, spec(bare, { clients, durationMs: DURATION_MS, requests, signEach: options['sign-each'], action: 'SendMessage' }));
  }
}

async function createQueue(system: System, name: string): Promise<string> {
  const { QueueUrl } = await call(system, 'CreateQueue', { QueueName: name });
  return QueueUrl as string;
}

async function storedMessages(system: System, queueUrl: string): Promise<number> {
  const { Attributes } = await call(system, 'GetQueueAttributes', {
    QueueUrl: queueUrl,
    AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
  });
  return Object.values(Attributes as Record<string, string>).reduce((sum, value) => sum + Number(value), 0);
}

async function measureSqs(system: System, suffix: string): Promise<void> {
  const queueUrl = await createQueue(system, `bench${suffix}`);
  const sends = await prepare(system, 'SendMessage', sendInputs(queueUrl));
  const batches = await prepare(system, 'SendMessageBatch', batchInputs(queueUrl));
  const [receive] = await prepare(system, 'ReceiveMessage', [{ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }]);
  const fixed = { signEach: options['sign-each'], durationMs: DURATION_MS };
  await generator.run(spec(system, { clients: 8, durationMs: Math.min(1000, DURATION_MS), requests: sends }));
  for (const clients of CLIENTS) {
    await measure(system, 'SendMessage', clients, spec(system, { ...fixed, clients, requests: sends, action: 'SendMessage' }));
  }
  for (const clients of CLIENTS) {
    await measure(system, 'SendMessageBatch (10)', clients, spec(system, { ...fixed, clients, requests: batches, action: 'SendMessageBatch', messagesPerRequest: 10 }));
  }
  for (const clients of CLIENTS) {
    const result = await measure(system, 'ReceiveMessage + DeleteMessageBatch', clients, spec(system, { clients, durationMs: DURATION_MS, receive: { request: receive!, queueUrl, measure: 'round-trip' } }));
    if (result.emptyReceives > 0) notes.push(`${system.name} receive+delete (${clients} clients): the queue ran dry, ${result.emptyReceives} empty receives counted`);
  }
}

async function fill(system: System, queueUrl: string, messages: number): Promise<void> {
  if (messages <= 0) return;
  const batches = await prepare(system, 'SendMessageBatch', batchInputs(queueUrl));
  const result = await generator.run(spec(system, { clients: FILL_CLIENTS, untilMessages: messages, requests: batches, messagesPerRequest: 10 }));
  fillRows.push({ system: system.name, messages: result.messages, messagesPerSecond: result.messagesPerSecond, errors: result.errors });
  console.error(`${system.name.padEnd(8)} filled ${result.messages} messages at ${result.messagesPerSecond.toFixed(0)} msg/s (${result.errors} errors)`);
  if (result.errors > 0) notes.push(`${system.name} backlog fill: ${result.errors} errors, e.g. ${result.errorSample}`);
}

// The empty queue and the backlog are measured in alternation, so that both meet the same
// background load of this shared machine.
const ALTERNATIONS = 4;

async function measureBacklog(system: System, suffix: string, dbFile?: string): Promise<void> {
  const receiveFrom = async (queue: string, queueUrl: string, durationMs: number) => {
    const [receive] = await prepare(system, 'ReceiveMessage', [{ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }]);
    return profiled(system, `ReceiveMessage from the ${queue}, 1 client`, () =>
      generator.run(spec(system, { clients: 1, durationMs, receive: { request: receive!, queueUrl, measure: 'receive' } })),
    );
  };
  const record = (queue: string, stored: number, result: ScenarioResult) => {
    backlogRows.push({ system: system.name, queue, stored, result });
    console.error(`${system.name.padEnd(8)} receive from ${queue} (${stored} stored): p50 ${result.p50.toFixed(2)} ms, p99 ${result.p99.toFixed(2)} ms`);
    if (result.emptyReceives > 0 && stored > 0) notes.push(`${system.name} receive from ${queue}: ran dry (${result.emptyReceives} empty receives)`);
  };
  const recordMemory = async (when: string, queueUrl: string) => {
    if (system.pids.length !== 1) return;
    const dbMb = dbFile ? ['', '-wal'].reduce((sum, ext) => sum + fileSize(`${dbFile}${ext}`), 0) / 2 ** 20 : undefined;
    memoryRows.push({ system: system.name, when, stored: await storedMessages(system, queueUrl), ...memory(system.pids[0]!), dbMb });
  };
  const emptyUrl = await createQueue(system, `bench-empty${suffix}`);
  const backlogUrl = await createQueue(system, `bench-backlog${suffix}`);
  await recordMemory('before the backlog', backlogUrl);
  await fill(system, backlogUrl, SMALL_QUEUE);
  const small = await storedMessages(system, backlogUrl);
  record('small queue', small, await receiveFrom('small queue', backlogUrl, DURATION_MS));
  await fill(system, backlogUrl, BACKLOG - (await storedMessages(system, backlogUrl)));
  await recordMemory('backlog stored', backlogUrl);
  const stored = await storedMessages(system, backlogUrl);
  const empty: ScenarioResult[] = [];
  const backlog: ScenarioResult[] = [];
  for (let round = 0; round < ALTERNATIONS; round++) {
    empty.push(await receiveFrom('empty queue', emptyUrl, DURATION_MS / ALTERNATIONS));
    backlog.push(await receiveFrom('backlog', backlogUrl, DURATION_MS / ALTERNATIONS));
  }
  record('empty queue', 0, inSequence(empty));
  record('backlog', stored, inSequence(backlog));
  await recordMemory('after receiving from the backlog', backlogUrl);
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

/** The commit the shim was measured at, and whether its sources differ from it. */
function revision(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return `edge shim at ${git('rev-parse', '--short', 'HEAD')}${git('status', '--porcelain', '--', 'edge-shim') ? ' with uncommitted changes' : ''}`;
  } catch {
    return 'edge shim outside git';
  }
}

const system = (name: string, url: string, region: string, credentials: Credentials, pids: readonly number[] = []): System => ({
  name,
  endpoint: new URL(url),
  region,
  credentials,
  signer: new Signer(region, credentials),
  pids,
});

/**
 * The shim on PostgreSQL: one node, directly and through HAProxy, and two (spread by HAProxy's round
 * robin, as a site runs them); then the bare ceiling: pg's INSERT and DELETE … RETURNING at the same
 * client counts as SendMessage and receive+delete.
 */
async function measurePostgres(site: PostgresSite): Promise<void> {
  await measureSqs(system('postgres 1 node', site.oneNode.url, REGION, SHIM_CREDENTIALS, [site.oneNode.pid]), '');
  await measureSqs(system('postgres 1 node, HAProxy', site.oneNodeBalancer.url, REGION, SHIM_CREDENTIALS, [site.oneNode.pid]), '-balanced');
  await measureSqs(system('postgres 2 nodes', site.balancer.url, REGION, SHIM_CREDENTIALS, site.twoNodes.map((node) => node.pid)), '');
  const bare = await BarePostgres.open(site.bareUrl);
  await bare.insert(8, Math.min(1000, DURATION_MS), messageBody);
  for (const clients of CLIENTS) record('bare postgres', INSERT_OPERATION, clients, await bare.insert(clients, DURATION_MS, messageBody));
  for (const clients of CLIENTS) {
    const result = await bare.deleteOldest(clients, DURATION_MS);
    record('bare postgres', DELETE_OPERATION, clients, result);
    if (result.emptyReceives > 0) notes.push(`bare postgres delete (${clients} clients): the table ran dry, ${result.emptyReceives} empty deletes counted`);
  }
}

async function main(): Promise<void> {
  const started = new Date();
  const loadAtStart = loadavg();
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-bench-'));
  const profileDir = join(RESULTS, 'profiles', started.toISOString().replace(/[:.]/g, '-'));
  const dbFile = join(dir, 'shim.db');
  const credentials = options.unauthenticated ? [] : [`${SHIM_CREDENTIALS.accessKeyId}:${SHIM_CREDENTIALS.secretAccessKey}`];
  const bareProcess = await spawnBare();
  let shim: ShimProcess | undefined;
  let site: PostgresSite | undefined;
  try {
    const systems: System[] = [];
    if (ENGINES.includes('sqlite')) {
      shim = await spawnShim({
        dbFile,
        durability: options.durability as 'process' | 'power',
        credentials,
        nodeOptions: options['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
      });
      systems.push(system('shim', shim.url, REGION, SHIM_CREDENTIALS, [shim.pid]));
    }
    if (options.target) {
      const [accessKeyId, secretAccessKey] = options['target-credentials'].split(':') as [string, string];
      systems.push(system(options['target-name'], options.target, options['target-region'], { accessKeyId, secretAccessKey }));
    }
    await measureBare(system('bare', bareProcess.url, REGION, SHIM_CREDENTIALS, [bareProcess.pid]));
    // Queue names of their own on a target that may hold queues from earlier runs.
    const suffix = (target: System) => (target.name === 'shim' ? '' : `-${started.getTime()}`);
    for (const target of systems) await measureSqs(target, suffix(target));
    if (!options['skip-backlog']) {
      for (const target of systems) await measureBacklog(target, suffix(target), target.name === 'shim' ? dbFile : undefined);
    }
    if (ENGINES.includes('postgres')) {
      site = await startPostgresSite(credentials);
      await measurePostgres(site);
    }
  } finally {
    await generator.close();
    bareProcess.child.kill('SIGTERM');
    await shim?.stop('SIGTERM');
    await site?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const loadAtEnd = loadavg();
  let profileSummary: string | undefined;
  if (options['cpu-prof']) {
    const [profile] = readdirSync(profileDir).filter((file) => file.endsWith('.cpuprofile'));
    if (profile) profileSummary = summarizeProfile(join(profileDir, profile), ROOT, profileWindows);
  }
  const description =
    `${revision()}, --durability ${options.durability}, ${options.unauthenticated ? 'unauthenticated' : 'SigV4 verified'}; ` +
    `${DURATION_MS / 1000} s per measurement; generator: ${options.threads} worker thread(s), ` +
    `${options['sign-each'] ? 'every request signed' : 'fixed requests pre-signed (64 bodies in rotation), deletes signed each'}` +
    `${options['cpu-prof'] ? '; shim under --cpu-prof (slower, and the profiler holds memory)' : ''}${options.quick ? '; QUICK run' : ''}` +
    `${ENGINES.includes('postgres') ? "; PostgreSQL: Debian's server on a throwaway cluster on loopback, started as the tests' (testkit/postgres-cluster.ts, fsync off: like --durability process, no fsync at commit), nodes at their default 10 connections each" : ''}`;
  const text = renderReport(results, { started, description, clients: CLIENTS, profileSummary, load: { start: loadAtStart, end: loadAtEnd } });
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(OUT, text);
  console.log(text);
  console.error(`written to ${OUT}`);
}

await main();
