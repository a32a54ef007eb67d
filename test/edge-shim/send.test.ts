import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  SendMessageCommand,
  type SendMessageCommandInput,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

let t: TestShim;
let QueueUrl: string;
let counter = 0;
beforeAll(async () => {
  t = await startTestShim();
  QueueUrl = (await t.sqs.send(new CreateQueueCommand({ QueueName: 'send' }))).QueueUrl!;
});
afterAll(() => t.close());

const fresh = async (Attributes?: Record<string, string>) =>
  (await t.sqs.send(new CreateQueueCommand({ QueueName: `send-${++counter}`, Attributes }))).QueueUrl!;
const send = (input: Omit<SendMessageCommandInput, 'QueueUrl'>, queueUrl = QueueUrl) => t.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, ...input }));
const withAttributes = (MessageAttributes: Record<string, MessageAttributeValue>) => send({ MessageBody: 'body', MessageAttributes });
const counts = async (queueUrl: string) => {
  const { Attributes } = await t.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesDelayed'] }),
  );
  return { visible: Number(Attributes?.ApproximateNumberOfMessages), delayed: Number(Attributes?.ApproximateNumberOfMessagesDelayed) };
};
const invalidParameter = (message?: string | RegExp) => ({ name: 'InvalidParameterValue', ...(message ? { message } : {}) });

describe('message body', () => {
  it('must be there and not empty: MissingParameter', async () => {
    const missing = { name: 'MissingParameter', message: 'The request must contain the parameter MessageBody.' };
    await expectSqsError(send({ MessageBody: '' }), missing);
    await expectSqsError(send({} as SendMessageCommandInput), missing);
  });

  it.each([
    ['NUL', '\u0000'],
    ['a C0 control character', 'tab\u0008'],
    ['U+FFFE', 'x\uFFFEx'],
    ['U+FFFF', '\uFFFF'],
    ['a lone surrogate', 'half \uD83D'],
  ])('rejects %s with InvalidMessageContents', async (_, body) => {
    await expectSqsError(send({ MessageBody: body }), { name: 'InvalidMessageContents', message: /^Invalid binary character was found in the message body/ });
  });

  it('takes every XML character: tab, newline, carriage return, BMP and astral characters', async () => {
    const body = '\t\n\r printable ~ \u00e9 \uD7FF \uE000 \uFFFD \u{10000} 🚀 \u{10FFFF}';
    const sent = await send({ MessageBody: body });
    const { Messages } = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
    expect(Messages?.find((message) => message.MessageId === sent.MessageId)?.Body).toBe(body);
  });
});

