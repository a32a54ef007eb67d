import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import * as sqs from '@aws-sdk/client-sqs';
import { Pool } from 'undici';
import { type Credentials, Signer } from './sign.js';
import type { PreparedRequest, ScenarioSpec, WorkerResult } from './load.js';

interface Tally {
  latencies: number[];
  /** Start, end (epoch ms) and success of each request, when the scenario keeps a timeline. */
  timeline?: number[];
  requests: number;
  messages: number;
  errors: number;
  errorSample?: string;
  emptyReceives: number;
}

async function send(pool: Pool, request: PreparedRequest, tally: Tally): Promise<string | undefined> {
  try {
    const { statusCode, body } = await pool.request({ method: 'POST', path: request.path, headers: request.headers, body: request.body });
    const text = await body.text();
    if (statusCode === 200) return text;
    tally.errorSample ??= `HTTP ${statusCode}: ${text.slice(0, 300)}`;
  } catch (error) {
    tally.errorSample ??= String(error);
  }
  tally.errors++;
  return undefined;
}

const epochMs = (now: number) => performance.timeOrigin + now;

type Command = new (input: unknown) => Parameters<sqs.SQSClient['send']>[0];

/** Sends a request's input through an AWS SDK client as the command its action names; the answer as JSON, or undefined if it failed. */
async function sendBySdk(client: sqs.SQSClient, action: string, request: PreparedRequest, tally: Tally): Promise<string | undefined> {
  const Command = (sqs as unknown as Record<string, Command>)[`${action}Command`]!;
  try {
    const { $metadata: _metadata, ...output } = (await client.send(new Command(JSON.parse(request.body)))) as unknown as Record<string, unknown>;
    return JSON.stringify(output);
  } catch (error) {
    tally.errorSample ??= String(error);
    tally.errors++;
    return undefined;
  }
}

/**
 * One client sending a rotating set of requests, each answered before the next is sent; with
 * `once`, the clients share one cursor over the requests and stop at its end.
 */
async function fixedClient(
  pool: Pool,
  spec: ScenarioSpec,
  client: number,
  signer: Signer | undefined,
  sdk: sqs.SQSClient | undefined,
  tally: Tally,
  running: () => boolean,
  cursor: { next: number },
): Promise<void> {
  const requests = spec.requests!;
  const endpoint = new URL(spec.origin);
  for (let index = client; running(); index++) {
    if (spec.once && cursor.next >= requests.length) return;
    let request = requests[spec.once ? cursor.next++ : index % requests.length]!;
    const start = performance.now();
    if (signer) request = { ...request, headers: await signer.sign(endpoint, spec.action!, request.body) };
    const answered = (sdk ? await sendBySdk(sdk, spec.action!, request, tally) : await send(pool, request, tally)) !== undefined;
    tally.timeline?.push(epochMs(start), epochMs(performance.now()), answered ? 1 : 0);
    if (!answered) continue;
    tally.latencies.push(performance.now() - start);
    tally.requests++;
    tally.messages += spec.messagesPerRequest ?? 1;
  }
}

/** One consumer: ReceiveMessage, then DeleteMessageBatch (signed for its handles) of what came. */
async function receiveDeleteClient(pool: Pool, spec: ScenarioSpec, signer: Signer, tally: Tally, running: () => boolean): Promise<void> {
  const receive = spec.receive!;
  const endpoint = new URL(spec.origin);
  while (running()) {
    const start = performance.now();
    const answer = await send(pool, receive.request, tally);
    if (answer === undefined) continue;
    const received = performance.now();
    const messages = (JSON.parse(answer) as { Messages?: Array<{ ReceiptHandle: string }> }).Messages ?? [];
    if (messages.length > 0) {
      const body = JSON.stringify({ QueueUrl: receive.queueUrl, Entries: messages.map(({ ReceiptHandle }, id) => ({ Id: `m${id}`, ReceiptHandle })) });
      const headers = await signer.sign(endpoint, 'DeleteMessageBatch', body);
      if ((await send(pool, { path: endpoint.pathname, headers, body }, tally)) === undefined) continue;
    } else {
      tally.emptyReceives++;
    }
    tally.latencies.push((receive.measure === 'receive' ? received : performance.now()) - start);
    tally.requests++;
    tally.messages += messages.length;
  }
}

// Set by a stop message from the main thread; cleared when a scenario starts.
let stopRequested = false;

async function runScenario(spec: ScenarioSpec): Promise<WorkerResult> {
  stopRequested = false;
  const pool = new Pool(spec.origin, { connections: spec.clients, pipelining: 1, keepAliveTimeout: 60_000 });
  const tally: Tally = { latencies: [], requests: 0, messages: 0, errors: 0, emptyReceives: 0, ...(spec.timeline ? { timeline: [] } : {}) };
  const credentials: Credentials | undefined = spec.credentials;
  const signer = credentials ? new Signer(spec.region!, credentials) : undefined;
  const sdk = spec.sdk ? new sqs.SQSClient({ endpoint: spec.origin, region: spec.region!, credentials: credentials! }) : undefined;
  const started = performance.now();
  const deadline = spec.durationMs === undefined ? Infinity : started + spec.durationMs;
  // Stops when told, on time, on reaching the message count, or when everything fails (a server gone).
  const running = () =>
    !stopRequested &&
    performance.now() < deadline &&
    (spec.untilMessages === undefined || tally.messages < spec.untilMessages) &&
    (tally.errors < 1000 || tally.errors < tally.requests);
  const eluBefore = performance.eventLoopUtilization();
  const cursor = { next: 0 };
  await Promise.all(
    Array.from({ length: spec.clients }, (_, client) =>
      spec.receive
        ? receiveDeleteClient(pool, spec, signer!, tally, running)
        : fixedClient(pool, spec, client, spec.signEach ? signer : undefined, sdk, tally, running, cursor),
    ),
  );
  const elapsedMs = performance.now() - started;
  const elu = performance.eventLoopUtilization(eluBefore).utilization;
  await pool.close();
  sdk?.destroy();
  const { latencies, timeline, ...counts } = tally;
  return { ...counts, latencies: Float64Array.from(latencies), elapsedMs, elu, ...(timeline ? { timeline: Float64Array.from(timeline) } : {}) };
}

parentPort!.on('message', (message: ScenarioSpec | { stop: true }) => {
  if ('stop' in message) {
    stopRequested = true;
    return;
  }
  void runScenario(message).then((result) =>
    parentPort!.postMessage(result, [result.latencies.buffer as ArrayBuffer, ...(result.timeline ? [result.timeline.buffer as ArrayBuffer] : [])]),
  );
});
