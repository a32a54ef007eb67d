import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as pause } from 'node:timers/promises';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  type Message,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageCommand,
  type SendMessageCommandInput,
} from '@aws-sdk/client-sqs';
import pg from 'pg';
import { afterAll, beforeAll, expect, it, onTestFailed } from 'vitest';
import { type LoadBalancer, startHaproxy } from '../../testkit/haproxy.js';
import { type Cluster, createDatabase, startCluster } from '../../testkit/postgres-cluster.js';
import { type ShimProcess, spawnShim } from '../../testkit/shim-process.js';
import { parseExposition, sampleValue } from '../helpers/prometheus.js';
import { TEST_CREDENTIALS } from '../helpers/shim.js';
import { counts } from '../helpers/sqs-queues.js';
import { eventually } from '../helpers/wait.js';

// A site as it runs: two shim nodes, each a process of its own, on one PostgreSQL database behind
// HAProxy, with producers and consumers (SDK clients) talking to HAProxy only. One node is killed
// (SIGKILL) under load, then the database is restarted under load; what the clients were told must
// hold: nothing acknowledged lost, no FIFO message in two hands at once, each group in order.

const HOLD_S = 10;
const FIFO_PRODUCERS = 3;
const GROUPS_PER_PRODUCER = 2;
const STANDARD_PRODUCERS = 2;
const FIFO_CONSUMERS = 3;
const STANDARD_CONSUMERS = 2;
// Acknowledged sends before the fault and again after it: enough that the fault lands mid-load.
const SENDS_AROUND_FAULT = 300;
// A client that got an error (the SDK's own retries spent) tries again after this pause, so that a
// site with no node in service is not asked in a tight loop.
const RETRY_PAUSE_MS = 50;

let cluster: Cluster;
let databaseUrl: string;
let dir: string;
const nodes: ShimProcess[] = [];
let balancer: LoadBalancer;
const clients: SQSClient[] = [];

beforeAll(async () => {
  cluster = await startCluster();
  databaseUrl = await createDatabase(cluster.url, 'site');
  dir = mkdtempSync(join(tmpdir(), 'holdfast-site-'));
  // One at a time: the first creates the schema, the second finds it.
  nodes.push(await startNode('a'));
  nodes.push(await startNode('b'));
  balancer = await startHaproxy(nodes.map((node, index) => ({ name: `node${index}`, address: new URL(node.url).host })));
}, 180_000);

afterAll(async () => {
  for (const client of clients) client.destroy();
  await balancer?.stop();
  await Promise.all(nodes.map((node) => node.stop()));
  cluster?.discard();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function startNode(name: string, port = 0): Promise<ShimProcess> {
  return spawnShim({
    dbFile: databaseUrl,
    credentials: [`${TEST_CREDENTIALS.accessKeyId}:${TEST_CREDENTIALS.secretAccessKey}`],
    args: ['--port', String(port)],
    logFile: join(dir, `node-${name}.log`),
  });
}

/** An SDK client of the site: through HAProxy, with the SDK's default retries (3 attempts). */
function siteClient(): SQSClient {
  const client = new SQSClient({ endpoint: balancer.url, region: 'us-east-1', credentials: TEST_CREDENTIALS });
  clients.push(client);
  return client;
}

/** SendMessage requests a node carried out, from its metrics. */
async function sendsServed(node: ShimProcess): Promise<number> {
  const families = parseExposition(await (await fetch(`${node.adminUrl}/metrics`)).text());
  return sampleValue(families, 'holdfast_edge_requests_total', { action: 'SendMessage', path: 'local' }) ?? 0;
}

/** One receipt of a message by a consumer: when it asked and when it was answered (ms, this process's clock). */
interface Delivery {
  readonly body: string;
  readonly messageId: string;
  readonly consumer: string;
  readonly requestedAt: number;
  readonly answeredAt: number;
  /** How long the consumer holds the message as it believes: the hold it means to ask for. */
  readonly holdMs: number;
  /** Its place in the receive's answer. */
  readonly position: number;
}

/** What the clients of one queue did and were told. */
class Ledger {
  /** HTTP requests of SendMessage, the SDK's retries included. */
  sendRequests = 0;
  /** Requests of every action the SDK sent again (a connection cut by the kill, a 503): what the faults reached. */
  retriedBySdk = 0;
  /** Bodies whose send was acknowledged, and the MessageId it was given. */
  readonly acknowledged = new Map<string, string>();
  readonly deliveries: Delivery[] = [];
  /** Errors the clients saw once the SDK's retries were spent, by name and HTTP status. */
  readonly errors = new Map<string, number>();

  constructor(
    readonly queueUrl: string,
    readonly fifo: boolean,
  ) {}

  /** Counts the SDK's attempts at a request, answered or failed. */
  attempted(outcome: unknown): number {
    const attempts = (outcome as { $metadata?: { attempts?: number } }).$metadata?.attempts ?? 1;
    this.retriedBySdk += attempts - 1;
    return attempts;
  }

  /** Counts an error; throws one that refuses the request itself (a 4xx), which trying again cannot mend. */
  failed(error: unknown): void {
    this.noted(error);
    const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status !== undefined && status >= 400 && status < 500) throw error;
  }

  /** Counts an error by its name and HTTP status (HAProxy's own 503 page, with no node in service, reads as a SyntaxError). */
  noted(error: unknown): void {
    const key = `${(error as Error).name} ${(error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 'no answer'}`;
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }
}

async function queue(sqs: SQSClient, name: string, fifo: boolean): Promise<Ledger> {
  const attributes: Record<string, string> = { VisibilityTimeout: String(HOLD_S), ...(fifo ? { FifoQueue: 'true' } : {}) };
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: fifo ? `${name}.fifo` : name, Attributes: attributes }));
  return new Ledger(QueueUrl!, fifo);
}

