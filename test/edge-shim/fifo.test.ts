import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { counts, createQueue, receive } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// FIFO semantics as the SQS Developer Guide describes them ("FIFO queue delivery logic"): strict
// order within a message group, no message of a group received while another of it is in flight,
// as many messages of one group per receive as possible, other groups unaffected.

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t?.close());

const fifoQueue = (attributes: Record<string, string> = {}) =>
  createQueue(t.sqs, 'fifo', { ContentBasedDeduplication: 'true', ...attributes }, true);

async function send(sqs: SQSClient, queueUrl: string, group: string, body: string) {
  return sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageGroupId: group, MessageBody: body }));
}

const bodies = (messages: Message[]) => messages.map((message) => message.Body);

async function deleteAll(queueUrl: string, messages: Message[]) {
  for (const message of messages) await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
}

describe('order', () => {
  it('delivers a group in send order across receives, with increasing sequence numbers', async () => {
    const queue = await fifoQueue();
    const sent = [];
    for (let batch = 0; batch < 3; batch++) {
      const entries = Array.from({ length: 8 }, (_, index) => ({ Id: `m${index}`, MessageGroupId: 'g', MessageBody: `body-${batch * 8 + index}` }));
      const { Successful, Failed } = await t.sqs.send(new SendMessageBatchCommand({ QueueUrl: queue, Entries: entries }));
      expect(Failed ?? []).toEqual([]);
      sent.push(...Successful!);
    }
    const sequence = sent.map((entry) => BigInt(entry.SequenceNumber!));
    for (let index = 1; index < sequence.length; index++) expect(sequence[index]! > sequence[index - 1]!).toBe(true);

    const received: Message[] = [];
    for (;;) {
      const messages = await receive(t.sqs, queue, { MaxNumberOfMessages: 7, MessageSystemAttributeNames: ['SequenceNumber'] });
      if (messages.length === 0) break;
      received.push(...messages);
      await deleteAll(queue, messages);
    }
    expect(bodies(received)).toEqual(Array.from({ length: 24 }, (_, index) => `body-${index}`));
    expect(received.map((message) => message.Attributes!.SequenceNumber)).toEqual(sent.map((entry) => entry.SequenceNumber));
  });

  it('returns as many messages of one group as possible before the next group, each in order', async () => {
    const queue = await fifoQueue();
    for (const [group, body] of [['a', 'a1'], ['b', 'b1'], ['a', 'a2'], ['b', 'b2'], ['a', 'a3'], ['b', 'b3']]) {
      await send(t.sqs, queue, group!, body!);
    }
    const messages = await receive(t.sqs, queue, { MaxNumberOfMessages: 10 });
    expect(bodies(messages)).toEqual(['a1', 'a2', 'a3', 'b1', 'b2', 'b3']);
  });

  it('keeps the order of a group when a receive asks for fewer messages than it holds', async () => {
    const queue = await fifoQueue();
    for (const body of ['1', '2', '3', '4', '5']) await send(t.sqs, queue, 'g', body);
    const first = await receive(t.sqs, queue, { MaxNumberOfMessages: 2 });
    expect(bodies(first)).toEqual(['1', '2']);
    await deleteAll(queue, first);
    expect(bodies(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 }))).toEqual(['3', '4', '5']);
  });
});

describe('message group lock', () => {
  it('receives nothing more of a group while one of its messages is in flight; other groups carry on', async () => {
    const queue = await fifoQueue();
    await send(t.sqs, queue, 'a', 'a1');
    await send(t.sqs, queue, 'a', 'a2');
    await send(t.sqs, queue, 'b', 'b1');
    await send(t.sqs, queue, 'b', 'b2');

    const first = await receive(t.sqs, queue, { MaxNumberOfMessages: 1 });
    expect(bodies(first)).toEqual(['a1']);
    // a2 is available but its group is locked by a1; group b is untouched.
    const second = await receive(t.sqs, queue, { MaxNumberOfMessages: 10 });
    expect(bodies(second)).toEqual(['b1', 'b2']);
    expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).toEqual([]);

    await deleteAll(queue, first);
    expect(bodies(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 }))).toEqual(['a2']);
  });

  it('counts the messages behind a lock as visible', async () => {
    const queue = await fifoQueue();
    await send(t.sqs, queue, 'a', 'a1');
    await send(t.sqs, queue, 'a', 'a2');
    await receive(t.sqs, queue);
    expect(await counts(t.sqs, queue)).toEqual({ visible: 1, notVisible: 1, delayed: 0 });
  });

  it('unlocks the group when the visibility timeout runs out, and the same message comes first again', async () => {
    const queue = await fifoQueue({ VisibilityTimeout: '30' });
    await send(t.sqs, queue, 'a', 'a1');
    await send(t.sqs, queue, 'a', 'a2');
    expect(bodies(await receive(t.sqs, queue))).toEqual(['a1']);
    t.clock.advance(29_000);
    expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).toEqual([]);
    t.clock.advance(1_000);
    const again = await receive(t.sqs, queue, { MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['ApproximateReceiveCount'] });
    expect(bodies(again)).toEqual(['a1', 'a2']);
    expect(again.map((message) => message.Attributes!.ApproximateReceiveCount)).toEqual(['2', '1']);
  });

  it('keeps the group locked while any message received with it is still in flight', async () => {
    const queue = await fifoQueue();
    for (const body of ['1', '2', '3']) await send(t.sqs, queue, 'g', body);
    const taken = await receive(t.sqs, queue, { MaxNumberOfMessages: 2 });
    expect(bodies(taken)).toEqual(['1', '2']);
    await t.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue, ReceiptHandle: taken[0]!.ReceiptHandle, VisibilityTimeout: 0 }));
    // '1' is visible again, but '2' of the same group is in flight.
    expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).toEqual([]);
    await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: taken[1]!.ReceiptHandle }));
    expect(bodies(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 }))).toEqual(['1', '3']);
  });

  it('makes a message visible at once with ChangeMessageVisibility 0, still first in its group', async () => {
    const queue = await fifoQueue();
    await send(t.sqs, queue, 'g', 'first');
    await send(t.sqs, queue, 'g', 'second');
    const [message] = await receive(t.sqs, queue);
    await t.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue, ReceiptHandle: message!.ReceiptHandle, VisibilityTimeout: 0 }));
    expect(bodies(await receive(t.sqs, queue, { MaxNumberOfMessages: 1 }))).toEqual(['first']);
  });
});

