import { createHash, randomUUID } from 'node:crypto';
import { DescribeContinuousBackupsCommand, DescribeTableCommand, DescribeTimeToLiveCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, type Message, ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startLocalRunner, type LocalRunner, type LocalRunnerOptions, type SqsHandler } from '../../functions/src/event-source/runner.js';
import { createWorkflowResources, resourceEnvironment, type WorkflowResources } from '../../functions/src/local-pipeline/resources.js';
import type { StageDefinition, WorkflowDefinition } from '../../functions/src/workflow-definition.js';
import { emulator } from '../helpers/emulator.js';
import { startTestShim, TEST_CREDENTIALS } from '../helpers/shim.js';
import { waitForState } from '../helpers/wait.js';

const aws = emulator();
const silent = pino({ level: process.env.DEBUG_RUNNER ? 'debug' : 'silent' });
const sqs = new SQSClient(aws);
const runners: LocalRunner[] = [];

afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.stop()));
});

function stage(name: string, overrides: Partial<StageDefinition> = {}): StageDefinition {
  return { name, entry: 'unused.ts', maxReceiveCount: 3, timeoutSeconds: 5, memoryMb: 256, batchSize: 10, maxConcurrency: 2, runsAtEdge: false, ...overrides };
}

/**
 * A one-stage workflow with its queues. Their 1 s visibility timeout brings failures back quickly;
 * Lambda would refuse it for a function timeout above 1 s, the runner only warns (logger silenced).
 */
/** One stage on a queue whose visibility timeout is 1 s (so that retries come soon), unless given. */
async function oneStage(
  overrides: Partial<StageDefinition> = {},
  visibilityTimeoutSeconds = 1,
): Promise<{ workflow: WorkflowDefinition; resources: WorkflowResources; queueUrl: string }> {
  const workflow: WorkflowDefinition = { name: 'runner', stages: [stage('work', overrides)] };
  const resources = await createWorkflowResources(aws, workflow, { namePrefix: `${randomUUID().slice(0, 8)}-`, visibilityTimeoutSeconds });
  return { workflow, resources, queueUrl: resources.queues.work!.queueUrl };
}

async function run(options: Omit<LocalRunnerOptions, 'aws' | 'logger'>): Promise<LocalRunner> {
  const runner = await startLocalRunner({ aws, logger: silent, waitTimeSeconds: 1, ...options });
  runners.push(runner);
  return runner;
}

async function send(queueUrl: string, body: string, group = 'g', attributes: Record<string, string> = {}): Promise<string> {
  const { MessageId } = await sqs.send(
    new SendMessageCommand({
      QueueUrl: queueUrl,
      MessageBody: body,
      MessageGroupId: group,
      MessageDeduplicationId: randomUUID(),
      MessageAttributes: Object.fromEntries(Object.entries(attributes).map(([name, value]) => [name, { DataType: 'String', StringValue: value }])),
    }),
  );
  return MessageId!;
}

/** Waits until a queue has messages and receives them (with every attribute). */
async function receiveFrom(queueUrl: string): Promise<Message[]> {
  return waitForState(async () => {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'] }),
    );
    expect(Messages.length).toBeGreaterThan(0);
    return Messages;
  });
}

async function queueDepth(queueUrl: string): Promise<number> {
  return queueDepthOn(sqs, queueUrl);
}

async function queueDepthOn(client: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes } = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible);
}

/**
 * A workflow whose `forward` stage runs test/functions/support/forward-handler.ts from its entry, in a
 * worker thread with `environment`, and sends on to a `collect` stage that records what it gets.
 */
async function forwardToCollect(name: string, visibilityTimeoutSeconds: number, environment: Record<string, string>) {
  const workflow: WorkflowDefinition = { name, stages: [stage('forward', { entry: 'test/functions/support/forward-handler.ts' }), stage('collect')] };
  const resources = await createWorkflowResources(aws, workflow, { namePrefix: `${randomUUID().slice(0, 8)}-`, visibilityTimeoutSeconds });
  const deliveries = new Deliveries();
  await run({ workflow, queues: resources.queues, environment, handlers: { collect: async (event, context) => deliveries.add(event, context) } });
  return { forwardQueueUrl: resources.queues.forward!.queueUrl, deliveries };
}