/** Sends until acknowledged: a send whose answer never came is sent again, with the same deduplication id on FIFO. */
async function sendUntilAcknowledged(sqs: SQSClient, ledger: Ledger, input: Omit<SendMessageCommandInput, 'QueueUrl'>): Promise<void> {
  for (;;) {
    try {
      const answer = await sqs.send(new SendMessageCommand({ QueueUrl: ledger.queueUrl, ...input }));
      ledger.sendRequests += ledger.attempted(answer);
      ledger.acknowledged.set(input.MessageBody!, answer.MessageId!);
      return;
    } catch (error) {
      ledger.sendRequests += ledger.attempted(error);
      ledger.failed(error);
      await pause(RETRY_PAUSE_MS);
    }
  }
}

/**
 * A FIFO producer: its groups in turn, each group's bodies `group:sequence` from 0 up, one send at
 * a time, so that each group's send order is its sequence. `sequenceOf` reorders the sequence
 * numbers (the order check's own test).
 */
async function produceFifo(ledger: Ledger, groups: readonly string[], running: () => boolean, sequenceOf = (index: number) => index): Promise<void> {
  const sqs = siteClient();
  for (let index = 0; running(); index++) {
    const group = groups[index % groups.length]!;
    const body = `${group}:${sequenceOf(Math.floor(index / groups.length))}`;
    await sendUntilAcknowledged(sqs, ledger, { MessageBody: body, MessageGroupId: group, MessageDeduplicationId: body });
  }
}

async function produceStandard(ledger: Ledger, name: string, running: () => boolean): Promise<void> {
  const sqs = siteClient();
  for (let index = 0; running(); index++) await sendUntilAcknowledged(sqs, ledger, { MessageBody: `${name}:${index}` });
}

/**
 * A consumer: receives (up to 10, a 1 s long poll), notes each receipt, deletes what it took. A
 * delete that fails is left: the message comes back once its hold ran out. `visibilityTimeoutS`
 * is what the receive asks for, when it differs from the hold the consumer believes it has (the
 * double-delivery check's own test).
 */
