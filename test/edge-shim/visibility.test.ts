import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { counts, createQueue, receive } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// Visibility timeout, ChangeMessageVisibility(Batch) and DeleteMessage(Batch) as the SQS API
// Reference and the Developer Guide ("Visibility timeout") describe them.

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t?.close());

async function queueWithMessage(attributes: Record<string, string> = {}, fifo = false) {
  const queue = await createQueue(t.sqs, 'visibility', fifo ? { ContentBasedDeduplication: 'true', ...attributes } : attributes, fifo);
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'payload', ...(fifo ? { MessageGroupId: 'g' } : {}) }));
  return queue;
}

const changeVisibility = (queue: string, receiptHandle: string | undefined, seconds: number) =>
  t.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds }));

describe('visibility timeout of a receive', () => {
  it('hides a received message for the queue VisibilityTimeout, then delivers it again', async () => {
    const queue = await queueWithMessage({ VisibilityTimeout: '30' });
    expect(await receive(t.sqs, queue)).toHaveLength(1);
    expect(await counts(t.sqs, queue)).toEqual({ visible: 0, notVisible: 1, delayed: 0 });
    t.clock.advance(29_000);
    expect(await receive(t.sqs, queue)).toEqual([]);
    t.clock.advance(1_000);
    const again = await receive(t.sqs, queue, { MessageSystemAttributeNames: ['ApproximateReceiveCount'] });
    expect(again.map((message) => message.Attributes!.ApproximateReceiveCount)).toEqual(['2']);
  });

  it('uses the VisibilityTimeout of the request over the queue default', async () => {
    const queue = await queueWithMessage({ VisibilityTimeout: '600' });
    await receive(t.sqs, queue, { VisibilityTimeout: 5 });
    t.clock.advance(5_000);
    expect(await receive(t.sqs, queue)).toHaveLength(1);
  });

  it('leaves a message visible when received with VisibilityTimeout 0', async () => {
    const queue = await queueWithMessage();
    const [first] = await receive(t.sqs, queue, { VisibilityTimeout: 0 });
    const [second] = await receive(t.sqs, queue, { VisibilityTimeout: 0 });
    expect(second!.MessageId).toBe(first!.MessageId);
    expect(second!.ReceiptHandle).not.toBe(first!.ReceiptHandle);
  });
});

describe('ChangeMessageVisibility', () => {
  it('counts the new timeout from the time of the call', async () => {
    const queue = await queueWithMessage({ VisibilityTimeout: '30' });
    const [message] = await receive(t.sqs, queue);
    t.clock.advance(20_000);
    await changeVisibility(queue, message!.ReceiptHandle, 60);
    t.clock.advance(59_000);
    expect(await receive(t.sqs, queue)).toEqual([]);
    t.clock.advance(1_000);
    expect(await receive(t.sqs, queue)).toHaveLength(1);
  });

  it('makes the message visible at once with VisibilityTimeout 0', async () => {
    const queue = await queueWithMessage();
    const [message] = await receive(t.sqs, queue);
    await changeVisibility(queue, message!.ReceiptHandle, 0);
    expect(await counts(t.sqs, queue)).toEqual({ visible: 1, notVisible: 0, delayed: 0 });
    expect(await receive(t.sqs, queue)).toHaveLength(1);
  });

  it('refuses to extend beyond 12 hours from the receive', async () => {
    const queue = await queueWithMessage();
    const [message] = await receive(t.sqs, queue, { VisibilityTimeout: 7200 });
    t.clock.advance(3_600_000);
    await expectSqsError(changeVisibility(queue, message!.ReceiptHandle, 43_200), {
      name: 'InvalidParameterValue',
      message: /VisibilityTimeout.*43200 seconds/,
    });
    // 1 hour gone: just under 11 hours more stays within 12 hours of the receive.
    await changeVisibility(queue, message!.ReceiptHandle, 39_599);
    t.clock.advance(39_598_000);
    expect(await receive(t.sqs, queue)).toEqual([]);
  });

  it('rejects a VisibilityTimeout outside 0 to 43200', async () => {
    const queue = await queueWithMessage();
    const [message] = await receive(t.sqs, queue);
    await expectSqsError(changeVisibility(queue, message!.ReceiptHandle, 43_201), { name: 'InvalidParameterValue' });
    await expectSqsError(changeVisibility(queue, message!.ReceiptHandle, -1), { name: 'InvalidParameterValue' });
  });

  it('answers MessageNotInflight once the visibility timeout ran out', async () => {
    const queue = await queueWithMessage();
    const [message] = await receive(t.sqs, queue, { VisibilityTimeout: 10 });
    t.clock.advance(10_000);
    await expectSqsError(changeVisibility(queue, message!.ReceiptHandle, 30), {
      name: 'MessageNotInflight',
      code: 'AWS.SimpleQueueService.MessageNotInflight',
    });
  });

  it('refuses the receipt handle of an earlier receive, and takes the latest', async () => {
    const queue = await queueWithMessage();
    const [first] = await receive(t.sqs, queue, { VisibilityTimeout: 10 });
    t.clock.advance(10_000);
    const [second] = await receive(t.sqs, queue, { VisibilityTimeout: 10 });
    await expectSqsError(changeVisibility(queue, first!.ReceiptHandle, 100), { name: 'InvalidParameterValue', message: /receipt handle has expired/ });
    await changeVisibility(queue, second!.ReceiptHandle, 100);
    t.clock.advance(99_000);
    expect(await receive(t.sqs, queue)).toEqual([]);
  });

  it('answers InvalidParameterValue for a deleted message and ReceiptHandleIsInvalid for a malformed handle', async () => {
    const queue = await queueWithMessage();
    const [message] = await receive(t.sqs, queue);
    await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: message!.ReceiptHandle }));
    await expectSqsError(changeVisibility(queue, message!.ReceiptHandle, 10), { name: 'InvalidParameterValue' });
    await expectSqsError(changeVisibility(queue, 'not-a-receipt-handle', 10), { name: 'ReceiptHandleIsInvalid' });
  });

  it('refuses a receipt handle of another queue', async () => {
    const queue = await queueWithMessage();
    const other = await queueWithMessage();
    const [message] = await receive(t.sqs, queue);
    await expectSqsError(changeVisibility(other, message!.ReceiptHandle, 10), { name: 'ReceiptHandleIsInvalid' });
  });

  it('changes each entry of a batch on its own, failing only the bad ones', async () => {
    const queue = await createQueue(t.sqs, 'visibility');
    for (const body of ['a', 'b']) await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: body }));
    const messages = await receive(t.sqs, queue, { MaxNumberOfMessages: 10 });
    expect(messages).toHaveLength(2);
    const { Successful, Failed } = await t.sqs.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queue,
        Entries: [
          { Id: 'first', ReceiptHandle: messages[0]!.ReceiptHandle, VisibilityTimeout: 0 },
          { Id: 'bad', ReceiptHandle: 'garbage', VisibilityTimeout: 0 },
          { Id: 'second', ReceiptHandle: messages[1]!.ReceiptHandle, VisibilityTimeout: 0 },
        ],
      }),
    );
    expect(Successful!.map((entry) => entry.Id)).toEqual(['first', 'second']);
    expect(Failed).toEqual([expect.objectContaining({ Id: 'bad', Code: 'ReceiptHandleIsInvalid', SenderFault: true })]);
    expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).toHaveLength(2);
  });
});

