import { createHash } from 'node:crypto';
import {
  CreateQueueCommand,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// Known MD5OfMessageAttributes values published with SQS client libraries (attribute sets and
// digests as they appear in their test suites), computed by SQS's algorithm.
const VECTORS: Array<{ attributes: Record<string, MessageAttributeValue>; md5: string }> = [
  { attributes: { attribName1: { DataType: 'String', StringValue: 'attribValue 1' } }, md5: '19e27d4e946b072f3f58da80d94fd778' },
  {
    attributes: { customNumberTypeAttrib: { DataType: 'Number.float', StringValue: '4563442423554324324264524243.32543234' } },
    md5: '9fe1b90bbd9965bdf77bac517c7d2495',
  },
  {
    attributes: { binaryAttribute: { DataType: 'Binary', BinaryValue: Buffer.from('Hello binary world!') } },
    md5: '31a92b15d92f8db860eda32aceb656c3',
  },
  {
    attributes: {
      attribName1: { DataType: 'String', StringValue: 'attribValue 1' },
      customNumberTypeAttrib: { DataType: 'Number.float', StringValue: '4563442423554324324264524243.32543234' },
      binaryAttribute: { DataType: 'Binary', BinaryValue: Buffer.from('Hello binary world!') },
    },
    md5: 'c932db14a896c663f83c260297d594ff',
  },
  {
    attributes: {
      test_attribute_name_2: { DataType: 'String', StringValue: 'test_attribute_value_2' },
      test_attribute_name_1: { DataType: 'String', StringValue: 'test_attribute_value_1' },
    },
    md5: 'd53f3b558fe951154770f25cb63dbba9',
  },
  { attributes: { test_attribute_name: { DataType: 'Binary', BinaryValue: Buffer.from('test_attribute_value') } }, md5: '23f6bd27ea87aab7dfeadcc9aebee495' },
  {
    attributes: { ordinal: { DataType: 'Number', StringValue: '1' }, category: { DataType: 'String', StringValue: 'test' } },
    md5: 'd21ae90c49061e927f57df5f5d72be1f',
  },
];

/**
 * The digest algorithm as the SQS Developer Guide describes it, written here independently of the
 * shim: attributes by name, each as 4-byte-length-prefixed name and data type, transport byte
 * (1 string, 2 binary) and length-prefixed value.
 */
function referenceDigest(attributes: Record<string, MessageAttributeValue>): string {
  const parts: Buffer[] = [];
  const prefixed = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const attribute = attributes[name]!;
    prefixed(Buffer.from(name));
    prefixed(Buffer.from(attribute.DataType!));
    const binary = attribute.BinaryValue !== undefined;
    parts.push(Buffer.from([binary ? 2 : 1]));
    prefixed(binary ? Buffer.from(attribute.BinaryValue!) : Buffer.from(attribute.StringValue!));
  }
  return createHash('md5').update(Buffer.concat(parts)).digest('hex');
}

let t: TestShim;
let QueueUrl: string;
beforeAll(async () => {
  t = await startTestShim();
  QueueUrl = (await t.sqs.send(new CreateQueueCommand({ QueueName: 'md5' }))).QueueUrl!;
});
afterAll(() => t.close());

describe('MD5OfMessageBody', () => {
  it('is the MD5 of the UTF-8 body', async () => {
    // RFC 1321 test suite value, and a body with multi-byte characters.
    expect((await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'abc' }))).MD5OfMessageBody).toBe('900150983cd24fb0d6963f7d28e17f72');
    const body = 'grüße, 世界 🚀';
    const sent = await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body }));
    expect(sent.MD5OfMessageBody).toBe(createHash('md5').update(Buffer.from(body, 'utf8')).digest('hex'));
  });
});

describe('MD5OfMessageAttributes', () => {
  it.each(VECTORS.map((vector, index) => [index, vector] as const))('matches published vector %i on send, batch send and receive', async (_, vector) => {
    expect(referenceDigest(vector.attributes)).toBe(vector.md5);
    const sent = await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'body', MessageAttributes: vector.attributes }));
    expect(sent.MD5OfMessageAttributes).toBe(vector.md5);
    const batch = await t.sqs.send(
      new SendMessageBatchCommand({ QueueUrl, Entries: [{ Id: 'only', MessageBody: 'body', MessageAttributes: vector.attributes }] }),
    );
    expect(batch.Successful?.[0]?.MD5OfMessageAttributes).toBe(vector.md5);
    const { Messages } = await t.sqs.send(
      new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], VisibilityTimeout: 600 }),
    );
    const received = Messages?.find((message) => message.MessageId === sent.MessageId);
    expect(received?.MD5OfMessageAttributes).toBe(vector.md5);
    expect(referenceDigest(received!.MessageAttributes!)).toBe(vector.md5);
  });

  it('includes custom type labels and multi-byte names and values, and is left out without attributes', async () => {
    const attributes: Record<string, MessageAttributeValue> = {
      'trace.id': { DataType: 'String.uuid', StringValue: 'ümlaut-値' },
      count: { DataType: 'Number.int', StringValue: '-42' },
      image: { DataType: 'Binary.png', BinaryValue: Uint8Array.from([0, 255, 1, 254]) },
    };
    const sent = await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'custom', MessageAttributes: attributes }));
    expect(sent.MD5OfMessageAttributes).toBe(referenceDigest(attributes));
    const plain = await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'plain' }));
    expect(plain.MD5OfMessageAttributes).toBeUndefined();
    expect(plain.MD5OfMessageSystemAttributes).toBeUndefined();
  });
});

describe('MD5OfMessageSystemAttributes', () => {
  it('is the attribute digest over AWSTraceHeader', async () => {
    const traceHeader = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
    const expected = referenceDigest({ AWSTraceHeader: { DataType: 'String', StringValue: traceHeader } });
    const sent = await t.sqs.send(
      new SendMessageCommand({
        QueueUrl,
        MessageBody: 'traced',
        MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: traceHeader } },
      }),
    );
    expect(sent.MD5OfMessageSystemAttributes).toBe(expected);
    expect(sent.MD5OfMessageAttributes).toBeUndefined();
    const batch = await t.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl,
        Entries: [{ Id: 'traced', MessageBody: 'traced', MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: traceHeader } } }],
      }),
    );
    expect(batch.Successful?.[0]?.MD5OfMessageSystemAttributes).toBe(expected);
  });
});
