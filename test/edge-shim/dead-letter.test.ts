import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ListDeadLetterSourceQueuesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejectionOf } from '../helpers/sqs-errors.js';
import { counts } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t.close());

const arn = (name: string) => `arn:aws:sqs:us-east-1:000000000000:${name}`;
const redrive = (target: string, maxReceiveCount: number | string) =>
  JSON.stringify({ deadLetterTargetArn: arn(target), maxReceiveCount });

async function queue(name: string, Attributes: Record<string, string> = {}): Promise<string> {
  const fifo = name.endsWith('.fifo') ? { FifoQueue: 'true', ContentBasedDeduplication: 'true' } : {};
  return (await t.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { ...fifo, ...Attributes } }))).QueueUrl!;
}

async function receive(QueueUrl: string, max = 10): Promise<Message[]> {
  const { Messages } = await t.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl,
      MaxNumberOfMessages: max,
      VisibilityTimeout: 0,
      MessageSystemAttributeNames: ['All'],
      MessageAttributeNames: ['All'],
    }),
  );
  return Messages ?? [];
}

async function count(QueueUrl: string): Promise<number> {
  const { visible, notVisible } = await counts(t.sqs, QueueUrl);
  return visible + notVisible;
}

describe('dead-lettering on receive, standard queues', () => {
  it('moves a message once its receive count would exceed maxReceiveCount, keeping id, body, attributes and SentTimestamp', async () => {
    const dlq = await queue('std-dlq');
    const source = await queue('std-source', { RedrivePolicy: redrive('std-dlq', 2) });
    const sent = await t.sqs.send(
      new SendMessageCommand({
        QueueUrl: source,
        MessageBody: 'poison',
        MessageAttributes: { kind: { DataType: 'String', StringValue: 'test' } },
      }),
    );
    const first = await receive(source);
    t.clock.advance(1000);
    const second = await receive(source);
    expect([first, second].map((messages) => messages.map((message) => message.Attributes!.ApproximateReceiveCount))).toEqual([['1'], ['2']]);
    expect(await count(dlq)).toBe(0);

    t.clock.advance(1000);
    expect(await receive(source)).toEqual([]);
    expect(await count(source)).toBe(0);
    const [dead] = await receive(dlq);
    expect(dead!.MessageId).toBe(sent.MessageId);
    expect(dead!.Body).toBe('poison');
    expect(dead!.MessageAttributes).toEqual({ kind: { DataType: 'String', StringValue: 'test' } });
    expect(dead!.Attributes!.SentTimestamp).toBe(first[0]!.Attributes!.SentTimestamp);
    expect(dead!.Attributes!.DeadLetterQueueSourceArn).toBe(arn('std-source'));
  });

  it('dead-letters only the messages that reached the limit and still returns the others', async () => {
    await queue('std-mixed-dlq');
    const source = await queue('std-mixed', { RedrivePolicy: redrive('std-mixed-dlq', 1) });
    await t.sqs.send(new SendMessageCommand({ QueueUrl: source, MessageBody: 'old' }));
    await receive(source);
    await t.sqs.send(new SendMessageCommand({ QueueUrl: source, MessageBody: 'new' }));
    expect((await receive(source)).map((message) => message.Body)).toEqual(['new']);
  });

  it('keeps the original enqueue time for retention in a standard dead-letter queue', async () => {
    const dlq = await queue('std-retention-dlq', { MessageRetentionPeriod: '120' });
    const source = await queue('std-retention', { RedrivePolicy: redrive('std-retention-dlq', 1) });
    await t.sqs.send(new SendMessageCommand({ QueueUrl: source, MessageBody: 'ages' }));
    await receive(source);
    t.clock.advance(100_000);
    expect(await receive(source)).toEqual([]); // moved now, 100 s after it was sent
    expect(await count(dlq)).toBe(1);
    t.clock.advance(30_000); // 130 s after it was sent: past the dead-letter queue's 120 s
    expect(await receive(dlq)).toEqual([]);
    expect(await count(dlq)).toBe(0);
  });

  it('leaves messages where they are while the dead-letter queue is gone from the policy', async () => {
    await queue('std-removed-dlq');
    const source = await queue('std-removed', { RedrivePolicy: redrive('std-removed-dlq', 1) });
    await t.sqs.send(new SendMessageCommand({ QueueUrl: source, MessageBody: 'stays' }));
    await receive(source);
    await t.sqs.send(new SetQueueAttributesCommand({ QueueUrl: source, Attributes: { RedrivePolicy: '' } }));
    const again = await receive(source);
    expect(again.map((message) => [message.Body, message.Attributes!.ApproximateReceiveCount])).toEqual([['stays', '2']]);
  });
});