describe('message group id', () => {
  // "If you do not provide a MessageGroupId when sending a message to a FIFO queue, the action fails."
  it('fails a whole SendMessageBatch in which one entry has none, and sends none of it', async () => {
    const queue = await fifoQueue();
    const entries = [
      { Id: 'grouped', MessageGroupId: 'g', MessageBody: 'first' },
      { Id: 'ungrouped', MessageBody: 'second' },
    ];
    await expectSqsError(t.sqs.send(new SendMessageBatchCommand({ QueueUrl: queue, Entries: entries })), {
      name: 'MissingParameter',
      message: /MessageGroupId/,
    });
    expect(await counts(t.sqs, queue)).toEqual({ visible: 0, notVisible: 0, delayed: 0 });
  });
});

describe('delay', () => {
  it('rejects a per-message DelaySeconds on a FIFO queue', async () => {
    const queue = await fifoQueue();
    await expectSqsError(t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageGroupId: 'g', MessageBody: 'x', DelaySeconds: 5 })), {
      name: 'InvalidParameterValue',
    });
  });

  it('honours the queue DelaySeconds, and keeps order behind a delayed message', async () => {
    const queue = await fifoQueue({ DelaySeconds: '10' });
    await send(t.sqs, queue, 'g', 'one');
    t.clock.advance(5_000);
    await send(t.sqs, queue, 'g', 'two');
    expect(await counts(t.sqs, queue)).toEqual({ visible: 0, notVisible: 0, delayed: 2 });
    expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).toEqual([]);
    t.clock.advance(5_000);
    expect(bodies(await receive(t.sqs, queue, { MaxNumberOfMessages: 10, VisibilityTimeout: 0 }))).toEqual(['one']);
    t.clock.advance(5_000);
    expect(bodies(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 }))).toEqual(['one', 'two']);
  });
  it('applies a changed queue DelaySeconds to the messages already in a FIFO queue, but not a standard one', async () => {
    const fifo = await fifoQueue({ DelaySeconds: '60' });
    const standard = await createQueue(t.sqs, 'fifo-standard', { DelaySeconds: '60' });
    await send(t.sqs, fifo, 'g', 'was delayed');
    await t.sqs.send(new SendMessageCommand({ QueueUrl: standard, MessageBody: 'stays delayed' }));
    for (const queue of [fifo, standard]) await t.sqs.send(new SetQueueAttributesCommand({ QueueUrl: queue, Attributes: { DelaySeconds: '0' } }));
    expect(bodies(await receive(t.sqs, fifo, { VisibilityTimeout: 0 }))).toEqual(['was delayed']);
    expect(await receive(t.sqs, standard)).toEqual([]);

    // A longer delay holds back a message sent before it that was never received.
    await send(t.sqs, fifo, 'h', 'now delayed');
    await t.sqs.send(new SetQueueAttributesCommand({ QueueUrl: fifo, Attributes: { DelaySeconds: '30' } }));
    expect(await counts(t.sqs, fifo)).toEqual({ visible: 1, notVisible: 0, delayed: 1 });
    expect(bodies(await receive(t.sqs, fifo, { MaxNumberOfMessages: 10, VisibilityTimeout: 0 }))).toEqual(['was delayed']);
    t.clock.advance(30_000);
    expect(bodies(await receive(t.sqs, fifo, { MaxNumberOfMessages: 10 }))).toEqual(['was delayed', 'now delayed']);
  });
});