async function consume(ledger: Ledger, name: string, running: () => boolean, visibilityTimeoutS = HOLD_S): Promise<void> {
  const sqs = siteClient();
  while (running()) {
    const requestedAt = performance.now();
    let messages: Message[];
    try {
      const answer = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: ledger.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: visibilityTimeoutS }),
      );
      ledger.attempted(answer);
      messages = answer.Messages ?? [];
    } catch (error) {
      ledger.attempted(error);
      ledger.failed(error);
      await pause(RETRY_PAUSE_MS);
      continue;
    }
    const answeredAt = performance.now();
    for (const [position, message] of messages.entries()) {
      ledger.deliveries.push({ body: message.Body!, messageId: message.MessageId!, consumer: name, requestedAt, answeredAt, holdMs: HOLD_S * 1000, position });
    }
    for (const message of messages) {
      try {
        ledger.attempted(await sqs.send(new DeleteMessageCommand({ QueueUrl: ledger.queueUrl, ReceiptHandle: message.ReceiptHandle! })));
      } catch (error) {
        ledger.attempted(error);
        // A handle whose hold ran out may be refused too: the message is someone else's now.
        ledger.noted(error);
      }
    }
  }
}

interface Verdict {
  readonly sendRequests: number;
  readonly retriedBySdk: number;
  readonly acknowledged: number;
  /** Acknowledged bodies never delivered. */
  readonly lost: string[];
  /** Messages (by MessageId) delivered more than once: redeliveries once a hold ran out. */
  readonly deliveredTwice: number;
  /** Two receipts of one message whose holds certainly overlapped. */
  readonly overlaps: string[];
  /** FIFO deliveries out of their group's sequence. */
  readonly orderBreaks: string[];
  readonly errors: Record<string, number>;
}

function verdict(ledger: Ledger): Verdict {
  const delivered = new Set(ledger.deliveries.map((delivery) => delivery.body));
  const byMessage = new Map<string, Delivery[]>();
  for (const delivery of ledger.deliveries) byMessage.set(delivery.messageId, [...(byMessage.get(delivery.messageId) ?? []), delivery]);
  const overlaps: string[] = [];
  for (const receipts of byMessage.values()) {
    for (const [index, first] of receipts.entries()) {
      for (const second of receipts.slice(index + 1)) {
        // The server handed each out somewhere between its request and its answer: whichever came
        // first, the other came inside its hold whatever the instants were.
        if (second.answeredAt - first.requestedAt < first.holdMs && first.answeredAt - second.requestedAt < second.holdMs) {
          overlaps.push(`${first.body} held by ${first.consumer} and ${second.consumer} at once`);
        }
      }
    }
  }
  return {
    sendRequests: ledger.sendRequests,
    retriedBySdk: ledger.retriedBySdk,
    acknowledged: ledger.acknowledged.size,
    lost: [...ledger.acknowledged.keys()].filter((body) => !delivered.has(body)),
    deliveredTwice: [...byMessage.values()].filter((receipts) => receipts.length > 1).length,
    overlaps,
    orderBreaks: ledger.fifo ? orderBreaks(ledger.deliveries) : [],
    errors: Object.fromEntries(ledger.errors),
  };
}

/**
 * Each group's first deliveries must come 0, 1, 2, … A redelivery (a message whose delete failed,
 * or whose receive was answered to no one) may come any time. In the order the clients were
 * answered: a group goes to another consumer only after the one before deleted what it took (so
 * after that one's answer), or after its hold ran out, when what it took comes first again.
 */
function orderBreaks(deliveries: readonly Delivery[]): string[] {
  const breaks: string[] = [];
  const inOrder = [...deliveries].sort((x, y) => x.answeredAt - y.answeredAt || x.position - y.position);
  const next = new Map<string, number>();
  for (const delivery of inOrder) {
    const [group, sequence] = delivery.body.split(':') as [string, string];
    const expected = next.get(group) ?? 0;
    if (Number(sequence) === expected) next.set(group, expected + 1);
    else if (Number(sequence) > expected) breaks.push(`${group}: ${sequence} delivered before ${expected}`);
  }
  return breaks;
}

/** Waits until the queue holds nothing, visible or in flight: every stored message delivered and deleted. */
async function drained(sqs: SQSClient, ledger: Ledger): Promise<void> {
  await eventually(
    () => counts(sqs, ledger.queueUrl).catch(() => undefined),
    (count) => count !== undefined && count.visible + count.notVisible + count.delayed === 0,
    200,
  );
}

