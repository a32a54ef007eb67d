import { createHash } from 'node:crypto';
import { CreateQueueCommand, GetQueueUrlCommand, QueueDoesNotExist, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md5OfAttributes } from '../../edge-shim/src/sqs/message-attributes.js';
import { type RawResponse, sendRaw } from '../helpers/raw-request.js';
import { createQueue } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// The AWS JSON 1.0 protocol at its edges: raw requests a well-behaved SDK would never send.

const JSON_TYPE = 'application/x-amz-json-1.0';

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t.close());

function jsonRequest(target: string | undefined, body: string | Buffer, contentType = JSON_TYPE): Promise<RawResponse> {
  return sendRaw(t.shim.url, {
    headers: { 'content-type': contentType, ...(target === undefined ? {} : { 'x-amz-target': target }) },
    body,
  });
}

function jsonError(response: RawResponse): { status: number; type: string; message: string; queryError: string | undefined } {
  expect(response.headers['content-type']).toBe(JSON_TYPE);
  expect(response.headers['x-amzn-requestid']).toMatch(/^[0-9a-f-]{36}$/);
  const body = JSON.parse(response.body) as { __type: string; message: string };
  return { status: response.status, type: body.__type, message: body.message, queryError: response.headers['x-amzn-query-error'] };
}

describe('operations the JSON protocol does not know', () => {
  it('answers an unknown operation of SQS with UnknownOperationException', async () => {
    expect(jsonError(await jsonRequest('AmazonSQS.FlushQueue', '{}'))).toEqual({
      status: 404,
      type: 'com.amazon.coral.service#UnknownOperationException',
      message: expect.stringContaining('AmazonSQS.FlushQueue'),
      queryError: undefined,
    });
  });

  it('answers a target of another service, or none, the same way', async () => {
    for (const target of ['DynamoDB_20120810.ListTables', 'AmazonSQS.', 'AmazonSQS.constructor', undefined]) {
      expect(jsonError(await jsonRequest(target, '{}'))).toMatchObject({ status: 404, type: 'com.amazon.coral.service#UnknownOperationException' });
    }
  });

  it('refuses an X-Amz-Target request whose content type is not AWS JSON 1.0', async () => {
    expect(jsonError(await jsonRequest('AmazonSQS.ListQueues', '{}', 'application/json'))).toMatchObject({
      status: 404,
      type: 'com.amazon.coral.service#UnknownOperationException',
      message: expect.stringContaining(JSON_TYPE),
    });
  });
});

describe('bodies that are not a JSON object', () => {
  it('answers malformed JSON with SerializationException', async () => {
    expect(jsonError(await jsonRequest('AmazonSQS.CreateQueue', '{"QueueName": "x"'))).toEqual({
      status: 400,
      type: 'com.amazon.coral.service#SerializationException',
      message: expect.any(String),
      queryError: undefined,
    });
  });

  it('answers JSON that is not an object with SerializationException', async () => {
    for (const body of ['[]', '"CreateQueue"', 'null', '42']) {
      expect(jsonError(await jsonRequest('AmazonSQS.CreateQueue', body))).toMatchObject({ status: 400, type: 'com.amazon.coral.service#SerializationException' });
    }
  });

  it('takes an empty body as an empty input', async () => {
    const response = await jsonRequest('AmazonSQS.ListQueues', '');
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toEqual({});
  });

  it('answers a body that is not UTF-8 with SerializationException, and stores nothing', async () => {
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: 'not-utf8' }));
    // Bytes FF FE inside MessageBody: a decoder that replaced them with U+FFFD would store a body the client never sent.
    const body = Buffer.concat([Buffer.from(`{"QueueUrl":"${QueueUrl}","MessageBody":"a`), Buffer.from([0xff, 0xfe]), Buffer.from('b"}')]);
    expect(jsonError(await jsonRequest('AmazonSQS.SendMessage', body))).toEqual({
      status: 400,
      type: 'com.amazon.coral.service#SerializationException',
      message: expect.stringContaining('UTF-8'),
      queryError: undefined,
    });
    const { Messages } = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl }));
    expect(Messages).toBeUndefined();
  });
});

describe('SQS errors', () => {
  it('carry the JSON type in __type and the Query code in x-amzn-query-error', async () => {
    const response = await jsonRequest('AmazonSQS.GetQueueUrl', JSON.stringify({ QueueName: 'absent' }));
    expect(jsonError(response)).toEqual({
      status: 400,
      type: 'com.amazonaws.sqs#QueueDoesNotExist',
      message: 'The specified queue does not exist.',
      queryError: 'AWS.SimpleQueueService.NonExistentQueue;Sender',
    });
  });

  it('reach the SDK as the modelled exception', async () => {
    const failure = await t.sqs.send(new GetQueueUrlCommand({ QueueName: 'absent' })).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(QueueDoesNotExist);
    expect((failure as QueueDoesNotExist).$metadata.httpStatusCode).toBe(400);
  });
});

