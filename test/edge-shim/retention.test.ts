import {
  ChangeMessageVisibilityCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METRICS_PREFIX } from '../../edge-shim/src/observability/metrics.js';
import type { EdgeStatus } from '../../edge-shim/src/observability/status.js';
import { parseExposition, sampleValue } from '../helpers/prometheus.js';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { counts, createQueue, receive } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// MessageRetentionPeriod: a message older than it is never returned and does not count. Per the
// SetQueueAttributes reference, a change of the period applies to the messages already in the queue.

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim({ sweepIntervalMs: 3_600_000 });
});
afterAll(() => t?.close());

const sendOne = (queue: string, body: string, extra: Record<string, unknown> = {}) =>
  t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: body, ...extra }));

/** Rows in the messages table, of every queue or with this body: what is stored, expired or not. */
const storedMessages = (body?: string) => t.storedRows('messages', body === undefined ? undefined : { column: 'body', value: body });

it('never returns or counts a message older than the retention period, in flight, delayed or not', async () => {
  const queue = await createQueue(t.sqs, 'retention', { MessageRetentionPeriod: '60' });
  await sendOne(queue, 'visible');
  await sendOne(queue, 'in flight');
  await sendOne(queue, 'delayed', { DelaySeconds: 900 });
  expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 1, VisibilityTimeout: 600 })).toHaveLength(1);
  expect(await counts(t.sqs, queue)).toEqual({ visible: 1, notVisible: 1, delayed: 1 });
  t.clock.advance(59_000);
  expect(await counts(t.sqs, queue)).toEqual({ visible: 1, notVisible: 1, delayed: 1 });
  t.clock.advance(1_000);
  expect(await counts(t.sqs, queue)).toEqual({ visible: 0, notVisible: 0, delayed: 0 });
  expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).toEqual([]);
});

it('treats the receipt handle of an expired message as that of a deleted one', async () => {
  const queue = await createQueue(t.sqs, 'retention', { MessageRetentionPeriod: '60' });
  await sendOne(queue, 'x');
  const [message] = await receive(t.sqs, queue, { VisibilityTimeout: 600 });
  t.clock.advance(60_000);
  await expectSqsError(t.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue, ReceiptHandle: message!.ReceiptHandle, VisibilityTimeout: 10 })), {
    name: 'InvalidParameterValue',
  });
});

it('applies a shorter retention period to the messages already in the queue', async () => {
  const queue = await createQueue(t.sqs, 'retention');
  await sendOne(queue, 'old');
  t.clock.advance(600_000);
  await sendOne(queue, 'young');
  await t.sqs.send(new SetQueueAttributesCommand({ QueueUrl: queue, Attributes: { MessageRetentionPeriod: '300' } }));
  expect((await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).map((message) => message.Body)).toEqual(['young']);
});

it('applies a longer retention period to the messages already in the queue', async () => {
  const queue = await createQueue(t.sqs, 'retention', { MessageRetentionPeriod: '60' });
  await sendOne(queue, 'kept');
  t.clock.advance(30_000);
  await t.sqs.send(new SetQueueAttributesCommand({ QueueUrl: queue, Attributes: { MessageRetentionPeriod: '120' } }));
  t.clock.advance(60_000);
  expect((await receive(t.sqs, queue)).map((message) => message.Body)).toEqual(['kept']);
});

it('lets an expired message at the head of a FIFO group give way to the next one', async () => {
  const queue = await createQueue(t.sqs, 'retention', { MessageRetentionPeriod: '60', ContentBasedDeduplication: 'true' }, true);
  await sendOne(queue, 'old', { MessageGroupId: 'g' });
  t.clock.advance(50_000);
  await sendOne(queue, 'young', { MessageGroupId: 'g' });
  t.clock.advance(10_000);
  expect((await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).map((message) => message.Body)).toEqual(['young']);
});

