import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AddPermissionCommand,
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageCommand,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HybridTest, drainRegion, startHybridTest } from '../helpers/hybrid.js';
import { sendQuery } from '../helpers/raw-request.js';
import { sqsClient } from '../helpers/shim.js';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { eventually } from '../helpers/wait.js';

// The edge as a least-privilege gateway to the AWS account: through a hybrid edge in front of the
// emulator, no client gets more of the shim's identity than it was granted. By default (the quick
// start's way: loopback, no keys) the loopback client may send, receive, read and create on the
// queues the edge knows, and nothing else; a policy file grants keys more, or less, by queue.

const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;
const denied = { name: 'AccessDenied', status: 403 } as const;

describe('the default: the loopback client, no keys', () => {
  let edge: HybridTest;
  let theirs: { name: string; url: string };
  beforeAll(async () => {
    edge = await startHybridTest({ credentials: [] });
    // Another team's queue, in the region only, with a message in it.
    const name = unique('other-team');
    const url = (await edge.region.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
    await edge.region.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'not yours' }));
    theirs = { name, url };
  }, 60_000);
  afterAll(() => edge?.close());

  it('sends, receives and creates on the queues it knows', async () => {
    const url = (await edge.sqs.send(new CreateQueueCommand({ QueueName: unique('ours') }))).QueueUrl!;
    await edge.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'ours' }));
    const { Messages } = await edge.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 1 }));
    expect(Messages?.map((message) => message.Body)).toEqual(['ours']);
    expect((await edge.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }))).Attributes).toBeDefined();
  });

  it('neither lists, finds nor reads a queue of the region it was not told of, in either protocol', async () => {
    const { QueueUrls = [] } = await edge.sqs.send(new ListQueuesCommand({}));
    expect(QueueUrls.some((url) => url.endsWith(`/${theirs.name}`))).toBe(false);
    await expectSqsError(edge.sqs.send(new GetQueueUrlCommand({ QueueName: theirs.name })), denied);
    const edgeUrl = `${edge.shim.url}/000000000000/${theirs.name}`;
    await expectSqsError(edge.sqs.send(new ReceiveMessageCommand({ QueueUrl: edgeUrl })), denied);
    const query = await sendQuery(edge.shim.url, { Action: 'ReceiveMessage', QueueUrl: edgeUrl });
    expect(query.status).toBe(403);
    expect(query.body).toContain('<Code>AccessDenied</Code>');
    // The message is still in the region, unread.
    expect((await drainRegion(edge.region, theirs.name)).map((message) => message.Body)).toEqual(['not yours']);
  });

  it('does not adopt a queue of the region by creating one of its name, online or while the region is away', async () => {
    await expectSqsError(edge.sqs.send(new CreateQueueCommand({ QueueName: theirs.name })), denied);
    // Offline the edge cannot tell: it creates its own, and when the region is back it finds the
    // region's and keeps its messages to itself, saying why.
    const name = unique('taken-elsewhere');
    const elsewhere = (await edge.region.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
    edge.proxy.setMode('blackhole');
    try {
      await eventually(() => edge.shim.status(), (status) => status.mode === 'offline');
      const url = (await edge.sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
      await edge.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'stays at the edge' }));
    } finally {
      edge.proxy.setMode('pass');
    }
    const waiting = await eventually(() => edge.shim.status(), (status) => status.mode !== 'offline' && (status.queues.find((queue) => queue.name === name)?.replayWaits ?? null) !== null);
    expect(waiting.queues.find((queue) => queue.name === name)!.replayWaits).toMatch(/already exists in the region/);
    expect(await drainRegion(edge.region, name)).toEqual([]);
    expect(elsewhere).toContain(name);
  });

  it('never changes permissions or policies, deletes, purges or moves through the shim\'s identity', async () => {
    const url = (await edge.sqs.send(new CreateQueueCommand({ QueueName: unique('guarded') }))).QueueUrl!;
    await expectSqsError(edge.sqs.send(new AddPermissionCommand({ QueueUrl: url, Label: 'all', AWSAccountIds: ['111122223333'], Actions: ['*'] })), denied);
    const everyone = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: '*', Action: 'sqs:*', Resource: '*' }] });
    await expectSqsError(edge.sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { Policy: everyone } })), denied);
    await expectSqsError(edge.sqs.send(new PurgeQueueCommand({ QueueUrl: url })), denied);
    await expectSqsError(edge.sqs.send(new DeleteQueueCommand({ QueueUrl: url })), denied);
    const query = await sendQuery(edge.shim.url, { Action: 'DeleteQueue', QueueUrl: url });
    expect(query.status).toBe(403);
    // Still there in the region.
    await edge.region.send(new GetQueueUrlCommand({ QueueName: new URL(url).pathname.split('/').pop()! }));
  });

  it('refuses a queue owner of another account, and never links a queue to another account', async () => {
    const name = unique('payments');
    const url = (await edge.sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
    await expectSqsError(edge.sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: '666666666666' })), denied);
    // The edge's own account is its own.
    expect((await edge.sqs.send(new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: '000000000000' }))).QueueUrl).toBe(url);
    await edge.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'to my own queue' }));
    expect((await drainRegion(edge.region, name)).map((message) => message.Body)).toEqual(['to my own queue']);
  });

  it('holds the same rules while the region is away', async () => {
    const url = (await edge.sqs.send(new CreateQueueCommand({ QueueName: unique('offline') }))).QueueUrl!;
    edge.proxy.setMode('blackhole');
    try {
      await eventually(() => edge.shim.status(), (status) => status.mode === 'offline');
      await edge.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'stored' }));
      await expectSqsError(edge.sqs.send(new PurgeQueueCommand({ QueueUrl: url })), denied);
      await expectSqsError(edge.sqs.send(new GetQueueUrlCommand({ QueueName: theirs.name })), denied);
    } finally {
      edge.proxy.setMode('pass');
    }
    const name = new URL(url).pathname.split('/').pop()!;
    await eventually(() => edge.shim.status(), (status) => status.mode !== 'offline' && status.queues.find((queue) => queue.name === name)?.backlog === 0);
    expect((await drainRegion(edge.region, name)).map((message) => message.Body)).toEqual(['stored']);
  });
});

