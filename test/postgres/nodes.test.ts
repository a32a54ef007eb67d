import {
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ListQueueTagsCommand,
  type Message,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  StartMessageMoveTaskCommand,
  TagQueueCommand,
} from '@aws-sdk/client-sqs';
import { createHash, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { retentionCutoff } from '../../edge-shim/src/sqs/messages.js';
import { PostgresMessages, PostgresQueues } from '../../edge-shim/src/sqs/postgres/stores.js';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { type Cluster, createDatabase, startCluster } from '../../testkit/postgres-cluster.js';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { counts, createQueue, receive } from '../helpers/sqs-queues.js';
import { TEST_CREDENTIALS, type TestShim, startTestShim } from '../helpers/shim.js';
import { eventually } from '../helpers/wait.js';

// Several shim nodes on one PostgreSQL database, as a site runs them behind a load balancer. The
// cluster is this file's own: one test stops its server and starts it again.
let cluster: Cluster;
let databases = 0;
const started: TestShim[] = [];

beforeAll(async () => {
  cluster = await startCluster();
}, 180_000);
afterEach(async () => {
  await Promise.all(started.splice(0).map((node) => node.close()));
});
afterAll(() => cluster?.discard());

/** A fresh database on the cluster, and `count` nodes on it. */
async function nodes(count: number): Promise<TestShim[]> {
  databases += 1;
  const url = await createDatabase(cluster.url, `nodes_${databases}`);
  const shims: TestShim[] = [];
  for (let index = 0; index < count; index++) shims.push(await startTestShim({ dbFile: url }));
  started.push(...shims);
  return shims;
}

/** The same queue as the other node names it: its URL on that node. */
const on = (node: TestShim, queueUrl: string) => `${node.shim.url}${new URL(queueUrl).pathname}`;

it('receives and deletes through one node a message sent through another, with the same receipt handle', async () => {
  const [a, b] = await nodes(2);
  const queue = await createQueue(a!.sqs, 'shared');
  const { MessageId } = await a!.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'from a' }));
  const [message] = await receive(b!.sqs, on(b!, queue), { VisibilityTimeout: 0 });
  expect(message).toMatchObject({ MessageId, Body: 'from a' });
  // Received again through the first node: its handle, made there, is good on the second.
  const [again] = await receive(a!.sqs, queue, { VisibilityTimeout: 60 });
  expect(again!.MessageId).toBe(MessageId);
  await b!.sqs.send(new DeleteMessageCommand({ QueueUrl: on(b!, queue), ReceiptHandle: again!.ReceiptHandle! }));
  a!.clock.advance(61_000);
  b!.clock.advance(61_000);
  expect(await receive(a!.sqs, queue)).toEqual([]);
  expect(await receive(b!.sqs, on(b!, queue))).toEqual([]);
});

it('keeps every change made to one queue at once through two nodes, and lets only one of two purges at once through', async () => {
  const [a, b] = await nodes(2);
  const queue = await createQueue(a!.sqs, 'changed-at-once');
  // Each change reads the queue's tags or attributes and writes them back with its own added.
  const changes = 24;
  await Promise.all(
    Array.from({ length: changes }, (_, index) => {
      const node = index % 2 === 0 ? a! : b!;
      return node.sqs.send(new TagQueueCommand({ QueueUrl: on(node, queue), Tags: { [`key-${index}`]: `node-${index % 2}` } }));
    }),
  );
  await Promise.all([
    a!.sqs.send(new SetQueueAttributesCommand({ QueueUrl: queue, Attributes: { DelaySeconds: '7' } })),
    b!.sqs.send(new SetQueueAttributesCommand({ QueueUrl: on(b!, queue), Attributes: { VisibilityTimeout: '45' } })),
  ]);
  const { Tags } = await b!.sqs.send(new ListQueueTagsCommand({ QueueUrl: on(b!, queue) }));
  expect(Object.keys(Tags ?? {}).sort()).toEqual(Array.from({ length: changes }, (_, index) => `key-${index}`).sort());
  const { Attributes } = await a!.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue, AttributeNames: ['DelaySeconds', 'VisibilityTimeout'] }));
  expect(Attributes).toEqual({ DelaySeconds: '7', VisibilityTimeout: '45' });

  const purges = await Promise.allSettled([a!.sqs.send(new PurgeQueueCommand({ QueueUrl: queue })), b!.sqs.send(new PurgeQueueCommand({ QueueUrl: on(b!, queue) }))]);
  expect(purges.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(1);
  const refused = purges.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected')!;
  expect((refused.reason as Error).name).toBe('PurgeQueueInProgress');
});

