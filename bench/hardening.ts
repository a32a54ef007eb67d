/**
 * `npm run bench:hardening`: the costs that used to grow with the data or with the number of
 * waiting clients (issue "Edge shim, hardening"), each measured on a fresh shim process:
 *
 * - write amplification: bytes the shim writes to send, then to receive, 100 messages of 256 KiB;
 * - herd: 100 sends to a queue on which 2,000 long polls wait;
 * - counts: GetQueueAttributes on a queue of 100,000 delayed messages, and SendMessage latency
 *   while one client polls it;
 * - purge: SendMessage latency while the sweeper reclaims a purged queue of 500,000 messages;
 * - FIFO: 32 consumers on one message group without waiting (drain rate, empty receives), the
 *   shim's CPU while 32 long polls wait on one group, and FIFO receive+delete against standard.
 *
 * The shim runs without credentials (requests are not signed): what is measured is the storage
 * and the waiting, not SigV4. Options: --quick (smaller sizes), --out FILE.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'undici';
import { type ShimProcess, spawnShim } from '../testkit/shim-process.js';
import { cpuSeconds } from './proc-stats.js';

const { values: options } = parseArgs({ options: { quick: { type: 'boolean', default: false }, out: { type: 'string' }, only: { type: 'string' } } });
const QUICK = options.quick;
const OUT = options.out ?? fileURLToPath(new URL(`./results/hardening${QUICK ? '-quick' : ''}.md`, import.meta.url));

const agent = new Agent({ connections: 2200, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 60_000, bodyTimeout: 60_000 });

class Client {
  constructor(private readonly url: string) {}

  async call(action: string, input: Record<string, unknown>): Promise<Record<string, unknown>> {
    const response = await request(this.url, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AmazonSQS.${action}` },
      body: JSON.stringify(input),
    });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`${action}: HTTP ${response.statusCode} ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  }

  async createQueue(name: string, attributes: Record<string, string> = {}): Promise<string> {
    return (await this.call('CreateQueue', { QueueName: name, Attributes: attributes })).QueueUrl as string;
  }
}

/**
 * Bytes the process has sent to the storage layer so far (its own threads included): what it wrote
 * to files, not its answers on sockets, which wchar would count as well.
 */
function writtenBytes(pid: number): number {
  return Number(/^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))![1]);
}

/** The bytes written once the shim's WAL checkpoints have caught up: no write for half a second. */
async function settledWrittenBytes(pid: number): Promise<number> {
  for (let last = writtenBytes(pid); ; ) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = writtenBytes(pid);
    if (now === last) return now;
    last = now;
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}

/** SendMessage latencies of one client sending back to back while `during` runs. */
async function sendLatencies(client: Client, queueUrl: string, during: Promise<unknown>): Promise<number[]> {
  let done = false;
  void during.finally(() => (done = true));
  const latencies: number[] = [];
  while (!done) latencies.push((await timed(() => client.call('SendMessage', { QueueUrl: queueUrl, MessageBody: 'probe' }))).ms);
  return latencies.sort((a, b) => a - b);
}

