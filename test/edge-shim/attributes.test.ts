import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type QueueAttributeName,
  ReceiveMessageCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t.close());

let counter = 0;
const fresh = async (Attributes?: Record<string, string>, fifo = false) => {
  const QueueName = `attributes-${++counter}${fifo ? '.fifo' : ''}`;
  const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName, Attributes: fifo ? { FifoQueue: 'true', ...Attributes } : Attributes }));
  return QueueUrl!;
};
const get = async (QueueUrl: string, AttributeNames: string[] = ['All']): Promise<Record<string, string> | undefined> =>
  (await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: AttributeNames as QueueAttributeName[] }))).Attributes;
const set = (QueueUrl: string, Attributes: Record<string, string>) => t.sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes }));
const seconds = () => Math.floor(t.clock.now() / 1000);

describe('defaults', () => {
  it('gives a standard queue every documented default, MaximumMessageSize 1 MiB and SSE-SQS on', async () => {
    const before = seconds();
    const QueueUrl = await fresh();
    const after = seconds();
    const attributes = await get(QueueUrl);
    const { CreatedTimestamp, LastModifiedTimestamp, ...rest } = attributes!;
    expect(rest).toEqual({
      QueueArn: `arn:aws:sqs:us-east-1:000000000000:attributes-${counter}`,
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesNotVisible: '0',
      ApproximateNumberOfMessagesDelayed: '0',
      VisibilityTimeout: '30',
      MaximumMessageSize: '1048576',
      MessageRetentionPeriod: '345600',
      DelaySeconds: '0',
      ReceiveMessageWaitTimeSeconds: '0',
      SqsManagedSseEnabled: 'true',
    });
    // Timestamps are whole seconds since the epoch.
    expect(Number(CreatedTimestamp)).toBeGreaterThanOrEqual(before);
    expect(Number(CreatedTimestamp)).toBeLessThanOrEqual(after);
    expect(LastModifiedTimestamp).toBe(CreatedTimestamp);
  });

  it('gives a FIFO queue the FIFO attributes with their defaults as well', async () => {
    const attributes = await get(await fresh({}, true));
    expect(attributes).toMatchObject({
      FifoQueue: 'true',
      ContentBasedDeduplication: 'false',
      DeduplicationScope: 'queue',
      FifoThroughputLimit: 'perQueue',
      MaximumMessageSize: '1048576',
      SqsManagedSseEnabled: 'true',
    });
  });

  it('answers only the attributes asked for, and nothing without AttributeNames', async () => {
    const QueueUrl = await fresh({ DelaySeconds: '7' });
    expect(await get(QueueUrl, ['DelaySeconds', 'VisibilityTimeout'])).toEqual({ DelaySeconds: '7', VisibilityTimeout: '30' });
    const { Attributes } = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl }));
    expect(Attributes ?? {}).toEqual({});
  });
});

describe('bounds', () => {
  const bounds: Array<[string, number, number]> = [
    ['DelaySeconds', 0, 900],
    ['MaximumMessageSize', 1024, 1_048_576],
    ['MessageRetentionPeriod', 60, 1_209_600],
    ['ReceiveMessageWaitTimeSeconds', 0, 20],
    ['VisibilityTimeout', 0, 43_200],
    ['KmsDataKeyReusePeriodSeconds', 60, 86_400],
  ];

  it.each(bounds)('%s takes %i to %i, and InvalidAttributeValue outside', async (name, min, max) => {
    const QueueUrl = await fresh({ [name]: String(min) });
    expect((await get(QueueUrl, [name]))?.[name]).toBe(String(min));
    await set(QueueUrl, { [name]: String(max) });
    expect((await get(QueueUrl, [name]))?.[name]).toBe(String(max));
    const invalid = { name: 'InvalidAttributeValue', message: `Invalid value for the parameter ${name}.` };
    for (const value of [String(min - 1), String(max + 1), '1.5', 'ten', '']) {
      await expectSqsError(set(QueueUrl, { [name]: value }), invalid);
      await expectSqsError(t.sqs.send(new CreateQueueCommand({ QueueName: `bounds-${name}`, Attributes: { [name]: value } })), invalid);
    }
    expect((await get(QueueUrl, [name]))?.[name]).toBe(String(max));
  });

  it('keeps integers in canonical form, and compares them so when the queue is created again', async () => {
    const QueueUrl = await fresh({ VisibilityTimeout: '0045' });
    expect(await get(QueueUrl, ['VisibilityTimeout'])).toEqual({ VisibilityTimeout: '45' });
    const again = await t.sqs.send(new CreateQueueCommand({ QueueName: `attributes-${counter}`, Attributes: { VisibilityTimeout: '45' } }));
    expect(again.QueueUrl).toBe(QueueUrl);
  });

  it('takes booleans and enumerations only as documented', async () => {
    const QueueUrl = await fresh({}, true);
    for (const [name, value] of [
      ['ContentBasedDeduplication', 'yes'],
      ['SqsManagedSseEnabled', 'TRUE'],
      ['DeduplicationScope', 'group'],
      ['FifoThroughputLimit', 'perGroup'],
    ]) {
      await expectSqsError(set(QueueUrl, { [name!]: value! }), { name: 'InvalidAttributeValue', message: `Invalid value for the parameter ${name}.` });
    }
  });

  it('takes a policy only as a JSON object, and an empty policy removes it', async () => {
    const QueueUrl = await fresh();
    await expectSqsError(set(QueueUrl, { Policy: '{not json' }), { name: 'InvalidAttributeValue' });
    await expectSqsError(set(QueueUrl, { Policy: '[]' }), { name: 'InvalidAttributeValue' });
    const policy = JSON.stringify({ Version: '2012-10-17', Statement: [] });
    await set(QueueUrl, { Policy: policy });
    expect(await get(QueueUrl, ['Policy'])).toEqual({ Policy: policy });
    await set(QueueUrl, { Policy: '' });
    expect((await get(QueueUrl, ['Policy'])) ?? {}).toEqual({});
  });
});