/** Records what a handler was given; `until` resolves once the records delivered so far satisfy a condition. */
class Deliveries {
  readonly events: { event: SQSEvent; context: Context }[] = [];
  private readonly waiters: { done: (records: SQSRecord[]) => boolean; resolve: () => void }[] = [];

  get records(): SQSRecord[] {
    return this.events.flatMap(({ event }) => event.Records);
  }

  add(event: SQSEvent, context: Context): void {
    this.events.push({ event, context });
    for (const waiter of this.waiters.filter((w) => w.done(this.records))) waiter.resolve();
  }

  until(done: (records: SQSRecord[]) => boolean): Promise<void> {
    if (done(this.records)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ done, resolve }));
  }

  reached(count: number): Promise<void> {
    return this.until((records) => records.length >= count);
  }
}

describe('the local runner', () => {
  it('delivers a faithful SQS event in batches of at most batchSize, then deletes the batch', async () => {
    const { workflow, resources, queueUrl } = await oneStage({ batchSize: 2 });
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push(await send(queueUrl, `payload-${i}`, 'order-1', { tenant: 'acme' }));
    const deliveries = new Deliveries();
    await run({ workflow, queues: resources.queues, handlers: { work: async (event, context) => deliveries.add(event, context) } });
    await deliveries.reached(5);

    expect(deliveries.events.every(({ event }) => event.Records.length >= 1 && event.Records.length <= 2)).toBe(true);
    expect(deliveries.records.map((record) => record.messageId)).toEqual(sent);
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
    const [record] = deliveries.records;
    expect(record).toMatchObject({
      body: 'payload-0',
      md5OfBody: createHash('md5').update('payload-0').digest('hex'),
      eventSource: 'aws:sqs',
      eventSourceARN: Attributes!.QueueArn,
      awsRegion: aws.region,
      attributes: { ApproximateReceiveCount: '1', MessageGroupId: 'order-1' },
      messageAttributes: { tenant: { stringValue: 'acme', stringListValues: [], binaryListValues: [], dataType: 'String' } },
    });
    expect(record!.receiptHandle).toBeTruthy();
    expect(record!.md5OfMessageAttributes).toMatch(/^[0-9a-f]{32}$/);
    for (const name of ['SentTimestamp', 'SenderId', 'ApproximateFirstReceiveTimestamp', 'SequenceNumber', 'MessageDeduplicationId'] as const) {
      expect(record!.attributes[name]).toBeTruthy();
    }
    const { context } = deliveries.events[0]!;
    expect(context.functionName).toBe('runner-work');
    expect(context.invokedFunctionArn).toMatch(/^arn:aws:lambda:us-east-1:\d{12}:function:runner-work$/);
    expect(context.awsRequestId).not.toBe(deliveries.events[1]!.context.awsRequestId);
    expect(context.getRemainingTimeInMillis()).toBeLessThanOrEqual(5000);

    const runner = runners.pop()!;
    await runner.stop();
    expect(await queueDepth(queueUrl)).toBe(0);
  });

  it('deletes only the records a partial batch response does not name; the failed one comes back', async () => {
    const { workflow, resources, queueUrl } = await oneStage({ batchSize: 10 });
    for (const body of ['ok-1', 'fail-once', 'ok-2']) await send(queueUrl, body, body);
    const deliveries = new Deliveries();
    const handler: SqsHandler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
      deliveries.add(event, context);
      const failures = event.Records.filter((r) => r.body === 'fail-once' && r.attributes.ApproximateReceiveCount === '1');
      return { batchItemFailures: failures.map((r) => ({ itemIdentifier: r.messageId })) };
    };
    await run({ workflow, queues: resources.queues, handlers: { work: handler } });
    await deliveries.reached(4);
    await runners.pop()!.stop();

    const bodies = deliveries.records.map((record) => `${record.body}#${record.attributes.ApproximateReceiveCount}`);
    expect(bodies.sort()).toEqual(['fail-once#1', 'fail-once#2', 'ok-1#1', 'ok-2#1']);
    expect(await queueDepth(queueUrl)).toBe(0);
  });

  it.each([
    ['a thrown error', () => Promise.reject(new Error('agent failed'))],
    ['a batchItemFailures entry naming no record of the batch', () => Promise.resolve({ batchItemFailures: [{ itemIdentifier: 'not-in-batch' }] })],
    ['a batchItemFailures entry with an empty itemIdentifier', () => Promise.resolve({ batchItemFailures: [{ itemIdentifier: '' }] })],
    ['a handler that outlives its timeout', () => new Promise((resolve) => setTimeout(resolve, 2500))],
  ])('fails the whole batch on %s', async (_, firstResponse) => {
    const { workflow, resources, queueUrl } = await oneStage({ batchSize: 10, timeoutSeconds: 1 });
    for (const body of ['one', 'two']) await send(queueUrl, body, body);
    const deliveries = new Deliveries();
    await run({
      workflow,
      queues: resources.queues,
      handlers: {
        work: async (event, context) => {
          deliveries.add(event, context);
          return deliveries.events.length === 1 ? firstResponse() : undefined;
        },
      },
    });
    await deliveries.reached(1);
    const first = deliveries.events[0]!.event.Records.map((record) => record.body).sort();
    const retried = (records: SQSRecord[]) => records.filter((record) => record.attributes.ApproximateReceiveCount === '2').map((record) => record.body).sort();
    await deliveries.until((records) => retried(records).length >= first.length);
    await deliveries.reached(2 + first.length);
    await runners.pop()!.stop();

    expect(retried(deliveries.records)).toEqual(first);
    expect(await queueDepth(queueUrl)).toBe(0);
  });

  it('leaves a message that keeps failing to the queue redrive policy, which moves it to the dead-letter queue', async () => {
    const { workflow, resources, queueUrl } = await oneStage({ maxReceiveCount: 2 });
    const messageId = await send(queueUrl, 'poison');
    const deliveries = new Deliveries();
    await run({
      workflow,
      queues: resources.queues,
      handlers: {
        work: async (event, context) => {
          deliveries.add(event, context);
          throw new Error('always fails');
        },
      },
    });
    const Messages = await receiveFrom(resources.queues.work!.deadLetterQueueUrl);
    await runners.pop()!.stop();

    expect(Messages?.map((message) => message.MessageId)).toEqual([messageId]);
    expect(deliveries.records.map((record) => record.attributes.ApproximateReceiveCount)).toEqual(['1', '2']);
    expect(await queueDepth(queueUrl)).toBe(0);
  });

  it('moves exhausted messages itself when the queue has no redrive policy', async () => {
    const prefix = randomUUID().slice(0, 8);
    const create = async (name: string, attributes: Record<string, string> = {}) =>
      (await sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-${name}.fifo`, Attributes: { FifoQueue: 'true', ...attributes } }))).QueueUrl!;
    const queueUrl = await create('plain', { VisibilityTimeout: '1' });
    const deadLetterQueueUrl = await create('plain-dlq');
    const workflow: WorkflowDefinition = { name: 'plain', stages: [stage('work', { maxReceiveCount: 2 })] };
    await send(queueUrl, 'poison', 'group-7', { reason: 'test' });
    const deliveries = new Deliveries();
    await run({
      workflow,
      queues: { work: { queueUrl, deadLetterQueueUrl } },
      handlers: {
        work: async (event, context) => {
          deliveries.add(event, context);
          throw new Error('always fails');
        },
      },
    });
    const Messages = await receiveFrom(deadLetterQueueUrl);
    await runners.pop()!.stop();

    expect(Messages?.map((message) => [message.Body, message.Attributes?.MessageGroupId, message.MessageAttributes?.reason?.StringValue])).toEqual([
      ['poison', 'group-7', 'test'],
    ]);
    expect(deliveries.records).toHaveLength(2);
    expect(await queueDepth(queueUrl)).toBe(0);
  });

  it('keeps each message group in order and never runs two batches of one group at once', async () => {
    // A visibility timeout that a loaded emulator cannot outlast between receive and delete: a
    // message seen again after it is SQS's at-least-once, not the order this test is about.
    const { workflow, resources, queueUrl } = await oneStage({ batchSize: 1, maxConcurrency: 4 }, 60);
    const groups = ['a', 'b', 'c'];
    for (let i = 0; i < 4; i++) for (const group of groups) await send(queueUrl, `${group}${i}`, group);
    const deliveries = new Deliveries();
    const active = new Set<string>();
    const overlaps: string[] = [];
    await run({
      workflow,
      queues: resources.queues,
      handlers: {
        work: async (event, context) => {
          const group = event.Records[0]!.attributes.MessageGroupId!;
          if (active.has(group)) overlaps.push(group);
          active.add(group);
          await new Promise((resolve) => setTimeout(resolve, 20));
          active.delete(group);
          deliveries.add(event, context);
        },
      },
    });
    await deliveries.reached(12);

    expect(overlaps).toEqual([]);
    for (const group of groups) {
      const order = deliveries.records.filter((record) => record.attributes.MessageGroupId === group).map((record) => record.body);
      expect(order).toEqual([0, 1, 2, 3].map((i) => `${group}${i}`));
    }
  });

  it('runs at most maxConcurrency batches of a stage at once', async () => {
    const { workflow, resources } = await oneStage({ batchSize: 1, maxConcurrency: 2 });
    for (let i = 0; i < 6; i++) await send(resources.queues.work!.queueUrl, `m${i}`, `group-${i}`);
    const deliveries = new Deliveries();
    let running = 0;
    let mostRunning = 0;
    let bothRunning!: () => void;
    const pairReached = new Promise<void>((resolve) => (bothRunning = resolve));
    await run({
      workflow,
      queues: resources.queues,
      handlers: {
        work: async (event, context) => {
          running++;
          mostRunning = Math.max(mostRunning, running);
          if (running === 2) bothRunning();
          await pairReached;
          await new Promise((resolve) => setTimeout(resolve, 20));
          running--;
          deliveries.add(event, context);
        },
      },
    });
    await deliveries.reached(6);

    expect(mostRunning).toBe(2);
  });

  it('stop() waits for in-flight batches and deletes what they processed', async () => {
    const { workflow, resources, queueUrl } = await oneStage();
    await send(queueUrl, 'slow');
    let started!: () => void;
    const handlerStarted = new Promise<void>((resolve) => (started = resolve));
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let handlerDone = false;
    // The runner polls with this client, which counts the receives that have ended.
    const polling = new SQSClient(aws);
    let receivesEnded = 0;
    polling.middlewareStack.add(
      (next, context) => async (args) => {
        try {
          return await next(args);
        } finally {
          if (context.commandName === 'ReceiveMessageCommand') receivesEnded++;
        }
      },
      { step: 'initialize', name: 'countReceives' },
    );
    const runner = await startLocalRunner({
      aws,
      sqs: polling,
      logger: silent,
      workflow,
      queues: resources.queues,
      handlers: {
        work: async () => {
          started();
          await finished;
          handlerDone = true;
        },
      },
    });
    await handlerStarted;
    let stopped = false;
    const receivesBefore = receivesEnded;
    const stopping = runner.stop().then(() => (stopped = true));
    // Polling has ended (its long poll was cut short): all that is left is the batch in flight.
    await waitForState(() => expect(receivesEnded).toBeGreaterThan(receivesBefore), { intervalMs: 10 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    finish();
    await stopping;
    polling.destroy();

    expect(handlerDone).toBe(true);
    expect(await queueDepth(queueUrl)).toBe(0);
  });

  it('runs a stage from its entry in a worker thread with the stage environment and the next queue', async () => {
    const { forwardQueueUrl, deliveries } = await forwardToCollect('entry', 30, { RUNNER_TEST_MARK: 'stage-env' });
    await send(forwardQueueUrl, 'hello', 'order-9');
    await deliveries.reached(1);

    const [record] = deliveries.records;
    expect(JSON.parse(record!.body)).toEqual({
      body: 'hello',
      mark: 'stage-env',
      functionName: 'entry-forward',
      lambdaFunctionName: 'entry-forward',
      hasTimeLeft: true,
      receiveCount: '1',
    });
    expect(record!.attributes.MessageGroupId).toBe('order-9');
    expect(process.env.RUNNER_TEST_MARK).toBeUndefined();
  });

  it('fails the batch of a stage whose worker dies, and runs the retry in a fresh one', async () => {
    const { forwardQueueUrl, deliveries } = await forwardToCollect('crash', 2, { CRASH_ON_FIRST_RECEIVE: '1' });
    await send(forwardQueueUrl, 'survivor', 'order-3');
    await deliveries.reached(1);

    const forwarded = JSON.parse(deliveries.records[0]!.body);
    expect(forwarded.body).toBe('survivor');
    expect(Number(forwarded.receiveCount)).toBeGreaterThan(1);
  });

  it('runs against the edge shim as against the emulator', async () => {
    const shim = await startTestShim();
    try {
      const queue = async (name: string, attributes: Record<string, string> = {}) =>
        (await shim.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: 'true', ...attributes } }))).QueueUrl!;
      const deadLetterQueueUrl = await queue('edge-work-dlq.fifo');
      const { Attributes } = await shim.sqs.send(new GetQueueAttributesCommand({ QueueUrl: deadLetterQueueUrl, AttributeNames: ['QueueArn'] }));
      const queueUrl = await queue('edge-work.fifo', { VisibilityTimeout: '30', RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: 3 }) });
      for (const body of ['ok', 'fail-once']) {
        await shim.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body, MessageGroupId: body, MessageDeduplicationId: body }));
      }
      const deliveries = new Deliveries();
      const runner = await startLocalRunner({
        workflow: { name: 'edge', stages: [stage('work')] },
        aws: { endpoint: shim.shim.url, region: 'us-east-1', credentials: TEST_CREDENTIALS },
        queues: { work: { queueUrl, deadLetterQueueUrl } },
        waitTimeSeconds: 1,
        logger: silent,
        handlers: {
          work: async (event, context): Promise<SQSBatchResponse> => {
            deliveries.add(event, context);
            const failures = event.Records.filter((r) => r.body === 'fail-once' && r.attributes.ApproximateReceiveCount === '1');
            return { batchItemFailures: failures.map((r) => ({ itemIdentifier: r.messageId })) };
          },
        },
      });
      await deliveries.reached(2);
      // Once 'ok' is deleted, only 'fail-once' is left, in flight until its visibility timeout ends.
      await waitForState(async () => expect(await queueDepthOn(shim.sqs, queueUrl)).toBe(1), { intervalMs: 50 });
      shim.clock.advance(30_000);
      await deliveries.reached(3);
      await runner.stop();

      expect(deliveries.records.map((record) => `${record.body}#${record.attributes.ApproximateReceiveCount}`).sort()).toEqual(['fail-once#1', 'fail-once#2', 'ok#1']);
      expect(await queueDepthOn(shim.sqs, queueUrl)).toBe(0);
    } finally {
      await shim.close();
    }
  });
});