describe('dead-lettering on receive, FIFO queues', () => {
  it('moves the head of a group and goes on with the next message of the group', async () => {
    const dlq = await queue('fifo-dlq.fifo');
    const source = await queue('fifo-source.fifo', { RedrivePolicy: redrive('fifo-dlq.fifo', 1) });
    const first = await t.sqs.send(
      new SendMessageCommand({ QueueUrl: source, MessageBody: 'first', MessageGroupId: 'g', MessageDeduplicationId: 'dedup-1' }),
    );
    await t.sqs.send(new SendMessageCommand({ QueueUrl: source, MessageBody: 'second', MessageGroupId: 'g' }));

    expect((await receive(source, 1)).map((message) => message.Body)).toEqual(['first']);
    t.clock.advance(1000);
    expect((await receive(source, 1)).map((message) => message.Body)).toEqual(['second']);

    const [dead] = await receive(dlq);
    expect(dead!.MessageId).toBe(first.MessageId);
    expect(dead!.Body).toBe('first');
    expect(dead!.Attributes!.MessageGroupId).toBe('g');
    expect(dead!.Attributes!.DeadLetterQueueSourceArn).toBe(arn('fifo-source.fifo'));
    // SQS replaces the deduplication id with the message id when it dead-letters a FIFO message.
    expect(dead!.Attributes!.MessageDeduplicationId).toBe(first.MessageId);
    expect(dead!.Attributes!.SequenceNumber).toMatch(/^\d{20}$/);
  });

  it('restarts the retention period in a FIFO dead-letter queue', async () => {
    const dlq = await queue('fifo-retention-dlq.fifo', { MessageRetentionPeriod: '120' });
    const source = await queue('fifo-retention.fifo', { RedrivePolicy: redrive('fifo-retention-dlq.fifo', 1) });
    await t.sqs.send(new SendMessageCommand({ QueueUrl: source, MessageBody: 'ages', MessageGroupId: 'g' }));
    await receive(source);
    t.clock.advance(100_000);
    expect(await receive(source)).toEqual([]);
    t.clock.advance(30_000); // 130 s after it was sent, 30 s after it was moved
    expect(await count(dlq)).toBe(1);
    t.clock.advance(91_000); // 121 s after it was moved
    expect(await receive(dlq)).toEqual([]);
    expect(await count(dlq)).toBe(0);
  });
});