function report(what: string, ledger: Ledger, result: Verdict): void {
  const { lost, overlaps, orderBreaks: breaks, ...tallies } = result;
  console.info(
    `${what}, ${ledger.fifo ? 'FIFO' : 'standard'}: ${JSON.stringify({ ...tallies, lost: lost.length, overlaps: overlaps.length, orderBreaks: breaks.length, deliveries: ledger.deliveries.length })}` +
      (lost.length > 0 ? `; lost: ${lost.slice(0, 10).join(', ')}` : ''),
  );
}

/**
 * The tallies of a test that fails before its checks, as one does when a stored message is never
 * handed out and the wait for the queue to drain runs into the test's timeout.
 */
function reportOnFailure(what: string, ledgers: readonly Ledger[]): void {
  onTestFailed(() => {
    for (const ledger of ledgers) report(`${what} (failed)`, ledger, verdict(ledger));
  });
}

/** Producers and consumers of a FIFO and a standard queue, all through HAProxy, until `stop()`; then drained. */
function load(fifo: Ledger, standard: Ledger) {
  let producing = true;
  let consuming = true;
  const groups = (producer: number) => Array.from({ length: GROUPS_PER_PRODUCER }, (_, group) => `p${producer}g${group}`);
  const producers = Promise.all([
    ...Array.from({ length: FIFO_PRODUCERS }, (_, producer) => produceFifo(fifo, groups(producer), () => producing)),
    ...Array.from({ length: STANDARD_PRODUCERS }, (_, producer) => produceStandard(standard, `s${producer}`, () => producing)),
  ]);
  const consumers = Promise.all([
    ...Array.from({ length: FIFO_CONSUMERS }, (_, consumer) => consume(fifo, `fifo-${consumer}`, () => consuming)),
    ...Array.from({ length: STANDARD_CONSUMERS }, (_, consumer) => consume(standard, `standard-${consumer}`, () => consuming)),
  ]);
  return {
    acknowledged: () => fifo.acknowledged.size + standard.acknowledged.size,
    delivered: () => fifo.deliveries.length + standard.deliveries.length,
    /** Stops the producers, lets the consumers take everything, then stops them. */
    async stop(): Promise<void> {
      producing = false;
      await producers;
      const sqs = siteClient();
      await drained(sqs, fifo);
      await drained(sqs, standard);
      consuming = false;
      await consumers;
    },
  };
}

it('loses nothing acknowledged, hands no FIFO message to two consumers at once and keeps each group in order when a node is killed under load', async () => {
  const sqs = siteClient();
  const fifo = await queue(sqs, 'kill', true);
  const standard = await queue(sqs, 'kill-standard', false);
  reportOnFailure('node killed', [fifo, standard]);
  const running = load(fifo, standard);

  // Both nodes serve the load before one is killed.
  await eventually(
    async () => ({ acknowledged: running.acknowledged(), served: await Promise.all(nodes.map(sendsServed)) }),
    ({ acknowledged, served }) => acknowledged >= SENDS_AROUND_FAULT && served.every((count) => count > 0),
    200,
  );
  const killed = nodes[0]!;
  await killed.stop('SIGKILL');
  const [acknowledgedAtKill, deliveredAtKill] = [running.acknowledged(), running.delivered()];
  // The other node carries on: more sends acknowledged, more messages delivered.
  await eventually(
    () => [running.acknowledged(), running.delivered()],
    ([acknowledged, delivered]) => acknowledged! >= acknowledgedAtKill + SENDS_AROUND_FAULT && delivered! > deliveredAtKill + SENDS_AROUND_FAULT,
    200,
  );
  await running.stop();

  for (const ledger of [fifo, standard]) {
    const result = verdict(ledger);
    report('node killed', ledger, result);
    expect(result.lost).toEqual([]);
    expect(result.overlaps).toEqual([]);
    expect(result.orderBreaks).toEqual([]);
  }

  // Started again on its port, the killed node is taken back into service by HAProxy and serves.
  const restarted = await startNode('a-restarted', Number(new URL(killed.url).port));
  nodes[0] = restarted;
  const after = await queue(sqs, 'after-restart', false);
  await eventually(
    async () => {
      await sendUntilAcknowledged(sqs, after, { MessageBody: 'after the restart' });
      return sendsServed(restarted);
    },
    (served) => served > 0,
    200,
  );
}, 300_000);