it('never hands out one FIFO group to two nodes at once, and keeps its order', async () => {
  const [a, b] = await nodes(2);
  const queue = await createQueue(a!.sqs, 'groups', { ContentBasedDeduplication: 'true' }, true);
  const groups = ['g1', 'g2', 'g3'];
  const perGroup = 15;
  for (let index = 0; index < perGroup; index++) {
    for (const [g, group] of groups.entries()) {
      const node = (index + g) % 2 === 0 ? a! : b!;
      await node.sqs.send(new SendMessageCommand({ QueueUrl: on(node, queue), MessageBody: `${group}-${index}`, MessageGroupId: group }));
    }
  }
  // Who holds each group now: a consumer lets go of it just before deleting what it took, and
  // no other may take it before that delete is committed.
  const holders = new Map<string, string>();
  const overlaps: string[] = [];
  const received = new Map<string, number[]>(groups.map((group) => [group, []]));
  let left = groups.length * perGroup;
  const consume = async (name: string, node: TestShim) => {
    while (left > 0) {
      const messages: Message[] = await receive(node.sqs, on(node, queue), { MaxNumberOfMessages: 4, VisibilityTimeout: 30, MessageSystemAttributeNames: ['MessageGroupId'] });
      const taken = new Set(messages.map((message) => message.Attributes!.MessageGroupId!));
      for (const group of taken) {
        const holder = holders.get(group);
        if (holder !== undefined) overlaps.push(`${group} taken by ${name} while ${holder} held it`);
        holders.set(group, name);
      }
      for (const message of messages) {
        const [group, index] = message.Body!.split('-');
        received.get(group!)!.push(Number(index));
      }
      left -= messages.length;
      for (const group of taken) holders.delete(group);
      for (const message of messages) await node.sqs.send(new DeleteMessageCommand({ QueueUrl: on(node, queue), ReceiptHandle: message.ReceiptHandle! }));
    }
  };
  await Promise.all([consume('a1', a!), consume('b1', b!), consume('a2', a!), consume('b2', b!)]);
  expect(overlaps).toEqual([]);
  for (const group of groups) expect(received.get(group)).toEqual(Array.from({ length: perGroup }, (_, index) => index));
}, 60_000);

it('stores one message for a deduplication id sent through both nodes at once', async () => {
  const [a, b] = await nodes(2);
  const queue = await createQueue(a!.sqs, 'once', {}, true);
  const sends = Array.from({ length: 8 }, (_, index) => {
    const node = index % 2 === 0 ? a! : b!;
    return node.sqs.send(new SendMessageCommand({ QueueUrl: on(node, queue), MessageBody: `copy ${index}`, MessageGroupId: 'g', MessageDeduplicationId: 'the-one' }));
  });
  const answers = await Promise.all(sends);
  expect(new Set(answers.map((answer) => answer.MessageId)).size).toBe(1);
  expect(new Set(answers.map((answer) => answer.SequenceNumber)).size).toBe(1);
  const received = await receive(b!.sqs, on(b!, queue), { MaxNumberOfMessages: 10 });
  expect(received.map((message) => message.MessageId)).toEqual([answers[0]!.MessageId]);
});

it('refuses at start an access policy with grants on "known" queues, which it cannot know from memory', async () => {
  const [a] = await nodes(1);
  const policy = join(a!.dir, 'policy.json');
  writeFileSync(policy, JSON.stringify({ keys: { [TEST_CREDENTIALS.accessKeyId]: [{ allow: ['send'], queues: 'known' }] } }));
  await expect(startTestShim({ dbFile: a!.dbFile, accessPolicy: policy })).rejects.toThrow(/"known" queues/);
});