describe('DeleteMessage', () => {
  it('deletes a message; deleting it twice succeeds', async () => {
    const queue = await queueWithMessage();
    const [message] = await receive(t.sqs, queue);
    await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: message!.ReceiptHandle }));
    await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: message!.ReceiptHandle }));
    expect(await counts(t.sqs, queue)).toEqual({ visible: 0, notVisible: 0, delayed: 0 });
  });

  it('deletes a message of a standard queue even with the receipt handle of an earlier receive', async () => {
    const queue = await queueWithMessage();
    const [first] = await receive(t.sqs, queue, { VisibilityTimeout: 10 });
    t.clock.advance(10_000);
    await receive(t.sqs, queue, { VisibilityTimeout: 10 });
    await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: first!.ReceiptHandle }));
    expect(await counts(t.sqs, queue)).toEqual({ visible: 0, notVisible: 0, delayed: 0 });
  });

  it('refuses to delete a FIFO message whose visibility timeout ran out, and the message stays', async () => {
    const queue = await queueWithMessage({}, true);
    const [message] = await receive(t.sqs, queue, { VisibilityTimeout: 10 });
    t.clock.advance(10_000);
    await expectSqsError(t.sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: message!.ReceiptHandle })), {
      name: 'InvalidParameterValue',
      message: /receipt handle has expired/,
    });
    expect(await receive(t.sqs, queue)).toHaveLength(1);
  });

  it('answers ReceiptHandleIsInvalid for a malformed handle', async () => {
    const queue = await queueWithMessage();
    for (const handle of ['garbage', 'hf1.', 'hf1.!!!']) {
      await expectSqsError(t.sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: handle })), { name: 'ReceiptHandleIsInvalid' });
    }
  });

  it('deletes each entry of a batch on its own, failing only the bad ones', async () => {
    const queue = await createQueue(t.sqs, 'visibility');
    for (const body of ['a', 'b']) await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: body }));
    const messages = await receive(t.sqs, queue, { MaxNumberOfMessages: 10 });
    const { Successful, Failed } = await t.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queue,
        Entries: [
          { Id: 'a', ReceiptHandle: messages[0]!.ReceiptHandle },
          { Id: 'bad', ReceiptHandle: 'garbage' },
          { Id: 'b', ReceiptHandle: messages[1]!.ReceiptHandle },
        ],
      }),
    );
    expect(Successful!.map((entry) => entry.Id)).toEqual(['a', 'b']);
    expect(Failed).toEqual([expect.objectContaining({ Id: 'bad', Code: 'ReceiptHandleIsInvalid', SenderFault: true })]);
    expect(await counts(t.sqs, queue)).toEqual({ visible: 0, notVisible: 0, delayed: 0 });
  });
});
