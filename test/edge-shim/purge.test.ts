import { DeleteMessageCommand, PurgeQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { counts, createQueue, receive } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// PurgeQueue per the SQS API Reference: it deletes the messages that were in the queue (in flight
// and delayed ones too); messages sent after it are kept; a second purge within 60 seconds answers
// PurgeQueueInProgress.

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim({ sweepIntervalMs: 3_600_000 });
});
afterAll(() => t?.close());

const purge = (queue: string) => t.sqs.send(new PurgeQueueCommand({ QueueUrl: queue }));
const sendOne = (queue: string, body: string, extra: Record<string, unknown> = {}) =>
  t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: body, ...extra }));

const storedWithBody = (body: string) => t.storedRows('messages', { column: 'body', value: body });

it('removes visible, in-flight and delayed messages at once, and keeps those sent after', async () => {
  const queue = await createQueue(t.sqs, 'purge');
  await sendOne(queue, 'visible');
  await sendOne(queue, 'in flight');
  await sendOne(queue, 'delayed', { DelaySeconds: 60 });
  const [inFlight] = await receive(t.sqs, queue, { VisibilityTimeout: 1 });
  await purge(queue);
  expect(await counts(t.sqs, queue)).toEqual({ visible: 0, notVisible: 0, delayed: 0 });
  await sendOne(queue, 'after the purge');
  // Not even once their visibility timeout or delay is over do the purged messages come back.
  t.clock.advance(60_000);
  expect((await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).map((message) => message.Body)).toEqual(['after the purge']);
  // Deleting a purged message is deleting a message already gone: it succeeds.
  await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: inFlight!.ReceiptHandle }));
});

it('allows one purge every 60 seconds', async () => {
  const queue = await createQueue(t.sqs, 'purge');
  await purge(queue);
  t.clock.advance(59_000);
  await expectSqsError(purge(queue), {
    name: 'PurgeQueueInProgress',
    code: 'AWS.SimpleQueueService.PurgeQueueInProgress',
    status: 403,
  });
  t.clock.advance(1_000);
  await purge(queue);
});

it('does not let a FIFO group stay locked by a purged message in flight', async () => {
  const queue = await createQueue(t.sqs, 'purge', { ContentBasedDeduplication: 'true' }, true);
  await sendOne(queue, 'before', { MessageGroupId: 'g' });
  await sendOne(queue, 'other group', { MessageGroupId: 'h' });
  expect(await receive(t.sqs, queue, { VisibilityTimeout: 600 })).toHaveLength(1);
  await purge(queue);
  await sendOne(queue, 'after', { MessageGroupId: 'g' });
  await sendOne(queue, 'other group after', { MessageGroupId: 'h' });
  const messages = await receive(t.sqs, queue, { MaxNumberOfMessages: 10 });
  expect(messages.map((message) => message.Body).sort()).toEqual(['after', 'other group after']);
});

it('wakes a long poll with a message sent after the purge', { timeout: 8_000 }, async () => {
  const queue = await createQueue(t.sqs, 'purge');
  await sendOne(queue, 'purged');
  await purge(queue);
  const polling = t.sqs.send(new ReceiveMessageCommand({ QueueUrl: queue, WaitTimeSeconds: 20 }));
  while (t.shim.service.waitingReceives < 1) await new Promise((resolve) => setTimeout(resolve, 5));
  await sendOne(queue, 'fresh');
  expect((await polling).Messages!.map((message) => message.Body)).toEqual(['fresh']);
});

it('has the sweeper delete purged messages', async () => {
  const queue = await createQueue(t.sqs, 'purge', { ContentBasedDeduplication: 'true' }, true);
  await sendOne(queue, 'swept away', { MessageGroupId: 'g' });
  await purge(queue);
  expect(await storedWithBody('swept away')).toBe(1);
  await t.shim.service.sweep();
  expect(await storedWithBody('swept away')).toBe(0);
  // After the sweep, the queue works and counts as before.
  await sendOne(queue, 'next', { MessageGroupId: 'g' });
  expect(await counts(t.sqs, queue)).toEqual({ visible: 1, notVisible: 0, delayed: 0 });
  expect((await receive(t.sqs, queue)).map((message) => message.Body)).toEqual(['next']);
});