describe('attribute names', () => {
  it('rejects unknown and computed attribute names on create and set, and unknown names on get', async () => {
    const QueueUrl = await fresh();
    for (const name of ['Bogus', 'QueueArn', 'ApproximateNumberOfMessages', 'CreatedTimestamp', 'All', 'visibilitytimeout']) {
      const unknown = { name: 'InvalidAttributeName', message: `Unknown Attribute ${name}.` };
      await expectSqsError(t.sqs.send(new CreateQueueCommand({ QueueName: 'names', Attributes: { [name]: '1' } })), unknown);
      await expectSqsError(set(QueueUrl, { [name]: '1' }), unknown);
    }
    await expectSqsError(get(QueueUrl, ['VisibilityTimeout', 'Bogus']), { name: 'InvalidAttributeName', message: 'Unknown Attribute Bogus.' });
  });

  it('knows the FIFO attributes only on FIFO queues, for GetQueueAttributes too', async () => {
    const QueueUrl = await fresh();
    for (const name of ['FifoQueue', 'ContentBasedDeduplication', 'DeduplicationScope', 'FifoThroughputLimit']) {
      await expectSqsError(get(QueueUrl, [name]), { name: 'InvalidAttributeName', message: `Unknown Attribute ${name}.` });
    }
    expect(Object.keys((await get(await fresh({}, true), ['FifoQueue', 'ContentBasedDeduplication', 'DeduplicationScope', 'FifoThroughputLimit']))!)).toHaveLength(4);
    for (const [name, value] of [
      ['ContentBasedDeduplication', 'true'],
      ['DeduplicationScope', 'messageGroup'],
      ['FifoThroughputLimit', 'perQueue'],
    ]) {
      const unknown = { name: 'InvalidAttributeName', message: `Unknown Attribute ${name}.` };
      await expectSqsError(t.sqs.send(new CreateQueueCommand({ QueueName: 'standard-only', Attributes: { [name!]: value! } })), unknown);
      await expectSqsError(set(QueueUrl, { [name!]: value! }), unknown);
    }
  });

  it('never changes the queue type: FifoQueue is an invalid value on a FIFO queue unless true, an unknown attribute on a standard one', async () => {
    const fifoUrl = await fresh({}, true);
    const standardUrl = await fresh();
    for (const value of ['false', 'yes']) {
      await expectSqsError(set(fifoUrl, { FifoQueue: value }), { name: 'InvalidAttributeValue', message: /^Invalid value for the parameter FifoQueue\./ });
    }
    await set(fifoUrl, { FifoQueue: 'true', VisibilityTimeout: '40' });
    expect(await get(fifoUrl, ['FifoQueue', 'VisibilityTimeout'])).toEqual({ FifoQueue: 'true', VisibilityTimeout: '40' });
    for (const value of ['true', 'false']) {
      await expectSqsError(set(standardUrl, { FifoQueue: value }), { name: 'InvalidAttributeName', message: 'Unknown Attribute FifoQueue.' });
    }
    expect(await get(standardUrl, ['All'])).not.toHaveProperty('FifoQueue');
  });
});