it('finds a live message behind many expired ones, deleting those it passes', async () => {
  const queue = await createQueue(t.sqs, 'retention', { MessageRetentionPeriod: '60' });
  for (let batch = 0; batch < 30; batch++) {
    const entries = Array.from({ length: 10 }, (_, index) => ({ Id: `e${index}`, MessageBody: `expired ${batch}-${index}` }));
    await t.sqs.send(new SendMessageBatchCommand({ QueueUrl: queue, Entries: entries }));
  }
  t.clock.advance(60_000);
  await sendOne(queue, 'live');
  const before = await storedMessages();
  // A receive examines a bounded number of messages per round; a long poll goes on at once.
  const { Messages } = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl: queue, WaitTimeSeconds: 5 }));
  expect(Messages!.map((message) => message.Body)).toEqual(['live']);
  expect(before - (await storedMessages())).toBe(300);
});

it('has the sweeper delete expired messages', async () => {
  const queue = await createQueue(t.sqs, 'retention', { MessageRetentionPeriod: '60' });
  await sendOne(queue, 'to be swept');
  await t.shim.service.sweep();
  expect(await storedMessages('to be swept')).toBe(1);
  t.clock.advance(60_000);
  await t.shim.service.sweep();
  expect(await storedMessages('to be swept')).toBe(0);
  expect(await counts(t.sqs, queue)).toEqual({ visible: 0, notVisible: 0, delayed: 0 });
});

describe('messages expired', () => {
  const lines: string[] = [];
  let own: TestShim;
  beforeAll(async () => {
    own = await startTestShim({ logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }), sweepIntervalMs: 3_600_000 });
  });
  afterAll(() => own?.close());

  const sendTo = (queue: string, count: number) =>
    own.sqs.send(new SendMessageBatchCommand({ QueueUrl: queue, Entries: Array.from({ length: count }, (_, index) => ({ Id: `e${index}`, MessageBody: `m${index}` })) }));
  const nameOf = (queue: string) => queue.split('/').pop()!;

  it('are counted at /metrics and /status and logged, whether a receive or the sweeper deleted them; purged ones are not', async () => {
    const received = await createQueue(own.sqs, 'expired-received', { MessageRetentionPeriod: '60' });
    const swept = await createQueue(own.sqs, 'expired-swept', { MessageRetentionPeriod: '60' });
    const purged = await createQueue(own.sqs, 'expired-purged', { MessageRetentionPeriod: '60' });
    await sendTo(received, 3);
    await sendTo(swept, 2);
    await sendTo(purged, 4);
    await own.sqs.send(new PurgeQueueCommand({ QueueUrl: purged }));
    own.clock.advance(60_000);
    // The receive deletes the three it meets; the sweep the two, and the purged four without counting them.
    expect(await receive(own.sqs, received, { MaxNumberOfMessages: 10 })).toEqual([]);
    await own.shim.service.sweep();

    const families = parseExposition(await (await fetch(`${own.shim.adminUrl}/metrics`)).text());
    const expired = (queue: string) => sampleValue(families, `${METRICS_PREFIX}messages_expired_total`, { queue: nameOf(queue) });
    expect([expired(received), expired(swept), expired(purged)]).toEqual([3, 2, undefined]);
    const status = (await (await fetch(`${own.shim.adminUrl}/status`)).json()) as EdgeStatus;
    expect(Object.fromEntries(status.queues.map((queue) => [queue.name, queue.expired]))).toEqual({
      [nameOf(received)]: 3,
      [nameOf(swept)]: 2,
      [nameOf(purged)]: 0,
    });
    // One line per queue at the end of the sweep, at info: a standalone shim's retention is SQS's own.
    const logged = lines.map((line) => JSON.parse(line) as { level: number; queue?: string; expired?: number; oldestAgeSeconds?: number }).filter((entry) => entry.expired !== undefined);
    expect(logged.map(({ level, queue, expired: count }) => ({ level, queue, count }))).toEqual([
      { level: 30, queue: nameOf(received), count: 3 },
      { level: 30, queue: nameOf(swept), count: 2 },
    ]);
    for (const entry of logged) expect(entry.oldestAgeSeconds).toBeGreaterThanOrEqual(60);
  });
});