async function withShim<T>(work: (client: Client, shim: ShimProcess) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-hardening-'));
  const shim = await spawnShim({ dbFile: join(dir, 'shim.db') });
  try {
    return await work(new Client(shim.url), shim);
  } finally {
    await shim.stop('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function fillBatches(client: Client, queueUrl: string, messages: number, entry: (index: number) => Record<string, unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < messages) {
      const start = next;
      next += 10;
      const entries = Array.from({ length: Math.min(10, messages - start) }, (_, i) => ({ Id: `e${i}`, ...entry(start + i) }));
      await client.call('SendMessageBatch', { QueueUrl: queueUrl, Entries: entries });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

const lines: string[] = [];
const report = (line: string) => {
  lines.push(line);
  console.log(line);
};

async function writeAmplification(): Promise<void> {
  const count = 100;
  const body = 'x'.repeat(256 * 1024);
  await withShim(async (client, shim) => {
    const queueUrl = await client.createQueue('large');
    // Each phase is counted with the checkpoint that copies its WAL into the database.
    const beforeSend = await settledWrittenBytes(shim.pid);
    for (let i = 0; i < count; i++) await client.call('SendMessage', { QueueUrl: queueUrl, MessageBody: body });
    const beforeReceive = await settledWrittenBytes(shim.pid);
    const handles: string[] = [];
    while (handles.length < count) {
      const { Messages } = (await client.call('ReceiveMessage', { QueueUrl: queueUrl, MaxNumberOfMessages: 10 })) as { Messages?: Array<{ ReceiptHandle: string }> };
      handles.push(...(Messages ?? []).map((message) => message.ReceiptHandle));
    }
    const afterReceive = await settledWrittenBytes(shim.pid);
    const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
    report(`| write amplification | send ${count} × 256 KiB: ${mib(beforeReceive - beforeSend)} MiB written; receive them: ${mib(afterReceive - beforeReceive)} MiB written (${((afterReceive - beforeReceive) / count / 1024).toFixed(0)} KiB per message) |`);
  });
}

async function herd(): Promise<void> {
  const waiting = QUICK ? 500 : 2000;
  await withShim(async (client) => {
    const queueUrl = await client.createQueue('herd');
    const polls = Array.from({ length: waiting }, () => client.call('ReceiveMessage', { QueueUrl: queueUrl, WaitTimeSeconds: 20 }));
    // Wait until every poll is parked: the shim's own count would need an API; a receive that
    // waits 1 s after the others started is a cheap proxy for "they have all arrived".
    await client.call('ReceiveMessage', { QueueUrl: queueUrl, WaitTimeSeconds: 1 });
    const { ms } = await timed(async () => {
      for (let i = 0; i < 100; i++) await client.call('SendMessage', { QueueUrl: queueUrl, MessageBody: `m${i}` });
    });
    report(`| herd | 100 sends, one after another, with ${waiting} long polls waiting on the queue: ${(ms / 1000).toFixed(2)} s |`);
    await Promise.all(polls);
  });
}

async function counts(): Promise<void> {
  const delayed = QUICK ? 20_000 : 100_000;
  await withShim(async (client) => {
    const queueUrl = await client.createQueue('delayed');
    await fillBatches(client, queueUrl, delayed, (i) => ({ MessageBody: `d${i}`, DelaySeconds: 900 }));
    const attributes = () => client.call('GetQueueAttributes', { QueueUrl: queueUrl, AttributeNames: ['All'] });
    const samples: number[] = [];
    for (let i = 0; i < 50; i++) samples.push((await timed(attributes)).ms);
    samples.sort((a, b) => a - b);
    const sendQueue = await client.createQueue('probe');
    const quiet = await sendLatencies(client, sendQueue, timed(() => new Promise((resolve) => setTimeout(resolve, 2000))));
    let polling = true;
    const poller = (async () => {
      while (polling) await attributes();
    })();
    const busy = await sendLatencies(client, sendQueue, new Promise((resolve) => setTimeout(resolve, 2000)));
    polling = false;
    await poller;
    report(
      `| counts | GetQueueAttributes(All) with ${delayed.toLocaleString('en')} delayed messages: p50 ${percentile(samples, 50).toFixed(2)} ms, p99 ${percentile(samples, 99).toFixed(2)} ms; ` +
        `SendMessage p50 ${percentile(quiet, 50).toFixed(2)} ms alone, ${percentile(busy, 50).toFixed(2)} ms while a client polls the attributes |`,
    );
  });
}

async function purge(): Promise<void> {
  const stored = QUICK ? 100_000 : 500_000;
  await withShim(async (client) => {
    const queueUrl = await client.createQueue('purged');
    await fillBatches(client, queueUrl, stored, (i) => ({ MessageBody: `p${i} ${'x'.repeat(60)}` }));
    const sendQueue = await client.createQueue('probe');
    const before = await sendLatencies(client, sendQueue, new Promise((resolve) => setTimeout(resolve, 2000)));
    await client.call('PurgeQueue', { QueueUrl: queueUrl });
    const started = performance.now();
    // The sweeper is done when the purged messages are gone from the database; the counts do not
    // show purged messages, so watch the database size settle instead: here, a fixed window.
    const during = await sendLatencies(client, sendQueue, new Promise((resolve) => setTimeout(resolve, QUICK ? 5000 : 15_000)));
    report(
      `| purge | SendMessage while the sweeper reclaims ${stored.toLocaleString('en')} purged messages (first ${((performance.now() - started) / 1000).toFixed(0)} s): ` +
        `p50 ${percentile(during, 50).toFixed(2)} ms, p99 ${percentile(during, 99).toFixed(2)} ms, max ${percentile(during, 100).toFixed(1)} ms (before the purge: p99 ${percentile(before, 99).toFixed(2)} ms) |`,
    );
  });
}

/** Receives and deletes `messages` with `consumers` clients; the time until the last was received. */
async function drain(client: Client, queueUrl: string, messages: number, consumers: number, waitSeconds: number): Promise<{ ms: number; empty: number }> {
  let received = 0;
  let empty = 0;
  let finishedAt = 0;
  const started = performance.now();
  const consumer = async () => {
    while (received < messages) {
      const { Messages } = (await client.call('ReceiveMessage', { QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds })) as {
        Messages?: Array<{ ReceiptHandle: string }>;
      };
      if (!Messages) {
        empty += 1;
        continue;
      }
      received += Messages.length;
      if (received >= messages) finishedAt = performance.now();
      await client.call('DeleteMessageBatch', { QueueUrl: queueUrl, Entries: Messages.map((message, i) => ({ Id: `d${i}`, ReceiptHandle: message.ReceiptHandle })) });
    }
  };
  await Promise.all(Array.from({ length: consumers }, consumer));
  return { ms: finishedAt - started, empty };
}

async function fifo(): Promise<void> {
  const messages = QUICK ? 10_000 : 100_000;
  await withShim(async (client, shim) => {
    const fifoUrl = await client.createQueue('one-group.fifo', { FifoQueue: 'true', ContentBasedDeduplication: 'true' });
    await fillBatches(client, fifoUrl, messages, (i) => ({ MessageBody: `f${i}`, MessageGroupId: 'only' }));
    const many = await drain(client, fifoUrl, messages, 32, 0);
    report(`| FIFO, 32 consumers, one group, no wait | ${messages.toLocaleString('en')} messages drained at ${((messages / many.ms) * 1000).toFixed(0)}/s with ${many.empty.toLocaleString('en')} empty receives |`);
    await fillBatches(client, fifoUrl, messages, (i) => ({ MessageBody: `g${i}`, MessageGroupId: 'only' }));
    const one = await drain(client, fifoUrl, messages, 1, 0);
    report(`| FIFO, 1 consumer, one group | ${messages.toLocaleString('en')} messages drained at ${((messages / one.ms) * 1000).toFixed(0)}/s |`);

    // 32 consumers long-polling one group: one holds the group, the others wait for it.
    await fillBatches(client, fifoUrl, messages, (i) => ({ MessageBody: `l${i}`, MessageGroupId: 'only' }));
    const cpuBefore = cpuSeconds(shim.pid);
    const polled = await drain(client, fifoUrl, messages, 32, 5);
    const cpuPerThousand = ((cpuSeconds(shim.pid) - cpuBefore) / messages) * 1000;
    report(
      `| FIFO, 32 consumers long-polling one group | ${messages.toLocaleString('en')} messages drained at ${((messages / polled.ms) * 1000).toFixed(0)}/s, ` +
        `shim CPU ${((cpuPerThousand * 1000) / 1000).toFixed(2)} s per 1,000 messages |`,
    );

    const standardUrl = await client.createQueue('standard');
    await fillBatches(client, standardUrl, messages, (i) => ({ MessageBody: `s${i}` }));
    const standard = await drain(client, standardUrl, messages, 8, 0);
    const groupsUrl = await client.createQueue('many-groups.fifo', { FifoQueue: 'true', ContentBasedDeduplication: 'true' });
    await fillBatches(client, groupsUrl, messages, (i) => ({ MessageBody: `h${i}`, MessageGroupId: `g${i % 100}` }));
    const fifoGroups = await drain(client, groupsUrl, messages, 8, 0);
    const rate = (result: { ms: number }) => (messages / result.ms) * 1000;
    report(
      `| FIFO vs standard, receive + delete, 8 consumers | FIFO (100 groups) ${rate(fifoGroups).toFixed(0)}/s, standard ${rate(standard).toFixed(0)}/s: ${((rate(fifoGroups) / rate(standard)) * 100).toFixed(0)}% |`,
    );
  });
}

report(`# Edge shim hardening measurements${QUICK ? ' (quick)' : ''}\n\n${new Date().toISOString()}\n\n| measurement | result |\n| --- | --- |`);
for (const measurement of [writeAmplification, herd, counts, purge, fifo].filter((run) => !options.only || run.name === options.only)) {
  try {
    await measurement();
  } catch (error) {
    report(`| ${measurement.name} | failed: ${(error as Error).message.slice(0, 200)} |`);
  }
}
await agent.close();
writeFileSync(OUT, `${lines.join('\n')}\n`);
console.error(`written to ${OUT}`);