it('loses nothing acknowledged when PostgreSQL is restarted under load, and the nodes recover by themselves', async () => {
  const sqs = siteClient();
  for (const node of nodes) await eventually(async () => (await fetch(`${node.url}/health`)).status, (status) => status === 200, 200);
  const fifo = await queue(sqs, 'restart', true);
  const standard = await queue(sqs, 'restart-standard', false);
  reportOnFailure('database restarted', [fifo, standard]);
  const running = load(fifo, standard);

  await eventually(() => running.acknowledged(), (acknowledged) => acknowledged >= SENDS_AROUND_FAULT, 200);
  const startedBefore = await serverStartTime();
  await cluster.restart();
  expect(await serverStartTime()).not.toBe(startedBefore);
  const acknowledgedAtRestart = running.acknowledged();
  // Nobody restarts the nodes: each finds the database again by itself.
  for (const node of nodes) await eventually(async () => (await fetch(`${node.url}/health`)).status, (status) => status === 200, 200);
  await eventually(() => running.acknowledged(), (acknowledged) => acknowledged >= acknowledgedAtRestart + SENDS_AROUND_FAULT, 200);
  await running.stop();

  for (const ledger of [fifo, standard]) {
    const result = verdict(ledger);
    report('database restarted', ledger, result);
    expect(result.lost).toEqual([]);
    expect(result.overlaps).toEqual([]);
    expect(result.orderBreaks).toEqual([]);
    // What the clients saw once the SDK's retries were spent: 503s, the nodes' ServiceUnavailable or HAProxy's own page while no node was in service.
    expect(Object.keys(result.errors).filter((error) => !error.endsWith(' 503'))).toEqual([]);
  }
}, 300_000);

it('has checks that see what they look for: a message held twice, a group out of order, an acknowledged message lost', async () => {
  const sqs = siteClient();
  // Consumers that ask for no hold at all while believing they have the queue's: a site that handed
  // out messages still held would look just so.
  const unheld = await queue(sqs, 'unheld', true);
  await Promise.all(Array.from({ length: 10 }, (_, index) => sendUntilAcknowledged(sqs, unheld, { MessageBody: `g:${index}`, MessageGroupId: 'g', MessageDeduplicationId: `${index}` })));
  let consuming = true;
  const consumers = Promise.all([consume(unheld, 'one', () => consuming, 0), consume(unheld, 'two', () => consuming, 0)]);
  // Each receive makes the other consumer's handles stale, so their deletes may never win: they stop once seen.
  await eventually(() => verdict(unheld).overlaps, (overlaps) => overlaps.length > 0, 200);
  consuming = false;
  await consumers;

  // A producer that sends each group's sequence numbers in pairs swapped: 1, 0, 3, 2, …
  const swapped = await queue(sqs, 'swapped', true);
  let producing = true;
  const producer = produceFifo(swapped, ['g'], () => producing, (index) => index ^ 1);
  await eventually(() => swapped.acknowledged.size, (size) => size >= 10);
  producing = false;
  await producer;
  consuming = true;
  const consumer = consume(swapped, 'one', () => consuming);
  await drained(sqs, swapped);
  consuming = false;
  await consumer;
  expect(verdict(swapped).orderBreaks).not.toEqual([]);

  // Acknowledged messages purged before anyone received them.
  const purged = await queue(sqs, 'purged', false);
  for (let index = 0; index < 5; index++) await sendUntilAcknowledged(sqs, purged, { MessageBody: `purged:${index}` });
  await sqs.send(new PurgeQueueCommand({ QueueUrl: purged.queueUrl }));
  consuming = true;
  const purgedConsumer = consume(purged, 'one', () => consuming);
  await drained(sqs, purged);
  consuming = false;
  await purgedConsumer;
  expect(verdict(purged).lost).toHaveLength(5);
}, 300_000);

async function serverStartTime(): Promise<string> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return (await client.query<{ started: Date }>('SELECT pg_postmaster_start_time() AS started')).rows[0]!.started.toISOString();
  } finally {
    await client.end();
  }
}
