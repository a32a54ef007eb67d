import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  SendMessageCommand,
  type SendMessageCommandInput,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

const MIB = 1_048_576;
let t: TestShim;
let counter = 0;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t.close());

const fresh = async (Attributes?: Record<string, string>) =>
  (await t.sqs.send(new CreateQueueCommand({ QueueName: `limits-${++counter}`, Attributes }))).QueueUrl!;
const send = (QueueUrl: string, input: Omit<SendMessageCommandInput, 'QueueUrl'>) => t.sqs.send(new SendMessageCommand({ QueueUrl, ...input }));
const tooLong = (maximum: number) => ({
  name: 'InvalidParameterValue',
  message: `One or more parameters are invalid. Reason: Message must be shorter than ${maximum} bytes.`,
});
const visible = async (QueueUrl: string) => {
  const { Attributes } = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Number(Attributes?.ApproximateNumberOfMessages);
};

describe('message size', () => {
  it('takes a body of up to 1 MiB by default, counted in UTF-8 bytes', async () => {
    const QueueUrl = await fresh();
    const sent = await send(QueueUrl, { MessageBody: 'x'.repeat(MIB) });
    await send(QueueUrl, { MessageBody: 'é'.repeat(MIB / 2) });
    await expectSqsError(send(QueueUrl, { MessageBody: 'x'.repeat(MIB + 1) }), tooLong(MIB));
    await expectSqsError(send(QueueUrl, { MessageBody: `${'é'.repeat(MIB / 2 - 1)}xxx` }), tooLong(MIB));
    const { Messages } = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
    expect(Messages?.find((message) => message.MessageId === sent.MessageId)?.Body).toHaveLength(MIB);
  });

  it("counts attribute names, data types and values (binary in raw bytes) toward the queue's MaximumMessageSize", async () => {
    const QueueUrl = await fresh({ MaximumMessageSize: '1024' });
    // 1000 + 'ab' (2) + 'String' (6) + 16 = 1024
    const fits = { MessageBody: 'b'.repeat(1000), MessageAttributes: { ab: { DataType: 'String', StringValue: 'v'.repeat(16) } } };
    await send(QueueUrl, fits);
    await expectSqsError(
      send(QueueUrl, { ...fits, MessageAttributes: { ab: { DataType: 'String', StringValue: 'v'.repeat(17) } } }),
      tooLong(1024),
    );
    await expectSqsError(
      send(QueueUrl, { ...fits, MessageAttributes: { abc: { DataType: 'String', StringValue: 'v'.repeat(16) } } }),
      tooLong(1024),
    );
    // 1000 + 'ab' (2) + 'Binary' (6) + 16 raw bytes (24 in base64) = 1024
    await send(QueueUrl, { MessageBody: 'b'.repeat(1000), MessageAttributes: { ab: { DataType: 'Binary', BinaryValue: new Uint8Array(16) } } });
    await expectSqsError(
      send(QueueUrl, { MessageBody: 'b'.repeat(1000), MessageAttributes: { ab: { DataType: 'Binary', BinaryValue: new Uint8Array(17) } } }),
      tooLong(1024),
    );
    expect(await visible(QueueUrl)).toBe(2);
  });

  it('does not count the AWSTraceHeader system attribute', async () => {
    const QueueUrl = await fresh({ MaximumMessageSize: '1024' });
    const sent = await send(QueueUrl, {
      MessageBody: 'b'.repeat(1024),
      MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: `Root=1-${'a'.repeat(200)}` } },
    });
    expect(sent.MD5OfMessageSystemAttributes).toBeDefined();
  });

  it('applies a changed MaximumMessageSize to the messages sent after it', async () => {
    const QueueUrl = await fresh();
    await send(QueueUrl, { MessageBody: 'x'.repeat(4096) });
    await t.sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: { MaximumMessageSize: '2048' } }));
    await expectSqsError(send(QueueUrl, { MessageBody: 'x'.repeat(2049) }), tooLong(2048));
    await send(QueueUrl, { MessageBody: 'x'.repeat(2048) });
    expect(await visible(QueueUrl)).toBe(2);
  });
});

describe('batch size', () => {
  const entries = (count: number, size: number): SendMessageBatchRequestEntry[] =>
    Array.from({ length: count }, (_, index) => ({ Id: `e${index}`, MessageBody: String(index).padEnd(size, '.') }));
  const batch = (QueueUrl: string, Entries: SendMessageBatchRequestEntry[]) => t.sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries }));

  it('takes a batch of up to 1 MiB in total and rejects a longer one whole with BatchRequestTooLong', async () => {
    const QueueUrl = await fresh();
    const exact = await batch(QueueUrl, entries(8, MIB / 8));
    expect(exact.Successful).toHaveLength(8);
    const over = entries(8, MIB / 8);
    over[7]!.MessageAttributes = { a: { DataType: 'String', StringValue: 'v' } };
    await expectSqsError(batch(QueueUrl, over), {
      name: 'BatchRequestTooLong',
      code: 'AWS.SimpleQueueService.BatchRequestTooLong',
      message: `Batch requests cannot be longer than ${MIB} bytes. You have sent ${MIB + 'a'.length + 'String'.length + 1} bytes.`,
    });
    await expectSqsError(batch(QueueUrl, entries(10, 110_000)), { name: 'BatchRequestTooLong', code: 'AWS.SimpleQueueService.BatchRequestTooLong' });
    expect(await visible(QueueUrl)).toBe(8);
  });

  it("limits each entry by the queue's MaximumMessageSize and the batch by 1 MiB, whatever the queue's maximum", async () => {
    const QueueUrl = await fresh({ MaximumMessageSize: '1024' });
    const result = await batch(QueueUrl, [...entries(9, 1024), { Id: 'long', MessageBody: 'x'.repeat(1025) }]);
    expect(result.Successful).toHaveLength(9);
    expect(result.Failed).toEqual([
      {
        Id: 'long',
        SenderFault: true,
        Code: 'InvalidParameterValue',
        Message: 'One or more parameters are invalid. Reason: Message must be shorter than 1024 bytes.',
      },
    ]);
    expect(await visible(QueueUrl)).toBe(9);
  });
});