it('never hands out one message of a standard queue to two nodes at once', async () => {
  const [a, b] = await nodes(2);
  const queue = await createQueue(a!.sqs, 'standard');
  const sent = 60;
  for (let index = 0; index < sent; index += 10) {
    const Entries = Array.from({ length: 10 }, (_, entry) => ({ Id: `m${entry}`, MessageBody: String(index + entry) }));
    await a!.sqs.send(new SendMessageBatchCommand({ QueueUrl: queue, Entries }));
  }
  // Received with a long visibility timeout and never deleted: a message handed out twice would be
  // two receives of one message at once.
  const received: string[] = [];
  const consume = async (node: TestShim) => {
    for (;;) {
      const messages = await receive(node.sqs, on(node, queue), { MaxNumberOfMessages: 10, VisibilityTimeout: 300 });
      if (messages.length === 0) return;
      received.push(...messages.map((message) => message.Body!));
    }
  };
  await Promise.all([consume(a!), consume(b!), consume(a!), consume(b!)]);
  expect(received.map(Number).sort((x, y) => x - y)).toEqual(Array.from({ length: sent }, (_, index) => index));
});

/** A queue and its dead-letter queue (`<name>-dlq`), made through `node`, with their URLs and ARNs. */
async function withDeadLetterQueue(node: TestShim, name: string) {
  const work = await createQueue(node.sqs, name);
  const { Attributes } = await node.sqs.send(new GetQueueAttributesCommand({ QueueUrl: work, AttributeNames: ['QueueArn'] }));
  const workArn = Attributes!.QueueArn!;
  const dlq = await createQueue(node.sqs, `${name}-dlq`);
  const dlqArn = workArn.replace(/[^:]+$/, new URL(dlq).pathname.split('/').pop()!);
  await node.sqs.send(new SetQueueAttributesCommand({ QueueUrl: work, Attributes: { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 1 }) } }));
  return { work, workArn, dlq, dlqArn };
}

it('finishes on another node a message move task whose node stopped', async () => {
  const [a, b] = await nodes(2);
  const { work, workArn, dlq, dlqArn } = await withDeadLetterQueue(a!, 'work');
  const moving = 5;
  for (let index = 0; index < moving; index++) await a!.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: `stranded ${index}` }));
  // One message a second: the task is still running when its node stops.
  await a!.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: dlqArn, DestinationArn: workArn, MaxNumberOfMessagesPerSecond: 1 }));
  const moved = async (node: TestShim) => (await counts(node.sqs, on(node, work))).visible;
  await eventually(() => moved(a!), (count) => count >= 1);
  await a!.close();
  await eventually(() => moved(b!), (count) => count === moving);
  const { Results } = await b!.sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn }));
  expect(Results).toMatchObject([{ Status: 'COMPLETED', ApproximateNumberOfMessagesMoved: moving }]);
}, 60_000);

it('keeps a move task to its MaxNumberOfMessagesPerSecond across the nodes that step it', async () => {
  const [a, b] = await nodes(2);
  const { workArn, dlq, dlqArn } = await withDeadLetterQueue(a!, 'rated');
  const moving = 8;
  const rate = 2;
  await a!.sqs.send(new SendMessageBatchCommand({ QueueUrl: dlq, Entries: Array.from({ length: moving }, (_, index) => ({ Id: `m${index}`, MessageBody: `rated ${index}` })) }));
  // Both nodes step the task (each looks for tasks started elsewhere); the rate is the task's, not each node's.
  const startedAt = Date.now();
  await b!.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: dlqArn, DestinationArn: workArn, MaxNumberOfMessagesPerSecond: rate }));
  const { Results } = await eventually(
    () => a!.sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn })),
    ({ Results }) => Results?.[0]?.Status === 'COMPLETED',
  );
  const tookMs = Date.now() - startedAt;
  expect(Results![0]!.ApproximateNumberOfMessagesMoved).toBe(moving);
  // `rate` in the first second and in each one after: the last of them cannot be moved before this.
  expect(tookMs).toBeGreaterThanOrEqual((moving / rate - 1) * 1000);
}, 60_000);