describe('message attributes', () => {
  it('takes up to 10 and rejects 11', async () => {
    const attributes = (count: number) =>
      Object.fromEntries(Array.from({ length: count }, (_, index) => [`a${index}`, { DataType: 'String', StringValue: String(index) }]));
    expect((await withAttributes(attributes(10))).MD5OfMessageAttributes).toMatch(/^[0-9a-f]{32}$/);
    await expectSqsError(withAttributes(attributes(11)), invalidParameter('Number of message attributes [11] exceeds the allowed maximum [10].'));
  });

  it.each(['a', 'A.b-c_9', 'AWS', 'AWSx.y', 'Amazonian', 'x'.repeat(256)])('takes the name %j', async (name) => {
    await withAttributes({ [name]: { DataType: 'String', StringValue: 'v' } });
  });

  it.each(['AWS.x', 'aws.x', 'Aws.X', 'Amazon.y', 'AMAZON.y', '.lead', 'trail.', 'two..dots', 'sp ace', 'ümlaut', 'x'.repeat(257)])(
    'rejects the name %j',
    async (name) => {
      await expectSqsError(withAttributes({ [name]: { DataType: 'String', StringValue: 'v' } }), invalidParameter());
    },
  );

  it.each([
    ['String', { StringValue: 'text' }],
    ['Number', { StringValue: '12' }],
    ['Binary', { BinaryValue: Uint8Array.from([1, 2]) }],
    ['String.custom label', { StringValue: 'text' }],
    ['Number.int', { StringValue: '12' }],
    ['Binary.png', { BinaryValue: Uint8Array.from([0]) }],
  ])('takes the data type %j', async (DataType, value) => {
    await withAttributes({ attr: { DataType, ...value } });
  });

  it.each(['string', 'Integer', 'StringX', 'String.', 'Binary-png', '', `String.${'x'.repeat(250)}`])('rejects the data type %j', async (DataType) => {
    await expectSqsError(withAttributes({ attr: { DataType, StringValue: 'v' } }), invalidParameter());
  });

  it('rejects empty values and values in the wrong field', async () => {
    await expectSqsError(
      withAttributes({ empty: { DataType: 'String', StringValue: '' } }),
      invalidParameter("Message (user) attribute 'empty' must contain a non-empty value of type 'String'."),
    );
    await expectSqsError(withAttributes({ none: { DataType: 'Number' } }), invalidParameter(/non-empty value of type 'Number'/));
    await expectSqsError(withAttributes({ empty: { DataType: 'Binary', BinaryValue: new Uint8Array(0) } }), invalidParameter(/non-empty value of type 'Binary'/));
    await expectSqsError(withAttributes({ wrong: { DataType: 'Binary', StringValue: 'text' } }), invalidParameter(/non-empty value of type 'Binary'/));
    await expectSqsError(withAttributes({ wrong: { DataType: 'String', BinaryValue: Uint8Array.from([1]) } }), invalidParameter(/non-empty value of type 'String'/));
  });

  it('rejects string values with characters outside the allowed set', async () => {
    await expectSqsError(withAttributes({ bad: { DataType: 'String', StringValue: 'bell\u0007' } }), { name: 'InvalidMessageContents' });
  });

  it.each([
    '0',
    '-1',
    '+7',
    '1.5',
    '.5',
    '5.',
    '-0.0',
    '1e10',
    '1E-5',
    '12345678901234567890123456789012345678', // 38 significant digits
    '1234567890123456789012345678901234567800000', // trailing zeros do not count
    '0.000012345678901234567890123456789012345678', // nor do leading ones
    '9.99e125',
    '1e-128',
  ])('takes the Number %j', async (value) => {
    const sent = await withAttributes({ n: { DataType: 'Number', StringValue: value } });
    expect(sent.MessageId).toBeDefined();
  });

  it.each(['abc', '1,000', ' 1', '1 ', '0x10', 'NaN', 'Infinity', '1e', '--1', '123456789012345678901234567890123456789', '1e126', '1e-129'])(
    'rejects the Number %j',
    async (value) => {
      await expectSqsError(
        withAttributes({ n: { DataType: 'Number.custom', StringValue: value } }),
        invalidParameter("Can't cast the value of message (user) attribute 'n' to a number."),
      );
    },
  );

  it('hands the attributes back on receive exactly as sent', async () => {
    const queueUrl = await fresh();
    const attributes: Record<string, MessageAttributeValue> = {
      text: { DataType: 'String', StringValue: 'value ✓' },
      number: { DataType: 'Number.float', StringValue: '000123.4500' },
      blob: { DataType: 'Binary', BinaryValue: Uint8Array.from([0, 1, 2, 255]) },
    };
    await send({ MessageBody: 'with attributes', MessageAttributes: attributes }, queueUrl);
    const { Messages } = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MessageAttributeNames: ['All'] }));
    const received = Messages![0]!.MessageAttributes!;
    expect(received.text).toMatchObject({ DataType: 'String', StringValue: 'value ✓' });
    expect(received.number).toMatchObject({ DataType: 'Number.float', StringValue: '000123.4500' });
    expect(received.blob?.DataType).toBe('Binary');
    expect([...received.blob!.BinaryValue!]).toEqual([0, 1, 2, 255]);
  });
});

describe('message system attributes', () => {
  const traceHeader = 'Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1';

  it('takes AWSTraceHeader as a String and hands it back on receive', async () => {
    const queueUrl = await fresh();
    await send({ MessageBody: 'traced', MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: traceHeader } } }, queueUrl);
    const { Messages } = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MessageSystemAttributeNames: ['AWSTraceHeader'] }));
    expect(Messages![0]!.Attributes?.AWSTraceHeader).toBe(traceHeader);
  });

  it('rejects any other system attribute, another type and an empty value', async () => {
    await expectSqsError(
      send({ MessageBody: 'x', MessageSystemAttributes: { SenderId: { DataType: 'String', StringValue: 'me' } } as never }),
      invalidParameter(),
    );
    await expectSqsError(
      send({ MessageBody: 'x', MessageSystemAttributes: { AWSTraceHeader: { DataType: 'Number', StringValue: '1' } } }),
      invalidParameter(),
    );
    await expectSqsError(send({ MessageBody: 'x', MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: '' } } }), invalidParameter());
  });
});

describe('DelaySeconds', () => {
  it('delays a message by its own DelaySeconds, else by the queue default', async () => {
    const queueUrl = await fresh({ DelaySeconds: '30' });
    await send({ MessageBody: 'queue default' }, queueUrl);
    await send({ MessageBody: 'no delay', DelaySeconds: 0 }, queueUrl);
    await send({ MessageBody: 'longest', DelaySeconds: 900 }, queueUrl);
    expect(await counts(queueUrl)).toEqual({ visible: 1, delayed: 2 });
    t.clock.advance(30_000);
    expect(await counts(queueUrl)).toEqual({ visible: 2, delayed: 1 });
    t.clock.advance(870_000);
    expect(await counts(queueUrl)).toEqual({ visible: 3, delayed: 0 });
  });

  it.each([-1, 901])('rejects DelaySeconds %i', async (DelaySeconds) => {
    await expectSqsError(send({ MessageBody: 'x', DelaySeconds }), invalidParameter(/DelaySeconds/));
  });
});