describe('ReceiveRequestAttemptId', () => {
  async function queueWithTwo() {
    const queue = await fifoQueue();
    await send(t.sqs, queue, 'g', 'one');
    await send(t.sqs, queue, 'g', 'two');
    return queue;
  }

  it('returns the same messages and receipt handles to a retry, and restarts their visibility timeout', async () => {
    const queue = await queueWithTwo();
    const first = await receive(t.sqs, queue, { MaxNumberOfMessages: 10, VisibilityTimeout: 30, ReceiveRequestAttemptId: 'attempt-1' });
    expect(bodies(first)).toEqual(['one', 'two']);
    t.clock.advance(20_000);
    const retry = await receive(t.sqs, queue, { MaxNumberOfMessages: 10, VisibilityTimeout: 30, ReceiveRequestAttemptId: 'attempt-1' });
    expect(retry.map((message) => [message.MessageId, message.ReceiptHandle])).toEqual(first.map((message) => [message.MessageId, message.ReceiptHandle]));
    // The retry at 20 s restarted the 30 s: still invisible at 40 s, visible at 50 s.
    t.clock.advance(20_000);
    expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).toEqual([]);
    t.clock.advance(10_000);
    expect(bodies(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 }))).toEqual(['one', 'two']);
  });

  it('does not repeat a receive once one of its messages was deleted', async () => {
    const queue = await queueWithTwo();
    const first = await receive(t.sqs, queue, { MaxNumberOfMessages: 10, ReceiveRequestAttemptId: 'attempt-2' });
    await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: first[0]!.ReceiptHandle }));
    // A new receive: 'two' is still in flight, so its group is locked.
    expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10, ReceiveRequestAttemptId: 'attempt-2' })).toEqual([]);
  });

  it('does not repeat a receive once the visibility of one of its messages was changed', async () => {
    const queue = await queueWithTwo();
    const first = await receive(t.sqs, queue, { MaxNumberOfMessages: 10, ReceiveRequestAttemptId: 'attempt-3' });
    await t.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue, ReceiptHandle: first[1]!.ReceiptHandle, VisibilityTimeout: 100 }));
    expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10, ReceiveRequestAttemptId: 'attempt-3' })).toEqual([]);
  });

  it('does not repeat a receive once the visibility timeout ran out; the retry is a new receive', async () => {
    const queue = await queueWithTwo();
    const first = await receive(t.sqs, queue, { MaxNumberOfMessages: 10, VisibilityTimeout: 10, ReceiveRequestAttemptId: 'attempt-4' });
    t.clock.advance(10_000);
    const retry = await receive(t.sqs, queue, { MaxNumberOfMessages: 10, ReceiveRequestAttemptId: 'attempt-4' });
    expect(bodies(retry)).toEqual(['one', 'two']);
    expect(retry[0]!.ReceiptHandle).not.toBe(first[0]!.ReceiptHandle);
  });

  it('forgets an attempt id after 5 minutes, and the sweeper reclaims it', async () => {
    const queue = await queueWithTwo();
    await receive(t.sqs, queue, { MaxNumberOfMessages: 10, VisibilityTimeout: 900, ReceiveRequestAttemptId: 'attempt-5' });
    const remembered = () => t.storedRows('receive_attempts', { column: 'attempt_id', value: 'attempt-5' });
    expect(await remembered()).toBe(1);
    t.clock.advance(5 * 60_000);
    expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10, ReceiveRequestAttemptId: 'attempt-5' })).toEqual([]);
    await t.shim.service.sweep();
    expect(await remembered()).toBe(0);
  });

  it('rejects an attempt id that is not 1 to 128 alphanumeric or punctuation characters', async () => {
    const queue = await fifoQueue();
    for (const attempt of ['has space', 'x'.repeat(129)]) {
      await expectSqsError(t.sqs.send(new ReceiveMessageCommand({ QueueUrl: queue, ReceiveRequestAttemptId: attempt })), { name: 'InvalidParameterValue' });
    }
  });
});

describe('high throughput mode', () => {
  it('keeps order within each group with FifoThroughputLimit perMessageGroupId', async () => {
    const queue = await fifoQueue({ DeduplicationScope: 'messageGroup', FifoThroughputLimit: 'perMessageGroupId' });
    for (let index = 0; index < 4; index++) {
      await send(t.sqs, queue, 'x', `x${index}`);
      await send(t.sqs, queue, 'y', `y${index}`);
    }
    const messages = await receive(t.sqs, queue, { MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['MessageGroupId'] });
    const byGroup = (group: string) => messages.filter((message) => message.Attributes!.MessageGroupId === group).map((message) => message.Body);
    expect(byGroup('x')).toEqual(['x0', 'x1', 'x2', 'x3']);
    expect(byGroup('y')).toEqual(['y0', 'y1', 'y2', 'y3']);
  });
});
