import { GetQueueAttributesCommand, GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { defaultAttributes } from '../../edge-shim/src/sqs/queue-attributes.js';
import { queueByUrl } from '../../edge-shim/src/sqs/queues.js';
import { call } from '../../edge-shim/src/sqs/storage/step.js';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { createQueue } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// An operation that fails after writing undoes its writes (its savepoint rolls back); the queues
// the server keeps in memory must be undone with them, or they say what the database does not.
let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t?.close());

const failing = new Error('fails after its writes');

it('a queue change rolled back is not kept in memory', async () => {
  const url = await createQueue(t.sqs, 'rollback');
  await expect(
    t.shim.service.transact(t.shim.url, function* (context) {
      const queue = yield* queueByUrl(context.queues, url);
      yield* call(context.queues.update(queue, { attributes: { ...queue.attributes, VisibilityTimeout: '99' }, modifiedAt: context.now }));
      throw failing;
    }),
  ).rejects.toBe(failing);
  const { Attributes } = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['VisibilityTimeout'] }));
  expect(Attributes).toEqual({ VisibilityTimeout: '30' });
});

it('a queue creation rolled back leaves no queue behind', async () => {
  await expect(
    t.shim.service.transact(t.shim.url, function* (context) {
      yield* call(context.queues.create('rolled-back', false, defaultAttributes(false), {}, context.now));
      throw failing;
    }),
  ).rejects.toBe(failing);
  await expectSqsError(t.sqs.send(new GetQueueUrlCommand({ QueueName: 'rolled-back' })), { name: 'QueueDoesNotExist', code: 'AWS.SimpleQueueService.NonExistentQueue' });
});

it('a queue deletion rolled back leaves the queue usable', async () => {
  const url = await createQueue(t.sqs, 'rollback');
  await expect(
    t.shim.service.transact(t.shim.url, function* (context) {
      yield* call(context.queues.remove(yield* queueByUrl(context.queues, url), context.now));
      throw failing;
    }),
  ).rejects.toBe(failing);
  const { MessageId } = await t.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'still there' }));
  expect(MessageId).toBeTruthy();
});