it('treats a form post as the Query protocol even with an X-Amz-Target header', async () => {
  const response = await sendRaw(t.shim.url, {
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-amz-target': 'AmazonSQS.ListQueues' },
    body: 'Action=ListQueues&Version=2012-11-05',
  });
  expect(response.status).toBe(200);
  expect(response.headers['content-type']).toBe('text/xml');
  expect(response.body).toContain('<ListQueuesResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">');
});

describe('an empty receive', () => {
  it('leaves the Messages key out, as SQS does, rather than sending an empty list', async () => {
    const created = await jsonRequest('AmazonSQS.CreateQueue', JSON.stringify({ QueueName: 'empty-receive' }));
    const { QueueUrl } = JSON.parse(created.body) as { QueueUrl: string };
    const received = await jsonRequest('AmazonSQS.ReceiveMessage', JSON.stringify({ QueueUrl }));
    expect(received.status).toBe(200);
    expect(JSON.parse(received.body)).toEqual({});
  });
});

// The AWS JSON protocol's framework checks every member's type before the operation runs: a
// mismatch anywhere fails the whole request with SerializationException, and nothing is done.
describe('members of the wrong type', () => {
  const SERIALIZATION = { status: 400, type: 'com.amazon.coral.service#SerializationException', queryError: undefined };
  let sendQueues = 0;

  async function queueWith(name: string, bodies: string[]): Promise<string> {
    const created = await jsonRequest('AmazonSQS.CreateQueue', JSON.stringify({ QueueName: name }));
    const { QueueUrl } = JSON.parse(created.body) as { QueueUrl: string };
    for (const body of bodies) {
      expect((await jsonRequest('AmazonSQS.SendMessage', JSON.stringify({ QueueUrl, MessageBody: body }))).status).toBe(200);
    }
    return QueueUrl;
  }

  async function visible(QueueUrl: string): Promise<string> {
    const response = await jsonRequest('AmazonSQS.GetQueueAttributes', JSON.stringify({ QueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
    return (JSON.parse(response.body) as { Attributes: Record<string, string> }).Attributes.ApproximateNumberOfMessages!;
  }

  it('refuses a string of digits for an integer, and receives nothing', async () => {
    const QueueUrl = await queueWith('typed-receive', ['one']);
    expect(jsonError(await jsonRequest('AmazonSQS.ReceiveMessage', JSON.stringify({ QueueUrl, MaxNumberOfMessages: '5' })))).toEqual({
      ...SERIALIZATION,
      message: expect.stringContaining('MaxNumberOfMessages'),
    });
    expect(await visible(QueueUrl)).toBe('1');
  });

  it.each([
    ['a number for a string', { MessageBody: 42 }],
    ['a string for an integer', { MessageBody: 'x', DelaySeconds: '0' }],
    ['a list for a map', { MessageBody: 'x', MessageAttributes: [] }],
    ['a string for a structure', { MessageBody: 'x', MessageAttributes: { a: 'String' } }],
    ['a number for a blob', { MessageBody: 'x', MessageAttributes: { a: { DataType: 'Binary', BinaryValue: 7 } } }],
    ['invalid base64 for a blob', { MessageBody: 'x', MessageAttributes: { a: { DataType: 'Binary', BinaryValue: 'not base64!' } } }],
    ['base64 without its padding', { MessageBody: 'x', MessageAttributes: { a: { DataType: 'Binary', BinaryValue: 'AQI' } } }],
  ])('refuses %s in SendMessage, and sends nothing', async (_what, fields) => {
    const QueueUrl = await queueWith(`typed-send-${(sendQueues += 1)}`, []);
    expect(jsonError(await jsonRequest('AmazonSQS.SendMessage', JSON.stringify({ QueueUrl, ...fields })))).toMatchObject(SERIALIZATION);
    expect(await visible(QueueUrl)).toBe('0');
  });

  it('refuses the whole batch when one entry has a member of the wrong type', async () => {
    const QueueUrl = await queueWith('typed-batch', []);
    const Entries = [
      { Id: 'good', MessageBody: 'x' },
      { Id: 'bad', MessageBody: 'y', DelaySeconds: '1' },
    ];
    expect(jsonError(await jsonRequest('AmazonSQS.SendMessageBatch', JSON.stringify({ QueueUrl, Entries })))).toEqual({
      ...SERIALIZATION,
      message: expect.stringContaining('Entries[1].DelaySeconds'),
    });
    expect(await visible(QueueUrl)).toBe('0');
  });

  it('takes null as an absent member, and valid base64 as binary data', async () => {
    const QueueUrl = await queueWith('typed-null', []);
    const sent = await jsonRequest(
      'AmazonSQS.SendMessage',
      JSON.stringify({ QueueUrl, MessageBody: 'x', DelaySeconds: null, MessageAttributes: { a: { DataType: 'Binary', BinaryValue: 'AQID' } } }),
    );
    expect(sent.status).toBe(200);
    const received = await jsonRequest('AmazonSQS.ReceiveMessage', JSON.stringify({ QueueUrl, MessageAttributeNames: ['All'] }));
    const [message] = (JSON.parse(received.body) as { Messages: Array<{ MessageAttributes: Record<string, { BinaryValue: string }> }> }).Messages;
    expect(message!.MessageAttributes.a!.BinaryValue).toBe('AQID');
  });

  it('leaves a number out of range, or not whole, to the operation (InvalidParameterValue)', async () => {
    const QueueUrl = await queueWith('typed-range', []);
    for (const MaxNumberOfMessages of [11, 1.5]) {
      expect(jsonError(await jsonRequest('AmazonSQS.ReceiveMessage', JSON.stringify({ QueueUrl, MaxNumberOfMessages })))).toMatchObject({
        status: 400,
        type: 'com.amazonaws.sqs#InvalidParameterValue',
      });
    }
  });
});

// Sent raw: an SDK builds its own objects from such input and may not carry it as sent.
describe('input at the edges of what SQS allows', () => {
  async function call(action: string, input: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await jsonRequest(`AmazonSQS.${action}`, JSON.stringify(input));
    return { status: response.status, body: JSON.parse(response.body) as Record<string, unknown> };
  }

  it('keeps a message attribute named __proto__ (a valid SQS attribute name)', async () => {
    const queueUrl = await createQueue(t.sqs, 'input');
    // JSON.stringify keeps "__proto__" as an ordinary key when it is an own property.
    const attributes = JSON.parse('{"__proto__": {"DataType": "String", "StringValue": "kept"}}') as Record<string, { DataType: string; StringValue: string }>;
    const sent = await call('SendMessage', { QueueUrl: queueUrl, MessageBody: 'body', MessageAttributes: attributes });
    expect(sent.status).toBe(200);
    expect(sent.body.MD5OfMessageAttributes).toBe(md5OfAttributes(attributes));
    const received = await call('ReceiveMessage', { QueueUrl: queueUrl, MessageAttributeNames: ['All'] });
    const [message] = received.body.Messages as Array<Record<string, unknown>>;
    expect(Object.entries(message!.MessageAttributes as object)).toEqual([['__proto__', { DataType: 'String', StringValue: 'kept' }]]);
    expect(message!.MD5OfBody).toBe(createHash('md5').update('body').digest('hex'));
  });

  it('answers a queue URL with a broken percent-escape as a queue that does not exist, not as a server failure', async () => {
    const queueUrl = await createQueue(t.sqs, 'input');
    const broken = `${queueUrl.slice(0, queueUrl.lastIndexOf('/') + 1)}bad%E0%A4`;
    const answer = await call('SendMessage', { QueueUrl: broken, MessageBody: 'body' });
    expect(answer).toEqual({ status: 400, body: { __type: 'com.amazonaws.sqs#QueueDoesNotExist', message: 'The specified queue does not exist.' } });
  });
});

describe('what SQS takes that SDKs do not send', () => {
  it('takes a queue\'s name as its QueueUrl, and names the batch entry a batch without entries lacks', async () => {
    await jsonRequest('AmazonSQS.CreateQueue', JSON.stringify({ QueueName: 'named.fifo', Attributes: { FifoQueue: 'true' } }));
    const delayed = jsonError(await jsonRequest('AmazonSQS.SendMessage', JSON.stringify({ QueueUrl: 'named.fifo', MessageBody: 'm', MessageGroupId: 'g', MessageDeduplicationId: 'd', DelaySeconds: 5 })));
    expect(delayed).toMatchObject({ status: 400, type: 'com.amazonaws.sqs#InvalidParameterValue' });
    expect(delayed.message).toContain('DelaySeconds');
    expect((await jsonRequest('AmazonSQS.SendMessage', JSON.stringify({ QueueUrl: 'named.fifo', MessageBody: 'm', MessageGroupId: 'g', MessageDeduplicationId: 'd' }))).status).toBe(200);
    expect(jsonError(await jsonRequest('AmazonSQS.DeleteMessageBatch', JSON.stringify({ QueueUrl: 'named.fifo', Entries: [] })))).toMatchObject({
      status: 400,
      message: 'There should be at least one DeleteMessageBatchRequestEntry in the request.',
    });
  });
});
