import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type TestShim, startTestShim } from '../helpers/shim.js';

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t.close());

it('round-trips a message through a standard queue with the AWS SDK', async () => {
  const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: 'smoke' }));
  const sent = await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'hello' }));
  const { Messages } = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }));
  expect(Messages).toHaveLength(1);
  expect(Messages![0]!.MessageId).toBe(sent.MessageId);
  expect(Messages![0]!.Body).toBe('hello');
  await t.sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: Messages![0]!.ReceiptHandle }));
  const after = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl }));
  expect(after.Messages ?? []).toHaveLength(0);
});
