import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { METRICS_PREFIX } from '../../edge-shim/src/observability/metrics.js';
import { histogram, parseExposition, sampleValue } from '../helpers/prometheus.js';
import { eventually } from '../helpers/wait.js';
import { type HybridTest, drainRegion, openAccessPolicy, startHybridTest } from '../helpers/hybrid.js';
import { sendQuery } from '../helpers/raw-request.js';
import { testEngine } from '../helpers/shim.js';
import { expectSqsError, rejectionOf } from '../helpers/sqs-errors.js';

// What each kind of request does in each mode of the hybrid edge: receives and deletes at the edge
// and in the region, long polls through a change of mode, ambiguous sends, queues created or
// declared while the region is away, mapped ARNs, and the store's bound. The key may do anything
// here (an open access policy): what the default policy refuses is tested in test/security/.

const open: HybridTest[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((test) => test.close()));
});

async function hybrid(options: Parameters<typeof startHybridTest>[0] = {}): Promise<HybridTest> {
  const test = await startHybridTest({ accessPolicy: openAccessPolicy(), ...options });
  open.push(test);
  return test;
}

const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;

/** The retryable error of a request that needs the region while it is away (HTTP 503, a server fault). */
async function expectUnavailable(call: Promise<unknown>): Promise<void> {
  const failure = await rejectionOf(call);
  expect(failure).toMatchObject({ name: 'ServiceUnavailable', $fault: 'server', $metadata: { httpStatusCode: 503 } });
}
const modeOf = (t: HybridTest) => async () => (await t.shim.status()).mode;

async function cut(t: HybridTest, how: Parameters<HybridTest['proxy']['setMode']>[0] = 'blackhole'): Promise<void> {
  t.proxy.setMode(how);
  await eventually(modeOf(t), (mode) => mode === 'offline');
}

async function mend(t: HybridTest): Promise<void> {
  t.proxy.setMode('pass');
  await eventually(() => t.shim.status(), (status) => status.mode === 'online' && status.backlog === 0);
}


describe('receives and deletes', () => {
  it('serves edge consumers from the edge while offline; what they delete is never replayed', async () => {
    const t = await hybrid();
    const name = unique('consumed');
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: name }));
    await cut(t);
    for (const body of ['kept', 'consumed']) await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body }));
    const received = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 1 }));
    const consumed = received.Messages!.find((message) => message.Body === 'consumed')!;
    expect(consumed.ReceiptHandle).toMatch(/^hf1\./);
    await t.sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: consumed.ReceiptHandle }));
    // The other one is in flight at the edge: replayed once its visibility runs out undeleted.
    await mend(t);
    expect((await drainRegion(t.region, name)).map((message) => message.Body)).toEqual(['kept']);
  });

  it('refuses, with a retryable error, to delete offline a message received from the region', async () => {
    const t = await hybrid();
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: unique('from-region') }));
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'in the region' }));
    const [message] = (await t.sqs.send(new ReceiveMessageCommand({ QueueUrl, VisibilityTimeout: 60 }))).Messages!;
    expect(message!.ReceiptHandle).not.toMatch(/^hf1\./);
    await cut(t);
    await expectUnavailable(t.sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: message!.ReceiptHandle })));
    t.proxy.setMode('pass');
    await eventually(modeOf(t), (mode) => mode === 'online');
    await t.sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: message!.ReceiptHandle }));
  });

  it('lets a long poll on the region go on at the edge when the edge goes offline, and get a message sent there', async () => {
    const t = await hybrid();
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: unique('long-poll') }));
    const polling = t.sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 20 }));
    await cut(t);
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'sent at the edge' }));
    expect((await polling).Messages!.map((message) => message.Body)).toEqual(['sent at the edge']);
  });
});

describe('stopping', () => {
  it('answers a long poll waiting on the region when the shim stops, instead of cutting it', async () => {
    const t = await hybrid();
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: unique('stopping') }));
    const before = t.proxy.stats().upstream.received;
    const polling = t.sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 20 }));
    // The receive is on its way to the region once the proxy has carried its request.
    await t.proxy.until((stats) => stats.upstream.received > before);
    await t.shim.close();
    expect((await polling).Messages).toBeUndefined();
  });
});