describe('FIFO parameters on a standard queue', () => {
  it('takes a MessageGroupId (fair queues) of 1 to 128 alphanumeric and punctuation characters', async () => {
    const queueUrl = await fresh();
    await send({ MessageBody: 'tenant a', MessageGroupId: 'tenant-a' }, queueUrl);
    await send({ MessageBody: 'tenant b', MessageGroupId: `!#$%&'()*+,-./:;<=>?@[\\]^_\`{|}~${'g'.repeat(96)}` }, queueUrl);
    expect((await counts(queueUrl)).visible).toBe(2);
    for (const MessageGroupId of ['', 'has space', 'g'.repeat(129), 'ümlaut']) {
      await expectSqsError(send({ MessageBody: 'x', MessageGroupId }, queueUrl), invalidParameter(/MessageGroupId/));
    }
  });

  it('rejects a MessageDeduplicationId', async () => {
    await expectSqsError(
      send({ MessageBody: 'x', MessageDeduplicationId: 'dedup-1' }),
      invalidParameter('Value dedup-1 for parameter MessageDeduplicationId is invalid. Reason: The request include parameter that is not valid for this queue type.'),
    );
  });
});

describe('SendMessageBatch', () => {
  const entry = (Id: string, rest: Partial<SendMessageBatchRequestEntry> = {}): SendMessageBatchRequestEntry => ({ Id, MessageBody: `body ${Id}`, ...rest });
  const batch = (Entries: SendMessageBatchRequestEntry[], queueUrl = QueueUrl) => t.sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries }));

  it('sends 1 to 10 entries and answers each by its Id', async () => {
    const queueUrl = await fresh();
    const ids = Array.from({ length: 10 }, (_, index) => `id_${index}-X`);
    const result = await batch(ids.map((id) => entry(id)), queueUrl);
    expect(result.Failed ?? []).toEqual([]);
    expect(result.Successful?.map((success) => success.Id).sort()).toEqual([...ids].sort());
    expect(new Set(result.Successful?.map((success) => success.MessageId)).size).toBe(10);
    expect((await counts(queueUrl)).visible).toBe(10);
  });

  it('rejects an empty batch, more than 10 entries, repeated ids, invalid ids and a missing id', async () => {
    await expectSqsError(batch([]), {
      name: 'EmptyBatchRequest',
      code: 'AWS.SimpleQueueService.EmptyBatchRequest',
      message: 'There should be at least one SendMessageBatchRequestEntry in the request.',
    });
    await expectSqsError(batch(Array.from({ length: 11 }, (_, index) => entry(`e${index}`))), {
      name: 'TooManyEntriesInBatchRequest',
      code: 'AWS.SimpleQueueService.TooManyEntriesInBatchRequest',
    });
    await expectSqsError(batch([entry('same'), entry('same')]), { name: 'BatchEntryIdsNotDistinct', code: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct' });
    for (const id of ['has space', 'dot.ted', 'x'.repeat(81), '']) {
      await expectSqsError(batch([entry(id)]), { name: 'InvalidBatchEntryId', code: 'AWS.SimpleQueueService.InvalidBatchEntryId' });
    }
    await expectSqsError(batch([{ MessageBody: 'no id' } as SendMessageBatchRequestEntry]), {
      name: 'MissingParameter',
      message: 'The request must contain the parameter SendMessageBatchRequestEntry.1.Id.',
    });
  });

  it('fails bad entries one by one in Failed while the others are sent', async () => {
    const queueUrl = await fresh();
    const result = await batch(
      [
        entry('good1'),
        entry('empty', { MessageBody: '' }),
        entry('control', { MessageBody: 'nul\u0000' }),
        entry('attribute', { MessageAttributes: { 'AWS.reserved': { DataType: 'String', StringValue: 'v' } } }),
        entry('dedup', { MessageDeduplicationId: 'd' }),
        entry('delay', { DelaySeconds: 901 }),
        entry('good2', { DelaySeconds: 5 }),
      ],
      queueUrl,
    );
    expect(result.Successful?.map((success) => success.Id).sort()).toEqual(['good1', 'good2']);
    const failed = Object.fromEntries((result.Failed ?? []).map((failure) => [failure.Id, failure]));
    expect(Object.keys(failed).sort()).toEqual(['attribute', 'control', 'dedup', 'delay', 'empty']);
    expect(failed.empty).toMatchObject({ SenderFault: true, Code: 'MissingParameter', Message: 'The request must contain the parameter MessageBody.' });
    expect(failed.control).toMatchObject({ SenderFault: true, Code: 'InvalidMessageContents' });
    for (const id of ['attribute', 'dedup', 'delay']) expect(failed[id]).toMatchObject({ SenderFault: true, Code: 'InvalidParameterValue' });
    expect(await counts(queueUrl)).toEqual({ visible: 1, delayed: 1 });
  });

  it('fails with QueueDoesNotExist for a missing queue', async () => {
    await expectSqsError(batch([entry('a')], `${t.shim.url}/000000000000/absent`), {
      name: 'QueueDoesNotExist',
      code: 'AWS.SimpleQueueService.NonExistentQueue',
    });
  });
});