describe('a policy file', () => {
  const producer = { accessKeyId: 'AKIDPRODUCER', secretAccessKey: 'producer-secret' };
  const operator = { accessKeyId: 'AKIDOPERATOR', secretAccessKey: 'operator-secret' };
  const stranger = { accessKeyId: 'AKIDSTRANGER', secretAccessKey: 'stranger-secret' };
  let dir: string;
  let edge: HybridTest;
  let clients: { producer: SQSClient; operator: SQSClient; stranger: SQSClient };
  const payments = unique('payments');
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'holdfast-policy-'));
    const policyFile = join(dir, 'policy.json');
    writeFileSync(
      policyFile,
      JSON.stringify({
        keys: {
          [producer.accessKeyId]: [{ allow: ['send'], queues: ['payments-*'] }],
          // `*` is everything but what must be named: purge is named here, delete is not.
          [operator.accessKeyId]: [{ allow: ['*', 'purge'], queues: ['*'] }],
        },
      }),
    );
    edge = await startHybridTest({ credentials: [producer, operator, stranger], accessPolicy: policyFile });
    clients = { producer: sqsClient(edge.shim.url, producer), operator: sqsClient(edge.shim.url, operator), stranger: sqsClient(edge.shim.url, stranger) };
  }, 60_000);
  afterAll(async () => {
    for (const client of Object.values(clients ?? {})) client.destroy();
    await edge?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives each key what its grants name, on the queues they name, and a key it does not name nothing', async () => {
    const url = (await clients.operator.send(new CreateQueueCommand({ QueueName: payments }))).QueueUrl!;
    await clients.producer.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'a payment' }));
    await expectSqsError(clients.producer.send(new ReceiveMessageCommand({ QueueUrl: url })), denied);
    await expectSqsError(clients.producer.send(new CreateQueueCommand({ QueueName: unique('payments') })), denied);
    const other = (await clients.operator.send(new CreateQueueCommand({ QueueName: unique('telemetry') }))).QueueUrl!;
    await expectSqsError(clients.producer.send(new SendMessageCommand({ QueueUrl: other, MessageBody: 'not a payment' })), denied);
    await expectSqsError(clients.stranger.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'who?' })), denied);
    const { QueueUrls = [] } = await clients.stranger.send(new ListQueuesCommand({})).catch(() => ({ QueueUrls: [] as string[] }));
    expect(QueueUrls).toEqual([]);
    const { Messages } = await clients.operator.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 1 }));
    expect(Messages?.map((message) => message.Body)).toEqual(['a payment']);
  });

  it('lets a key purge only when purge is named, and delete never when it is not', async () => {
    const url = (await clients.operator.send(new CreateQueueCommand({ QueueName: unique('payments') }))).QueueUrl!;
    await clients.operator.send(new PurgeQueueCommand({ QueueUrl: url }));
    await expectSqsError(clients.operator.send(new DeleteQueueCommand({ QueueUrl: url })), denied);
  });
});