describe('sends', () => {
  it('stores a FIFO send whose answer was lost, runs neither it nor its group at the edge, and the replay does not double it', async () => {
    const t = await hybrid();
    const name = `${unique('lost-answer')}.fifo`;
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' } }));
    t.proxy.setMode('lost-answers');
    // The region takes it, the edge never hears so: it stores the message and acknowledges it.
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'maybe sent', MessageGroupId: 'g' }));
    expect((await t.shim.status()).backlog).toBe(1);
    await eventually(modeOf(t), (mode) => mode === 'offline');
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'after it', MessageGroupId: 'g' }));
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'another group', MessageGroupId: 'h' }));
    // An edge consumer gets the other group only: the region may be running the first message of
    // g already, and what follows it in g must not overtake it.
    const received = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    expect(received.Messages?.map((message) => message.Body)).toEqual(['another group']);
    await t.sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: received.Messages![0]!.ReceiptHandle! }));
    expect((await t.sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }))).Messages ?? []).toEqual([]);
    await mend(t);
    expect((await drainRegion(t.region, name)).map((message) => message.Body)).toEqual(['maybe sent', 'after it']);
    // Replayed within SQS's deduplication interval: the region's deduplication took care of it.
    expect((await t.shim.status()).replay!.possiblyDuplicated).toBe(0);
  });

  it('counts and times each request on the path that carried it out: a send the region did not take on both, timed where it ended', async () => {
    const t = await hybrid();
    const name = `${unique('paths')}.fifo`;
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' } }));
    t.proxy.setMode('lost-answers');
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'maybe sent', MessageGroupId: 'g' }));
    await eventually(modeOf(t), (mode) => mode === 'offline');
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'offline', MessageGroupId: 'g' }));
    await mend(t);
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'online', MessageGroupId: 'g' }));

    const exposition = await (await fetch(`${t.shim.adminUrl}/metrics`)).text();
    const families = parseExposition(exposition);
    const value = (metric: string, labels: Record<string, string>) => sampleValue(families, `${METRICS_PREFIX}${metric}`, labels);
    expect(value('requests_total', { action: 'SendMessage', path: 'upstream' })).toBe(2);
    expect(value('requests_total', { action: 'SendMessage', path: 'local' })).toBe(2);
    const durations = histogram(exposition, `${METRICS_PREFIX}request_duration_seconds`);
    expect(durations.get('SendMessage upstream')!.count).toBe(1);
    expect(durations.get('SendMessage local')!.count).toBe(2);
    expect(durations.get('CreateQueue upstream')!.count).toBe(1);
    expect(value('messages_sent_total', { queue: name })).toBe(3);
    expect(value('messages_replayed_total', { queue: name })).toBe(2);
    expect((await drainRegion(t.region, name)).map((message) => message.Body)).toEqual(['maybe sent', 'offline', 'online']);
  });

  it('counts and shows a FIFO send whose answer was lost as possibly duplicated when it could be replayed only after the deduplication interval', async () => {
    const t = await hybrid();
    const name = `${unique('late-replay')}.fifo`;
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' } }));
    t.proxy.setMode('lost-answers');
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'maybe sent', MessageGroupId: 'g' }));
    await eventually(modeOf(t), (mode) => mode === 'offline');
    // Six minutes pass at the edge before the region is back: past SQS's 5-minute interval, the
    // region would take the replayed message as a new one.
    t.clock.advance(6 * 60_000);
    await mend(t);
    const status = await t.shim.status();
    expect(status.replay!.possiblyDuplicated).toBe(1);
    expect(status.queues.find((queue) => queue.name === name)!.possiblyDuplicated).toBe(1);
    const metrics = await (await fetch(`${t.shim.adminUrl}/metrics`)).text();
    expect(metrics).toContain(`holdfast_edge_replay_possibly_duplicated_messages_total{queue="${name}"} 1`);
  });

  it('stores batches while offline and replays every entry with its attributes', async () => {
    const t = await hybrid();
    const name = unique('batch');
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: name }));
    await cut(t);
    const Entries = Array.from({ length: 10 }, (_, index) => ({
      Id: `e${index}`,
      MessageBody: `entry ${index}`,
      MessageAttributes: { index: { DataType: 'Number', StringValue: String(index) }, raw: { DataType: 'Binary', BinaryValue: Buffer.from([index, 255]) } },
    }));
    const { Successful } = await t.sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries }));
    expect(Successful).toHaveLength(10);
    await mend(t);
    const replayed = await drainRegion(t.region, name);
    expect(replayed.map((message) => message.Body).sort()).toEqual(Entries.map((entry) => entry.MessageBody).sort());
    for (const message of replayed) {
      const index = Number(message.MessageAttributes!.index!.StringValue);
      expect(Buffer.from(message.MessageAttributes!.raw!.BinaryValue!)).toEqual(Buffer.from([index, 255]));
    }
  });

  // A bound on the store's size is SQLite's (--max-store-bytes): a database server has its own.
  it.runIf(testEngine() === 'sqlite')('refuses sends with a retryable error once the store is at its bound', async () => {
    const t = await hybrid({ maxStoreBytes: 256 * 1024 });
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: unique('bounded') }));
    await cut(t);
    const body = 'x'.repeat(60 * 1024);
    let refused: unknown;
    for (let i = 0; i < 50 && refused === undefined; i++) {
      await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body })).catch((error: unknown) => (refused = error));
    }
    expect(refused).toMatchObject({ name: 'ServiceUnavailable', message: expect.stringMatching(/bound/) });
  });
});