describe('rules across attributes', () => {
  it('allows FifoThroughputLimit perMessageGroupId only with DeduplicationScope messageGroup', async () => {
    const error = { name: 'InvalidAttributeValue', message: /^Invalid value for the parameter FifoThroughputLimit\./ };
    await expectSqsError(
      t.sqs.send(new CreateQueueCommand({ QueueName: 'throughput.fifo', Attributes: { FifoQueue: 'true', FifoThroughputLimit: 'perMessageGroupId' } })),
      error,
    );
    const QueueUrl = await fresh({ DeduplicationScope: 'messageGroup', FifoThroughputLimit: 'perMessageGroupId' }, true);
    expect(await get(QueueUrl, ['DeduplicationScope', 'FifoThroughputLimit'])).toEqual({
      DeduplicationScope: 'messageGroup',
      FifoThroughputLimit: 'perMessageGroupId',
    });
    // The queue's other value counts too.
    await expectSqsError(set(QueueUrl, { DeduplicationScope: 'queue' }), error);
    await set(QueueUrl, { DeduplicationScope: 'queue', FifoThroughputLimit: 'perQueue' });
    expect(await get(QueueUrl, ['DeduplicationScope', 'FifoThroughputLimit'])).toEqual({ DeduplicationScope: 'queue', FifoThroughputLimit: 'perQueue' });
  });

  it('keeps one server-side encryption option at a time', async () => {
    const kmsUrl = await fresh({ KmsMasterKeyId: 'alias/aws/sqs' });
    expect(await get(kmsUrl, ['KmsMasterKeyId', 'KmsDataKeyReusePeriodSeconds', 'SqsManagedSseEnabled'])).toEqual({
      KmsMasterKeyId: 'alias/aws/sqs',
      KmsDataKeyReusePeriodSeconds: '300',
      SqsManagedSseEnabled: 'false',
    });
    await set(kmsUrl, { SqsManagedSseEnabled: 'true' });
    expect(await get(kmsUrl, ['KmsMasterKeyId', 'KmsDataKeyReusePeriodSeconds', 'SqsManagedSseEnabled'])).toEqual({ SqsManagedSseEnabled: 'true' });
    await set(kmsUrl, { KmsMasterKeyId: 'alias/mine', KmsDataKeyReusePeriodSeconds: '600' });
    expect(await get(kmsUrl, ['KmsMasterKeyId', 'KmsDataKeyReusePeriodSeconds', 'SqsManagedSseEnabled'])).toEqual({
      KmsMasterKeyId: 'alias/mine',
      KmsDataKeyReusePeriodSeconds: '600',
      SqsManagedSseEnabled: 'false',
    });
    await expectSqsError(set(kmsUrl, { SqsManagedSseEnabled: 'true', KmsMasterKeyId: 'alias/other' }), { name: 'InvalidAttributeValue' });
    await expectSqsError(
      t.sqs.send(new CreateQueueCommand({ QueueName: 'both-sse', Attributes: { SqsManagedSseEnabled: 'true', KmsMasterKeyId: 'alias/aws/sqs' } })),
      { name: 'InvalidAttributeValue' },
    );
  });

  it('takes a KMS key identifier of up to 2,048 characters', async () => {
    const QueueUrl = await fresh();
    const longest = `alias/${'k'.repeat(2042)}`;
    await set(QueueUrl, { KmsMasterKeyId: longest });
    expect(await get(QueueUrl, ['KmsMasterKeyId'])).toEqual({ KmsMasterKeyId: longest });
    await expectSqsError(set(QueueUrl, { KmsMasterKeyId: `${longest}k` }), { name: 'InvalidAttributeValue' });
    expect(await get(QueueUrl, ['KmsMasterKeyId'])).toEqual({ KmsMasterKeyId: longest });
  });
});

describe('SetQueueAttributes and computed attributes', () => {
  it('moves LastModifiedTimestamp, not CreatedTimestamp, in seconds', async () => {
    const QueueUrl = await fresh();
    const created = await get(QueueUrl, ['CreatedTimestamp', 'LastModifiedTimestamp']);
    t.clock.advance(5_000);
    await set(QueueUrl, { VisibilityTimeout: '60' });
    const modified = await get(QueueUrl, ['CreatedTimestamp', 'LastModifiedTimestamp', 'VisibilityTimeout']);
    expect(modified?.CreatedTimestamp).toBe(created?.CreatedTimestamp);
    expect(Number(modified?.LastModifiedTimestamp)).toBeGreaterThanOrEqual(Number(created?.LastModifiedTimestamp) + 5);
    expect(modified?.VisibilityTimeout).toBe('60');
  });

  it('counts messages that are available, in flight and delayed', async () => {
    const QueueUrl = await fresh();
    for (const body of ['a', 'b', 'c']) await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body }));
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'later', DelaySeconds: 60 }));
    const { Messages } = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1 }));
    expect(Messages).toHaveLength(1);
    const counters = ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'];
    expect(await get(QueueUrl, counters)).toEqual({
      ApproximateNumberOfMessages: '2',
      ApproximateNumberOfMessagesNotVisible: '1',
      ApproximateNumberOfMessagesDelayed: '1',
    });
    t.clock.advance(60_000);
    expect(await get(QueueUrl, counters)).toEqual({
      ApproximateNumberOfMessages: '4',
      ApproximateNumberOfMessagesNotVisible: '0',
      ApproximateNumberOfMessagesDelayed: '0',
    });
  });

  it('fails with QueueDoesNotExist for a queue that is not there', async () => {
    const QueueUrl = `${t.shim.url}/000000000000/never-created`;
    const missing = { name: 'QueueDoesNotExist', code: 'AWS.SimpleQueueService.NonExistentQueue' };
    await expectSqsError(get(QueueUrl), missing);
    await expectSqsError(set(QueueUrl, { VisibilityTimeout: '1' }), missing);
  });
});
