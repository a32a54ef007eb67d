import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import { Pool } from 'undici';
import { type Credentials, Signer } from './sign.js';
import type { PreparedRequest, ScenarioSpec, WorkerResult } from './load.js';

interface Tally {
  latencies: number[];
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

/** One client sending a rotating set of requests, each answered before the next is sent. */
async function fixedClient(pool: Pool, spec: ScenarioSpec, client: number, signer: Signer | undefined, tally: Tally, running: () => boolean): Promise<void> {
  const requests = spec.requests!;
  const endpoint = new URL(spec.origin);
  for (let index = client; running(); index++) {
    let request = requests[index % requests.length]!;
    const start = performance.now();
    if (signer) request = { ...request, headers: await signer.sign(endpoint, spec.action!, request.body) };
    if ((await send(pool, request, tally)) === undefined) continue;
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

async function runScenario(spec: ScenarioSpec): Promise<WorkerResult> {
  const pool = new Pool(spec.origin, { connections: spec.clients, pipelining: 1, keepAliveTimeout: 60_000 });
  const tally: Tally = { latencies: [], requests: 0, messages: 0, errors: 0, emptyReceives: 0 };
  const credentials: Credentials | undefined = spec.credentials;
  const signer = credentials ? new Signer(spec.region!, credentials) : undefined;
  const started = performance.now();
  const deadline = spec.durationMs === undefined ? Infinity : started + spec.durationMs;
  // Stops on time, on reaching the message count, or when everything fails (a server gone).
  const running = () =>
    performance.now() < deadline &&
    (spec.untilMessages === undefined || tally.messages < spec.untilMessages) &&
    (tally.errors < 1000 || tally.errors < tally.requests);
  const eluBefore = performance.eventLoopUtilization();
  await Promise.all(
    Array.from({ length: spec.clients }, (_, client) =>
      spec.receive
        ? receiveDeleteClient(pool, spec, signer!, tally, running)
        : fixedClient(pool, spec, client, spec.signEach ? signer : undefined, tally, running),
    ),
  );
  const elapsedMs = performance.now() - started;
  const elu = performance.eventLoopUtilization(eluBefore).utilization;
  await pool.close();
  const { latencies, ...counts } = tally;
  return { ...counts, latencies: Float64Array.from(latencies), elapsedMs, elu };
}

parentPort!.on('message', (spec: ScenarioSpec) => {
  void runScenario(spec).then((result) => parentPort!.postMessage(result, [result.latencies.buffer as ArrayBuffer]));
});