describe('queues', () => {
  it('creates a queue at the edge while offline, and in the region before its replay', async () => {
    const t = await hybrid();
    await cut(t);
    const name = unique('born-offline');
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: name }));
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'first words' }));
    await mend(t);
    expect((await drainRegion(t.region, name)).map((message) => message.Body)).toEqual(['first words']);
  });

  it('takes sends during an outage that began before the edge started, for queues declared in the queues file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-queues-'));
    try {
      const name = `${unique('declared')}.fifo`;
      const file = join(dir, 'queues.json');
      writeFileSync(file, JSON.stringify({ queues: [{ name, attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' } }] }));
      const t = await startHybridTest({ accessPolicy: openAccessPolicy(), queuesFile: file, upstream: 'http://127.0.0.1:9' });
      open.push(t);
      expect((await t.shim.status()).mode).toBe('offline');
      const { QueueUrl } = await t.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
      await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'declared', MessageGroupId: 'g' }));
      await expectUnavailable(t.sqs.send(new GetQueueUrlCommand({ QueueName: unique('never-declared') })));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes a queue\'s name as its QueueUrl, online and offline, as SQS does', async () => {
    const t = await hybrid();
    const name = unique('by-name');
    await t.sqs.send(new CreateQueueCommand({ QueueName: name }));
    expect((await sendQuery(t.shim.url, { Action: 'SendMessage', QueueUrl: name, MessageBody: 'online' })).status).toBe(200);
    await cut(t);
    expect((await sendQuery(t.shim.url, { Action: 'SendMessage', QueueUrl: name, MessageBody: 'offline' })).status).toBe(200);
    await mend(t);
    expect((await drainRegion(t.region, name)).map((message) => message.Body).sort()).toEqual(['offline', 'online']);
  });

  it('mirrors a FIFO queue as FIFO when a client asks the region for some of its attributes only', async () => {
    // The fallback agents' runner asks for QueueArn, RedrivePolicy and VisibilityTimeout: an answer without FifoQueue.
    const errors: string[] = [];
    const logger = pino({ level: 'error' }, { write: (line: string) => void errors.push(line) });
    const t = await hybrid({ logger });
    const name = `${unique('partly-asked')}.fifo`;
    await t.region.send(new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: 'true', VisibilityTimeout: '45' } }));
    const { QueueUrl } = await t.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    const partial = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn', 'VisibilityTimeout'] }));
    expect(partial.Attributes).toMatchObject({ VisibilityTimeout: '45' });
    // The mirror learns the queue as the region has it all the same.
    await eventually(() => t.shim.hybrid!.view.queue(name)?.attributes.VisibilityTimeout, (timeout) => timeout === '45');
    await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['RedrivePolicy'] }));
    await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] }));
    expect(t.shim.hybrid!.view.queue(name)?.fifo).toBe(true);
    expect(errors).toEqual([]);
  });

  it('shows the edge ARNs in redrive policies and maps them to the region', async () => {
    const t = await hybrid();
    const dlq = unique('dlq');
    const { QueueUrl: dlqUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: dlq }));
    const dlqArn = (await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    expect(dlqArn).toBe(`arn:aws:sqs:us-east-1:000000000000:${dlq}`);
    const source = unique('source');
    const RedrivePolicy = JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 3 });
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: source, Attributes: { RedrivePolicy } }));
    const inRegion = await t.region.send(
      new GetQueueAttributesCommand({ QueueUrl: (await t.region.send(new GetQueueUrlCommand({ QueueName: source }))).QueueUrl, AttributeNames: ['RedrivePolicy'] }),
    );
    expect(JSON.parse(inRegion.Attributes!.RedrivePolicy!).deadLetterTargetArn).toMatch(new RegExp(`^arn:aws:sqs:us-east-1:\\d{12}:${dlq}$`));
    expect(JSON.parse(inRegion.Attributes!.RedrivePolicy!).deadLetterTargetArn).not.toBe(dlqArn);
    const atEdge = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['RedrivePolicy'] }));
    expect(JSON.parse(atEdge.Attributes!.RedrivePolicy!)).toMatchObject({ deadLetterTargetArn: dlqArn });
  });

  it('speaks the Query protocol in every mode: pass-through answers and errors in XML', async () => {
    const t = await hybrid();
    const name = unique('query');
    const created = await sendQuery(t.shim.url, { Action: 'CreateQueue', QueueName: name });
    expect(created.status).toBe(200);
    const queueUrl = /<QueueUrl>(.*)<\/QueueUrl>/.exec(created.body)![1]!;
    expect(queueUrl).toBe(`${t.shim.url}/000000000000/${name}`);
    expect((await sendQuery(t.shim.url, { Action: 'SendMessage', QueueUrl: queueUrl, MessageBody: 'online' })).status).toBe(200);
    const received = await sendQuery(t.shim.url, { Action: 'ReceiveMessage', QueueUrl: queueUrl, WaitTimeSeconds: '1' });
    expect(received.body).toMatch(/<Body>online<\/Body>/);
    const missing = await sendQuery(t.shim.url, { Action: 'GetQueueUrl', QueueName: unique('absent') });
    expect(missing.status).toBe(400);
    expect(missing.body).toMatch(/<Code>AWS\.SimpleQueueService\.NonExistentQueue<\/Code>/);
    await cut(t);
    expect((await sendQuery(t.shim.url, { Action: 'SendMessage', QueueUrl: queueUrl, MessageBody: 'offline' })).status).toBe(200);
    const unavailable = await sendQuery(t.shim.url, { Action: 'TagQueue', QueueUrl: queueUrl, 'Tag.1.Key': 'k', 'Tag.1.Value': 'v' });
    expect(unavailable.status).toBe(503);
    expect(unavailable.body).toMatch(/<Code>ServiceUnavailable<\/Code>/);
  });

  it('passes the region\'s errors on as they are', async () => {
    const t = await hybrid();
    await expectSqsError(t.sqs.send(new GetQueueUrlCommand({ QueueName: unique('nowhere') })), { name: 'QueueDoesNotExist', code: 'AWS.SimpleQueueService.NonExistentQueue' });
    await expectSqsError(t.sqs.send(new CreateQueueCommand({ QueueName: 'bad name!' })), { name: 'InvalidParameterValue' });
  });
});