describe('createWorkflowResources', () => {
  it('creates FIFO queues with their redrive policy, the human review queue and the tables', async () => {
    const workflow: WorkflowDefinition = { name: 'setup', stages: [stage('first', { maxReceiveCount: 4, timeoutSeconds: 7 }), stage('second')] };
    const resources = await createWorkflowResources(aws, workflow, { namePrefix: `${randomUUID().slice(0, 8)}-` });

    const { Attributes: first } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: resources.queues.first!.queueUrl, AttributeNames: ['All'] }));
    const { Attributes: deadLetter } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: resources.queues.first!.deadLetterQueueUrl, AttributeNames: ['All'] }));
    expect(first).toMatchObject({ FifoQueue: 'true', VisibilityTimeout: '42' });
    expect(JSON.parse(first!.RedrivePolicy!)).toEqual({ deadLetterTargetArn: deadLetter!.QueueArn, maxReceiveCount: 4 });
    expect(deadLetter!.FifoQueue).toBe('true');
    expect(resources.humanReviewQueueUrl).toMatch(/-setup-human-review\.fifo$/);

    const dynamodb = new DynamoDBClient(aws);
    try {
      for (const table of Object.values(resources.tables)) {
        expect((await dynamodb.send(new DescribeTableCommand({ TableName: table }))).Table?.TableStatus).toBe('ACTIVE');
      }
      const ttl = await dynamodb.send(new DescribeTimeToLiveCommand({ TableName: resources.tables.idempotency }));
      expect(ttl.TimeToLiveDescription).toMatchObject({ AttributeName: 'expiration', TimeToLiveStatus: 'ENABLED' });
      const backups = await dynamodb.send(new DescribeContinuousBackupsCommand({ TableName: resources.tables.ledger }));
      expect(backups.ContinuousBackupsDescription?.PointInTimeRecoveryDescription?.PointInTimeRecoveryStatus).toBe('ENABLED');
    } finally {
      dynamodb.destroy();
    }
    expect(resourceEnvironment(resources)).toEqual({
      IDEMPOTENCY_TABLE: resources.tables.idempotency,
      WORKFLOW_TABLE: resources.tables.workflow,
      LEDGER_TABLE: resources.tables.ledger,
      STATE_TABLE: resources.tables.state,
      HUMAN_REVIEW_QUEUE_URL: resources.humanReviewQueueUrl,
    });
  });
});
