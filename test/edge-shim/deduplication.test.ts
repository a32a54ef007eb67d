import { createHash } from 'node:crypto';
import { CreateQueueCommand, DeleteMessageCommand, DeleteQueueCommand, SendMessageCommand, type SendMessageCommandInput } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { counts, createQueue, receive } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// FIFO deduplication as the SQS API Reference (SendMessage, MessageDeduplicationId) and the
// Developer Guide ("FIFO queue key terms") describe it: a message sent with a deduplication id seen
// in the last 5 minutes is accepted but not delivered, even if the first one was already deleted.

const INTERVAL_MS = 5 * 60_000;

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t?.close());

const send = (input: Omit<SendMessageCommandInput, 'MessageGroupId'> & { MessageGroupId?: string }) =>
  t.sqs.send(new SendMessageCommand({ MessageGroupId: 'g', ...input }));

it('accepts a duplicate with the first message id and sequence number, and delivers one copy', async () => {
  const queue = await createQueue(t.sqs, 'dedup', {}, true);
  const first = await send({ QueueUrl: queue, MessageBody: 'one', MessageDeduplicationId: 'd1' });
  const duplicate = await send({ QueueUrl: queue, MessageBody: 'other body', MessageDeduplicationId: 'd1' });
  expect(duplicate.MessageId).toBe(first.MessageId);
  expect(duplicate.SequenceNumber).toBe(first.SequenceNumber);
  expect(await counts(t.sqs, queue)).toEqual({ visible: 1, notVisible: 0, delayed: 0 });
  const messages = await receive(t.sqs, queue, { MaxNumberOfMessages: 10 });
  expect(messages.map((message) => message.Body)).toEqual(['one']);
});

it('keeps deduplicating after the message was received and deleted', async () => {
  const queue = await createQueue(t.sqs, 'dedup', {}, true);
  const first = await send({ QueueUrl: queue, MessageBody: 'one', MessageDeduplicationId: 'd1' });
  const [message] = await receive(t.sqs, queue);
  await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: message!.ReceiptHandle }));
  const again = await send({ QueueUrl: queue, MessageBody: 'one', MessageDeduplicationId: 'd1' });
  expect(again.MessageId).toBe(first.MessageId);
  expect(await receive(t.sqs, queue)).toEqual([]);
});

it('accepts the same deduplication id as a new message once the 5-minute interval has passed', async () => {
  const queue = await createQueue(t.sqs, 'dedup', {}, true);
  const first = await send({ QueueUrl: queue, MessageBody: 'one', MessageDeduplicationId: 'd1' });
  t.clock.advance(INTERVAL_MS - 1_000);
  expect((await send({ QueueUrl: queue, MessageBody: 'one', MessageDeduplicationId: 'd1' })).MessageId).toBe(first.MessageId);
  t.clock.advance(1_000);
  const later = await send({ QueueUrl: queue, MessageBody: 'one', MessageDeduplicationId: 'd1' });
  expect(later.MessageId).not.toBe(first.MessageId);
  expect(BigInt(later.SequenceNumber!) > BigInt(first.SequenceNumber!)).toBe(true);
  expect((await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).map((message) => message.MessageId)).toEqual([first.MessageId, later.MessageId]);
});