it('wakes a long poll on one node with a send through another', async () => {
  const [a, b] = await nodes(2);
  const queue = await createQueue(a!.sqs, 'woken');
  const startedAt = Date.now();
  const polling = b!.sqs.send(new ReceiveMessageCommand({ QueueUrl: on(b!, queue), WaitTimeSeconds: 20 }));
  await eventually(() => b!.shim.service.waitingReceives, (waiting) => waiting > 0);
  await a!.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'wake up' }));
  const { Messages } = await polling;
  expect(Messages?.map((message) => message.Body)).toEqual(['wake up']);
  // Woken, not timed out: well inside its 20 seconds.
  expect(Date.now() - startedAt).toBeLessThan(10_000);
});

it('answers ServiceUnavailable while the database is stopped, and carries on once it is back, without a restart; nothing acknowledged is lost', async () => {
  const [a, b] = await nodes(2);
  const queue = await createQueue(a!.sqs, 'outage');
  // Producers on both nodes send all along, the database's stop and start included; what was
  // acknowledged must all be there in the end, whatever was refused.
  const acknowledged: string[] = [];
  const refusals = new Set<string>();
  let producing = true;
  const produce = async (name: string, node: TestShim) => {
    for (let index = 0; producing; index++) {
      const body = `${name} ${index}`;
      try {
        await node.sqs.send(new SendMessageCommand({ QueueUrl: on(node, queue), MessageBody: body }));
        acknowledged.push(body);
      } catch (error) {
        refusals.add((error as Error).name);
        // As a balancer's health check would: the node is sent to again once it answers /health (the database back).
        await eventually(async () => !producing || (await fetch(`${node.shim.url}/health`)).status === 200, Boolean);
      }
    }
  };
  const producers = Promise.all([produce('a', a!), produce('b', b!)]);
  await eventually(() => acknowledged.length, (count) => count >= 20);
  await cluster.stop();
  try {
    await expectSqsError(a!.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'refused' })), { name: 'ServiceUnavailable', status: 503 });
    await expectSqsError(b!.sqs.send(new ReceiveMessageCommand({ QueueUrl: on(b!, queue) })), { name: 'ServiceUnavailable', status: 503 });
    const health = await fetch(`${a!.shim.url}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'unavailable', reason: expect.stringMatching(/database cannot be reached/) });
  } finally {
    await cluster.start();
  }
  for (const node of [a!, b!]) await eventually(async () => (await fetch(`${node.shim.url}/health`)).status, (status) => status === 200, 200);
  const before = acknowledged.length;
  await eventually(() => acknowledged.length, (count) => count >= before + 20);
  producing = false;
  await producers;
  expect([...refusals]).toEqual(['ServiceUnavailable']);
  const bodies: string[] = [];
  for (;;) {
    const messages = await receive(b!.sqs, on(b!, queue), { MaxNumberOfMessages: 10 });
    if (messages.length === 0) break;
    bodies.push(...messages.map((message) => message.Body!));
    for (const message of messages) await b!.sqs.send(new DeleteMessageCommand({ QueueUrl: on(b!, queue), ReceiptHandle: message.ReceiptHandle! }));
  }
  // A send whose COMMIT the stop cut off may be stored though it was refused; none acknowledged is missing.
  expect(bodies.filter((body) => !acknowledged.includes(body)).length).toBeLessThanOrEqual(2);
  expect(acknowledged.filter((body) => !bodies.includes(body))).toEqual([]);
}, 120_000);

it('answers ServiceUnavailable when the database stops answering at all (its packets dropped), rather than holding the request, and carries on once it answers again', async () => {
  databases += 1;
  const direct = new URL(await createDatabase(cluster.url, `nodes_${databases}`));
  const link = await FaultProxy.start({ target: direct.host });
  try {
    direct.host = link.address;
    // The engine's own bound is 45 s (past the server's 30 s for a transaction left idle); shortened here.
    const node = await startTestShim({ dbFile: direct.toString(), databaseQueryTimeoutMs: 1000 });
    started.push(node);
    const queue = await createQueue(node.sqs, 'partitioned');
    await node.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'before' }));
    // As a partition does: nothing comes back, not even a reset. Without the bound the send waits for TCP to give up.
    link.setMode('blackhole');
    await expectSqsError(node.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'refused' })), { name: 'ServiceUnavailable', status: 503 });
    const health = await fetch(`${node.shim.url}/health`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: 'unavailable', reason: expect.stringMatching(/database cannot be reached/) });
    // Refused at once from now on, until the database answers again.
    await expectSqsError(node.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'refused too' })), { name: 'ServiceUnavailable', status: 503 });
    link.setMode('pass');
    await eventually(async () => (await fetch(`${node.shim.url}/health`)).status, (status) => status === 200, 200);
    await node.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'after' }));
    const bodies = (await receive(node.sqs, queue, { MaxNumberOfMessages: 10 })).map((message) => message.Body);
    // Nothing of the refused sends reached the database, whose packets were all dropped.
    expect(bodies.sort()).toEqual(['after', 'before']);
  } finally {
    await Promise.all(started.splice(0).map((node) => node.close()));
    await link.close();
  }
}, 120_000);

it('leaves no FIFO message without its group when a send to the group commits while the delete of its last message looks at it', async () => {
  const [a] = await nodes(1);
  const queueUrl = await createQueue(a!.sqs, 'race', { ContentBasedDeduplication: 'true' }, true);
  const name = new URL(queueUrl).pathname.split('/').pop()!;
  await a!.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'first', MessageGroupId: 'g' }));
  const [first] = await receive(a!.sqs, queueUrl, { VisibilityTimeout: 60 });
  expect(first!.Body).toBe('first');
  // Two transactions of the engine's own stores, each on a connection of its own, interleaved as
  // two nodes' could be: a send of the group's next message, stopped before its COMMIT; then the
  // delete of the first.
  const connect = async () => {
    const client = new pg.Client({ connectionString: a!.dbFile });
    await client.connect();
    return client;
  };
  const [sender, deleter, observer] = [await connect(), await connect(), await connect()];
  try {
    const stores = (client: pg.Client) => ({
      queues: new PostgresQueues(client, 'us-east-1', '000000000000'),
      messages: new PostgresMessages(client, retentionCutoff(false, { ageCutoff: () => 0 }), new Map()),
    });
    const now = Date.now();
    await sender.query('BEGIN');
    const sending = stores(sender);
    const queue = (await sending.queues.byName(name))!;
    const body = 'second';
    await sending.messages.insert(
      queue,
      {
        group_id: 'g',
        enqueued_at: now,
        visible_at: now,
        message_id: randomUUID(),
        body,
        body_md5: createHash('md5').update(body).digest('hex'),
        attributes: null,
        attributes_md5: null,
        trace_header: null,
        deduplication_id: body,
        sequence_number: '2',
        dead_letter_source: null,
        sent_at: now,
      },
      now,
    );
    const deleterPid = (await deleter.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    await deleter.query('BEGIN');
    const deleting = stores(deleter);
    const [firstRow] = await deleting.messages.groupMessages(queue, 'g', 1);
    const removing = deleting.messages.remove(queue, (await deleting.messages.byId(firstRow!.id))!, now);
    // The delete waits on the send's lock of the group's row before the send commits.
    await eventually(
      async () => (await observer.query<{ wait: string | null }>('SELECT wait_event_type AS wait FROM pg_stat_activity WHERE pid = $1', [deleterPid])).rows[0]?.wait,
      (wait) => wait === 'Lock',
    );
    await sender.query('COMMIT');
    await removing;
    await deleter.query('COMMIT');
  } finally {
    await Promise.all([sender.end(), deleter.end(), observer.end()]);
  }
  const [second] = await receive(a!.sqs, queueUrl);
  expect(second?.Body).toBe('second');
});