describe('RedrivePolicy and RedriveAllowPolicy', () => {
  const create = (QueueName: string, Attributes: Record<string, string>) => t.sqs.send(new CreateQueueCommand({ QueueName, Attributes }));

  it('accepts maxReceiveCount from 1 to 1000, as a number or a string', async () => {
    await queue('rp-target');
    await create('rp-one', { RedrivePolicy: redrive('rp-target', 1) });
    await create('rp-thousand', { RedrivePolicy: redrive('rp-target', '1000') });
    for (const bad of [0, 1001, 2.5, 'five']) {
      const error = await rejectionOf(create('rp-bad', { RedrivePolicy: redrive('rp-target', bad) }));
      expect(error.name).toBe('InvalidParameterValue');
    }
    const error = await rejectionOf(create('rp-bad', { RedrivePolicy: redrive('rp-target', 0) }));
    expect(error.message).toContain('Invalid value for maxReceiveCount: 0, valid values are from 1 to 1000 both inclusive.');
  });

  it('requires both attributes and no others', async () => {
    await queue('rp-fields-target');
    const missingCount = await rejectionOf(create('rp-fields', { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn('rp-fields-target') }) }));
    expect(missingCount.message).toContain('Redrive policy does not contain mandatory attribute: maxReceiveCount.');
    const missingArn = await rejectionOf(create('rp-fields', { RedrivePolicy: JSON.stringify({ maxReceiveCount: 3 }) }));
    expect(missingArn.message).toContain('Redrive policy does not contain mandatory attribute: deadLetterTargetArn.');
    const extra = await rejectionOf(
      create('rp-fields', { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn('rp-fields-target'), maxReceiveCount: 3, other: 1 }) }),
    );
    expect(extra.name).toBe('InvalidParameterValue');
  });

  it('requires an existing target of the same queue type', async () => {
    await queue('rp-standard');
    await queue('rp-fifo.fifo');
    const missing = await rejectionOf(create('rp-missing', { RedrivePolicy: redrive('rp-nowhere', 3) }));
    expect(missing.message).toContain('Dead letter target does not exist.');
    const fifoToStandard = await rejectionOf(create('rp-mismatch.fifo', { FifoQueue: 'true', RedrivePolicy: redrive('rp-standard', 3) }));
    expect(fifoToStandard.name).toBe('InvalidParameterValue');
    const standardToFifo = await rejectionOf(create('rp-mismatch', { RedrivePolicy: redrive('rp-fifo.fifo', 3) }));
    expect(standardToFifo.name).toBe('InvalidParameterValue');
    const notSqs = await rejectionOf(
      create('rp-sns', { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: 'arn:aws:sns:us-east-1:000000000000:topic', maxReceiveCount: 3 }) }),
    );
    expect(notSqs.name).toBe('InvalidParameterValue');
  });

  it('lets a dead-letter queue choose its sources with RedriveAllowPolicy', async () => {
    await queue('rap-deny', { RedriveAllowPolicy: JSON.stringify({ redrivePermission: 'denyAll' }) });
    expect((await rejectionOf(create('rap-src-1', { RedrivePolicy: redrive('rap-deny', 3) }))).name).toBe('InvalidParameterValue');

    await queue('rap-by-queue', { RedriveAllowPolicy: JSON.stringify({ redrivePermission: 'byQueue', sourceQueueArns: [arn('rap-src-2')] }) });
    await create('rap-src-2', { RedrivePolicy: redrive('rap-by-queue', 3) });
    expect((await rejectionOf(create('rap-src-3', { RedrivePolicy: redrive('rap-by-queue', 3) }))).name).toBe('InvalidParameterValue');

    await queue('rap-allow', { RedriveAllowPolicy: JSON.stringify({ redrivePermission: 'allowAll' }) });
    await create('rap-src-4', { RedrivePolicy: redrive('rap-allow', 3) });
  });

  it('still takes changes to other attributes of a queue whose dead-letter queue was deleted', async () => {
    const deadLetters = await queue('rp-gone-dlq');
    const source = await queue('rp-orphan', { RedrivePolicy: redrive('rp-gone-dlq', 3) });
    await t.sqs.send(new DeleteQueueCommand({ QueueUrl: deadLetters }));
    await t.sqs.send(new SetQueueAttributesCommand({ QueueUrl: source, Attributes: { VisibilityTimeout: '45' } }));
    const { Attributes } = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl: source, AttributeNames: ['VisibilityTimeout'] }));
    expect(Attributes?.VisibilityTimeout).toBe('45');
    const renewed = await rejectionOf(
      t.sqs.send(new SetQueueAttributesCommand({ QueueUrl: source, Attributes: { RedrivePolicy: redrive('rp-gone-dlq', 4) } })),
    );
    expect(renewed.message).toContain('Dead letter target does not exist.');
  });

  it('checks the form of RedriveAllowPolicy', async () => {
    const eleven = Array.from({ length: 11 }, (_, i) => arn(`s${i}`));
    const cases: unknown[] = [
      { redrivePermission: 'byQueue' },
      { redrivePermission: 'byQueue', sourceQueueArns: [] },
      { redrivePermission: 'byQueue', sourceQueueArns: eleven },
      { redrivePermission: 'allowAll', sourceQueueArns: [arn('s1')] },
      { redrivePermission: 'denyAll', sourceQueueArns: [arn('s1')] },
      { redrivePermission: 'sometimes' },
      {},
    ];
    for (const policy of cases) {
      const error = await rejectionOf(create('rap-form', { RedriveAllowPolicy: JSON.stringify(policy) }));
      expect(error.name).toBe('InvalidParameterValue');
    }
    await create('rap-form-ten', { RedriveAllowPolicy: JSON.stringify({ redrivePermission: 'byQueue', sourceQueueArns: eleven.slice(0, 10) }) });
  });
});

describe('ListDeadLetterSourceQueues', () => {
  it('lists the queues whose RedrivePolicy names the queue, in pages', async () => {
    const dlq = await queue('list-dlq');
    const sources = ['list-src-a', 'list-src-b', 'list-src-c'];
    for (const name of sources) await queue(name, { RedrivePolicy: redrive('list-dlq', 5) });
    await queue('list-unrelated');
    const urls = sources.map((name) => `${t.shim.url}/000000000000/${name}`);

    const all = await t.sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlq }));
    expect(all.queueUrls).toEqual(urls);
    expect(all.NextToken).toBeUndefined();

    const first = await t.sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlq, MaxResults: 2 }));
    expect(first.queueUrls).toEqual(urls.slice(0, 2));
    expect(first.NextToken).toBeDefined();
    const second = await t.sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: dlq, MaxResults: 2, NextToken: first.NextToken }));
    expect(second.queueUrls).toEqual(urls.slice(2));
    expect(second.NextToken).toBeUndefined();
  });

  it('answers an empty list for a queue no queue uses, and checks its parameters', async () => {
    const lonely = await queue('list-lonely');
    expect((await t.sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: lonely }))).queueUrls).toEqual([]);
    const tokenAlone = await rejectionOf(t.sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: lonely, NextToken: 'x' })));
    expect(tokenAlone.name).toBe('InvalidParameterValue');
    const tooMany = await rejectionOf(t.sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: lonely, MaxResults: 1001 })));
    expect(tooMany.name).toBe('InvalidParameterValue');
    const missing = await rejectionOf(
      t.sqs.send(new ListDeadLetterSourceQueuesCommand({ QueueUrl: `${t.shim.url}/000000000000/list-nowhere` })),
    );
    expect(missing.name).toBe('QueueDoesNotExist');
  });
});