it('deduplicates by the SHA-256 of the body with ContentBasedDeduplication, and an explicit id overrides it', async () => {
  const queue = await createQueue(t.sqs, 'dedup', { ContentBasedDeduplication: 'true' }, true);
  const first = await send({ QueueUrl: queue, MessageBody: 'same body' });
  expect((await send({ QueueUrl: queue, MessageBody: 'same body' })).MessageId).toBe(first.MessageId);
  // Attributes are not part of the content.
  const withAttributes = await send({
    QueueUrl: queue,
    MessageBody: 'same body',
    MessageAttributes: { kind: { DataType: 'String', StringValue: 'x' } },
  });
  expect(withAttributes.MessageId).toBe(first.MessageId);
  // An explicit id equal to the generated one is a duplicate; a different explicit id is not.
  const sha256 = createHash('sha256').update('same body').digest('hex');
  expect((await send({ QueueUrl: queue, MessageBody: 'another body', MessageDeduplicationId: sha256 })).MessageId).toBe(first.MessageId);
  const explicit = await send({ QueueUrl: queue, MessageBody: 'same body', MessageDeduplicationId: 'explicit' });
  expect(explicit.MessageId).not.toBe(first.MessageId);
  const messages = await receive(t.sqs, queue, { MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['MessageDeduplicationId'] });
  expect(messages.map((message) => message.Attributes!.MessageDeduplicationId)).toEqual([sha256, 'explicit']);
});

it('deduplicates across the queue by default, within each message group with DeduplicationScope messageGroup', async () => {
  const perQueue = await createQueue(t.sqs, 'dedup', {}, true);
  const perGroup = await createQueue(t.sqs, 'dedup', { DeduplicationScope: 'messageGroup' }, true);
  for (const queue of [perQueue, perGroup]) {
    await send({ QueueUrl: queue, MessageGroupId: 'a', MessageBody: 'a', MessageDeduplicationId: 'same' });
    await send({ QueueUrl: queue, MessageGroupId: 'b', MessageBody: 'b', MessageDeduplicationId: 'same' });
    await send({ QueueUrl: queue, MessageGroupId: 'b', MessageBody: 'b again', MessageDeduplicationId: 'same' });
  }
  expect((await counts(t.sqs, perQueue)).visible).toBe(1);
  expect((await receive(t.sqs, perGroup, { MaxNumberOfMessages: 10 })).map((message) => message.Body)).toEqual(['a', 'b']);
});

it('requires a deduplication id without ContentBasedDeduplication, and refuses one on a standard queue', async () => {
  const fifo = await createQueue(t.sqs, 'dedup', {}, true);
  await expectSqsError(send({ QueueUrl: fifo, MessageBody: 'x' }), { name: 'InvalidParameterValue' });
  const standard = await createQueue(t.sqs, 'dedup-standard');
  await expectSqsError(t.sqs.send(new SendMessageCommand({ QueueUrl: standard, MessageBody: 'x', MessageDeduplicationId: 'd' })), {
    name: 'InvalidParameterValue',
  });
});

it('reclaims deduplication ids once their interval has passed', async () => {
  const queue = await createQueue(t.sqs, 'dedup', {}, true);
  await send({ QueueUrl: queue, MessageBody: 'one', MessageDeduplicationId: 'reclaimed' });
  const remembered = () => t.storedRows('deduplication', { column: 'deduplication_id', value: 'reclaimed' });
  await t.shim.service.sweep();
  expect(await remembered()).toBe(1);
  t.clock.advance(INTERVAL_MS);
  await t.shim.service.sweep();
  expect(await remembered()).toBe(0);
});

it('does not carry deduplication ids over to a queue created again under the same name', async () => {
  const create = () => t.sqs.send(new CreateQueueCommand({ QueueName: 'dedup-recreated.fifo', Attributes: { FifoQueue: 'true' } }));
  const { QueueUrl: first } = await create();
  const before = await send({ QueueUrl: first, MessageBody: 'one', MessageDeduplicationId: 'again' });
  await t.sqs.send(new DeleteQueueCommand({ QueueUrl: first }));
  t.clock.advance(61_000); // past the 60 seconds before a deleted name can be used again, within the 5-minute interval
  const { QueueUrl: second } = await create();
  const after = await send({ QueueUrl: second!, MessageBody: 'two', MessageDeduplicationId: 'again' });
  expect(after.MessageId).not.toBe(before.MessageId);
  expect((await receive(t.sqs, second!)).map((message) => message.Body)).toEqual(['two']);
});
