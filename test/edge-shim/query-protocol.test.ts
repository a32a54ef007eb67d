import { createHash } from 'node:crypto';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exchange, parseAnswer, sqsError } from '../helpers/raw-http.js';
import { type RawResponse, sendQuery, sendRaw } from '../helpers/raw-request.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// The legacy AWS Query protocol, driven with hand-built form and GET requests over HTTP.

const NAMESPACE = 'http://queue.amazonaws.com/doc/2012-11-05/';
const ACCOUNT = '000000000000';
// Values stay text, as a Query client reads them; numeric character references are decoded.
const parser = new XMLParser({ parseTagValue: false, ignoreAttributes: false, trimValues: false, htmlEntities: true });

type Element = Record<string, any>;

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t.close());

const query = (action: string, parameters: Record<string, string> = {}, path = '/') => sendQuery(t.shim.url, { Action: action, ...parameters }, path);
const md5 = (text: string) => createHash('md5').update(text, 'utf8').digest('hex');

/** Repeated (flattened) elements parse as an array, a single one as itself, none as undefined. */
function many(value: unknown): Element[] {
  if (value === undefined || value === '') return [];
  return (Array.isArray(value) ? value : [value]) as Element[];
}

function envelope(response: RawResponse, action: string): Element {
  expect(response.status, response.body).toBe(200);
  expect(response.headers['content-type']).toBe('text/xml');
  expect(XMLValidator.validate(response.body)).toBe(true);
  const root = parser.parse(response.body)[`${action}Response`] as Element;
  expect(root['@_xmlns']).toBe(NAMESPACE);
  expect(root.ResponseMetadata.RequestId).toBe(response.headers['x-amzn-requestid']);
  return root;
}

/** The `<ActionResult>` element of a successful response, after checking the envelope around it. */
function result(response: RawResponse, action: string): Element {
  const root = envelope(response, action);
  expect(root).toHaveProperty(`${action}Result`);
  const element = root[`${action}Result`];
  return element === '' ? {} : (element as Element);
}

/** Checks the answer of an operation that returns nothing but its request id. */
function expectNoResult(response: RawResponse, action: string): void {
  expect(Object.keys(envelope(response, action)).sort()).toEqual(['@_xmlns', 'ResponseMetadata']);
}

function error(response: RawResponse): { status: number; type: string; code: string; message: string } {
  expect(response.headers['content-type']).toBe('text/xml');
  expect(XMLValidator.validate(response.body)).toBe(true);
  const root = parser.parse(response.body).ErrorResponse as Element;
  expect(root['@_xmlns']).toBe(NAMESPACE);
  expect(root.RequestId).toBe(response.headers['x-amzn-requestid']);
  expect(root.Error).toHaveProperty('Detail');
  return { status: response.status, type: root.Error.Type, code: root.Error.Code, message: root.Error.Message };
}

function attributeMap(entries: unknown, keyName = 'Name', valueName = 'Value'): Record<string, unknown> {
  return Object.fromEntries(many(entries).map((entry) => [entry[keyName], entry[valueName]]));
}

async function createQueue(name: string, parameters: Record<string, string> = {}): Promise<string> {
  return result(await query('CreateQueue', { QueueName: name, ...parameters }), 'CreateQueue').QueueUrl as string;
}

async function queueArn(url: string): Promise<string> {
  const attributes = result(await query('GetQueueAttributes', { QueueUrl: url, 'AttributeName.1': 'QueueArn' }), 'GetQueueAttributes');
  return attributeMap(attributes.Attribute).QueueArn as string;
}

describe('queues', () => {
  it('creates a queue with attributes and tags, finds it, lists it and reads its attributes', async () => {
    const url = await createQueue('query-orders', {
      'Attribute.1.Name': 'VisibilityTimeout',
      'Attribute.1.Value': '45',
      'Attribute.2.Name': 'DelaySeconds',
      'Attribute.2.Value': '2',
      'Tag.1.Key': 'team',
      'Tag.1.Value': 'billing',
    });
    expect(url).toBe(`${t.shim.url}/${ACCOUNT}/query-orders`);
    await createQueue('query-orders-dlq');

    expect(result(await query('GetQueueUrl', { QueueName: 'query-orders' }), 'GetQueueUrl').QueueUrl).toBe(url);
    const listed = result(await query('ListQueues', { QueueNamePrefix: 'query-orders' }), 'ListQueues');
    expect(many(listed.QueueUrl)).toEqual([url, `${t.shim.url}/${ACCOUNT}/query-orders-dlq`]);

    const attributes = result(
      await query('GetQueueAttributes', { QueueUrl: url, 'AttributeName.1': 'VisibilityTimeout', 'AttributeName.2': 'DelaySeconds' }),
      'GetQueueAttributes',
    );
    expect(attributeMap(attributes.Attribute)).toEqual({ VisibilityTimeout: '45', DelaySeconds: '2' });
    const tags = result(await query('ListQueueTags', { QueueUrl: url }), 'ListQueueTags');
    expect(attributeMap(tags.Tag, 'Key')).toEqual({ team: 'billing' });
  });

  it('pages ListQueues with MaxResults and NextToken', async () => {
    for (const name of ['page-a', 'page-b', 'page-c']) await createQueue(name);
    const first = result(await query('ListQueues', { QueueNamePrefix: 'page-', MaxResults: '2' }), 'ListQueues');
    expect(many(first.QueueUrl)).toHaveLength(2);
    expect(first.NextToken).toEqual(expect.any(String));
    const second = result(await query('ListQueues', { QueueNamePrefix: 'page-', MaxResults: '2', NextToken: first.NextToken }), 'ListQueues');
    expect(many(second.QueueUrl)).toEqual([`${t.shim.url}/${ACCOUNT}/page-c`]);
    expect(second).not.toHaveProperty('NextToken');
  });

  it('takes the queue URL from the request path when QueueUrl is absent', async () => {
    await createQueue('by-path');
    expectNoResult(await query('SetQueueAttributes', { 'Attribute.1.Name': 'MaximumMessageSize', 'Attribute.1.Value': '2048' }, `/${ACCOUNT}/by-path`), 'SetQueueAttributes');
    const attributes = result(await query('GetQueueAttributes', { 'AttributeName.1': 'All' }, `/${ACCOUNT}/by-path`), 'GetQueueAttributes');
    expect(attributeMap(attributes.Attribute)).toMatchObject({ MaximumMessageSize: '2048', QueueArn: `arn:aws:sqs:us-east-1:${ACCOUNT}:by-path` });
  });

  it('tags and untags a queue', async () => {
    const url = await createQueue('tagged');
    expectNoResult(
      await query('TagQueue', { QueueUrl: url, 'Tag.1.Key': 'env', 'Tag.1.Value': 'prod', 'Tag.2.Key': 'owner', 'Tag.2.Value': 'ops' }),
      'TagQueue',
    );
    expect(attributeMap(result(await query('ListQueueTags', { QueueUrl: url }), 'ListQueueTags').Tag, 'Key')).toEqual({ env: 'prod', owner: 'ops' });
    expectNoResult(await query('UntagQueue', { QueueUrl: url, 'TagKey.1': 'env' }), 'UntagQueue');
    expect(attributeMap(result(await query('ListQueueTags', { QueueUrl: url }), 'ListQueueTags').Tag, 'Key')).toEqual({ owner: 'ops' });
  });

  it('adds and removes a permission in the queue policy', async () => {
    const url = await createQueue('shared');
    expectNoResult(
      await query('AddPermission', {
        QueueUrl: url,
        Label: 'let-partner-send',
        'AWSAccountId.1': '111122223333',
        'ActionName.1': 'SendMessage',
        'ActionName.2': 'ReceiveMessage',
      }),
      'AddPermission',
    );
    const policyOf = async () =>
      attributeMap(result(await query('GetQueueAttributes', { QueueUrl: url, 'AttributeName.1': 'Policy' }), 'GetQueueAttributes').Attribute).Policy as
        | string
        | undefined;
    const statements = JSON.parse((await policyOf())!).Statement as Element[];
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatchObject({ Sid: 'let-partner-send', Action: ['SQS:SendMessage', 'SQS:ReceiveMessage'] });
    expectNoResult(await query('RemovePermission', { QueueUrl: url, Label: 'let-partner-send' }), 'RemovePermission');
    const after = await policyOf();
    expect(after === undefined ? [] : JSON.parse(after).Statement).toEqual([]);
  });

  it('purges and deletes a queue; a deleted queue is an SQS error', async () => {
    const url = await createQueue('doomed');
    await query('SendMessage', { QueueUrl: url, MessageBody: 'x' });
    expectNoResult(await query('PurgeQueue', { QueueUrl: url }), 'PurgeQueue');
    expect(result(await query('ReceiveMessage', { QueueUrl: url }), 'ReceiveMessage')).not.toHaveProperty('Message');
    expectNoResult(await query('DeleteQueue', { QueueUrl: url }), 'DeleteQueue');
    expect(error(await query('GetQueueUrl', { QueueName: 'doomed' }))).toEqual({
      status: 400,
      type: 'Sender',
      code: 'AWS.SimpleQueueService.NonExistentQueue',
      message: 'The specified queue does not exist.',
    });
  });
});

describe('messages', () => {
  // Markup, quotes, a carriage return (which XML parsers would fold into a newline unless escaped)
  // and characters outside the Basic Multilingual Plane.
  const body = `<order id="7">&amp; 'fish' & chips</order>\r\nline two\t€ 😀`;

  it('sends a message with attributes and receives it intact over GET, the queue named by the path', async () => {
    const url = await createQueue('mail');
    const sent = result(
      await query('SendMessage', {
        QueueUrl: url,
        MessageBody: body,
        'MessageAttribute.1.Name': 'kind',
        'MessageAttribute.1.Value.DataType': 'String',
        'MessageAttribute.1.Value.StringValue': 'a < b & c',
        'MessageAttribute.2.Name': 'count',
        'MessageAttribute.2.Value.DataType': 'Number',
        'MessageAttribute.2.Value.StringValue': '42',
        'MessageAttribute.3.Name': 'blob',
        'MessageAttribute.3.Value.DataType': 'Binary',
        'MessageAttribute.3.Value.BinaryValue': Buffer.from([0, 1, 2, 254, 255]).toString('base64'),
        'MessageSystemAttribute.1.Name': 'AWSTraceHeader',
        'MessageSystemAttribute.1.Value.DataType': 'String',
        'MessageSystemAttribute.1.Value.StringValue': 'Root=1-5759e988-bd862e3fe1be46a994272793',
      }),
      'SendMessage',
    );
    expect(sent.MD5OfMessageBody).toBe(md5(body));
    expect(sent.MD5OfMessageSystemAttributes).toMatch(/^[0-9a-f]{32}$/);
    // The same attributes sent over the JSON protocol have the same digest.
    const viaSdk = await t.sqs.send(
      new SendMessageCommand({
        QueueUrl: await createQueue('mail-json'),
        MessageBody: body,
        MessageAttributes: {
          kind: { DataType: 'String', StringValue: 'a < b & c' },
          count: { DataType: 'Number', StringValue: '42' },
          blob: { DataType: 'Binary', BinaryValue: new Uint8Array([0, 1, 2, 254, 255]) },
        },
      }),
    );
    expect(sent.MD5OfMessageAttributes).toBe(viaSdk.MD5OfMessageAttributes);

    const response = await sendRaw(t.shim.url, {
      method: 'GET',
      path: `/${ACCOUNT}/mail`,
      query: { Action: 'ReceiveMessage', Version: '2012-11-05', 'AttributeName.1': 'All', 'MessageAttributeName.1': 'All' },
    });
    expect(response.body).toContain('&lt;order id="7"&gt;&amp;amp;');
    expect(response.body).toContain('&#xD;');
    const messages = many(result(response, 'ReceiveMessage').Message);
    expect(messages).toHaveLength(1);
    const [message] = messages;
    expect(message).toMatchObject({ MessageId: sent.MessageId, Body: body, MD5OfBody: md5(body), MD5OfMessageAttributes: sent.MD5OfMessageAttributes });
    expect(Object.keys(message!).slice(0, 4)).toEqual(['MessageId', 'ReceiptHandle', 'MD5OfBody', 'Body']);
    const system = attributeMap(message!.Attribute);
    expect(system).toMatchObject({ ApproximateReceiveCount: '1', SenderId: ACCOUNT, AWSTraceHeader: 'Root=1-5759e988-bd862e3fe1be46a994272793' });
    expect(attributeMap(message!.MessageAttribute)).toEqual({
      kind: { StringValue: 'a < b & c', DataType: 'String' },
      count: { StringValue: '42', DataType: 'Number' },
      blob: { BinaryValue: Buffer.from([0, 1, 2, 254, 255]).toString('base64'), DataType: 'Binary' },
    });

    expectNoResult(await query('ChangeMessageVisibility', { QueueUrl: url, ReceiptHandle: message!.ReceiptHandle, VisibilityTimeout: '0' }), 'ChangeMessageVisibility');
    const again = many(result(await query('ReceiveMessage', { QueueUrl: url, 'MessageSystemAttributeName.1': 'ApproximateReceiveCount' }), 'ReceiveMessage').Message);
    expect(again.map((m) => attributeMap(m.Attribute))).toEqual([{ ApproximateReceiveCount: '2' }]);
    expectNoResult(await query('DeleteMessage', { QueueUrl: url, ReceiptHandle: again[0]!.ReceiptHandle }), 'DeleteMessage');
    t.clock.advance(60_000);
    expect(result(await query('ReceiveMessage', { QueueUrl: url }), 'ReceiveMessage')).toEqual({});
  });

  it('runs the batch operations entry by entry, with successes and failures in one answer', async () => {
    const url = await createQueue('batches');
    const sent = result(
      await query('SendMessageBatch', {
        QueueUrl: url,
        'SendMessageBatchRequestEntry.1.Id': 'first',
        'SendMessageBatchRequestEntry.1.MessageBody': 'one & only',
        'SendMessageBatchRequestEntry.2.Id': 'second',
        'SendMessageBatchRequestEntry.2.MessageBody': 'two',
        'SendMessageBatchRequestEntry.2.MessageAttribute.1.Name': 'k',
        'SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.DataType': 'String',
        'SendMessageBatchRequestEntry.2.MessageAttribute.1.Value.StringValue': 'v',
        'SendMessageBatchRequestEntry.3.Id': 'too-late',
        'SendMessageBatchRequestEntry.3.MessageBody': 'three',
        'SendMessageBatchRequestEntry.3.DelaySeconds': '901',
      }),
      'SendMessageBatch',
    );
    const successful = many(sent.SendMessageBatchResultEntry);
    expect(successful.map((entry) => entry.Id)).toEqual(['first', 'second']);
    expect(successful[0]).toMatchObject({ MD5OfMessageBody: md5('one & only'), MessageId: expect.any(String) });
    expect(successful[1]!.MD5OfMessageAttributes).toMatch(/^[0-9a-f]{32}$/);
    const failed = many(sent.BatchResultErrorEntry);
    expect(failed).toEqual([{ Id: 'too-late', SenderFault: 'true', Code: expect.any(String), Message: expect.stringContaining('DelaySeconds') }]);

    const received = many(
      result(await query('ReceiveMessage', { QueueUrl: url, MaxNumberOfMessages: '10', VisibilityTimeout: '30' }), 'ReceiveMessage').Message,
    );
    expect(received.map((message) => message.Body).sort()).toEqual(['one & only', 'two']);
    const changed = result(
      await query('ChangeMessageVisibilityBatch', {
        QueueUrl: url,
        'ChangeMessageVisibilityBatchRequestEntry.1.Id': 'a',
        'ChangeMessageVisibilityBatchRequestEntry.1.ReceiptHandle': received[0]!.ReceiptHandle,
        'ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout': '60',
        'ChangeMessageVisibilityBatchRequestEntry.2.Id': 'b',
        'ChangeMessageVisibilityBatchRequestEntry.2.ReceiptHandle': 'not-a-receipt-handle',
        'ChangeMessageVisibilityBatchRequestEntry.2.VisibilityTimeout': '60',
      }),
      'ChangeMessageVisibilityBatch',
    );
    expect(many(changed.ChangeMessageVisibilityBatchResultEntry)).toEqual([{ Id: 'a' }]);
    expect(many(changed.BatchResultErrorEntry).map((entry) => [entry.Id, entry.SenderFault])).toEqual([['b', 'true']]);

    const deleted = result(
      await query('DeleteMessageBatch', {
        QueueUrl: url,
        'DeleteMessageBatchRequestEntry.1.Id': 'x',
        'DeleteMessageBatchRequestEntry.1.ReceiptHandle': received[0]!.ReceiptHandle,
        'DeleteMessageBatchRequestEntry.2.Id': 'y',
        'DeleteMessageBatchRequestEntry.2.ReceiptHandle': received[1]!.ReceiptHandle,
      }),
      'DeleteMessageBatch',
    );
    expect(many(deleted.DeleteMessageBatchResultEntry)).toEqual([{ Id: 'x' }, { Id: 'y' }]);
    expect(deleted).not.toHaveProperty('BatchResultErrorEntry');
    const counts = result(await query('GetQueueAttributes', { QueueUrl: url, 'AttributeName.1': 'All' }), 'GetQueueAttributes');
    expect(attributeMap(counts.Attribute)).toMatchObject({ ApproximateNumberOfMessages: '0', ApproximateNumberOfMessagesNotVisible: '0' });
  });

  it('answers a batch error that fails the whole request as an ErrorResponse', async () => {
    const url = await createQueue('batch-errors');
    const same = {
      QueueUrl: url,
      'SendMessageBatchRequestEntry.1.Id': 'dup',
      'SendMessageBatchRequestEntry.1.MessageBody': 'a',
      'SendMessageBatchRequestEntry.2.Id': 'dup',
      'SendMessageBatchRequestEntry.2.MessageBody': 'b',
    };
    expect(error(await query('SendMessageBatch', same))).toMatchObject({ status: 400, code: 'AWS.SimpleQueueService.BatchEntryIdsNotDistinct' });
    expect(error(await query('DeleteMessageBatch', { QueueUrl: url }))).toMatchObject({
      status: 400,
      code: 'AWS.SimpleQueueService.EmptyBatchRequest',
      message: 'There should be at least one DeleteMessageBatchRequestEntry in the request.',
    });
    expect(error(await query('ChangeMessageVisibilityBatch', { QueueUrl: url }))).toMatchObject({
      message: 'There should be at least one ChangeMessageVisibilityBatchRequestEntry in the request.',
    });
  });

  it('takes a queue\'s name as its QueueUrl, as SQS does', async () => {
    const url = await createQueue('by-name.fifo', { 'Attribute.1.Name': 'FifoQueue', 'Attribute.1.Value': 'true' });
    // SQS's own answer to a DelaySeconds on a FIFO queue named this way: the queue was found.
    expect(error(await query('SendMessage', { QueueUrl: 'by-name.fifo', MessageBody: 'm', MessageGroupId: 'g', MessageDeduplicationId: 'd', DelaySeconds: '5' }))).toMatchObject({
      status: 400,
      code: 'InvalidParameterValue',
      message: expect.stringContaining('DelaySeconds'),
    });
    result(await query('SendMessage', { QueueUrl: 'by-name.fifo', MessageBody: 'm', MessageGroupId: 'g', MessageDeduplicationId: 'd' }), 'SendMessage');
    const received = result(await query('ReceiveMessage', { QueueUrl: url }), 'ReceiveMessage');
    expect(many(received.Message)).toHaveLength(1);
    expect(error(await query('SendMessage', { QueueUrl: 'no-such-queue', MessageBody: 'm' }))).toMatchObject({ code: 'AWS.SimpleQueueService.NonExistentQueue' });
  });

  it('carries a message of the maximum size, percent-encoded to three times its length', async () => {
    const url = await createQueue('large');
    const large = '€'.repeat(349_525); // 1,048,575 bytes of UTF-8, each byte %XX in the form
    const sent = result(await query('SendMessage', { QueueUrl: url, MessageBody: large }), 'SendMessage');
    expect(sent.MD5OfMessageBody).toBe(md5(large));
    const [message] = many(result(await query('ReceiveMessage', { QueueUrl: url }), 'ReceiveMessage').Message);
    expect(message!.Body === large).toBe(true);
  });

  it('sends to a FIFO queue and returns the sequence number', async () => {
    const url = await createQueue('ordered.fifo', { 'Attribute.1.Name': 'FifoQueue', 'Attribute.1.Value': 'true' });
    const sent = result(
      await query('SendMessage', { QueueUrl: url, MessageBody: 'first', MessageGroupId: 'g', MessageDeduplicationId: 'd1' }),
      'SendMessage',
    );
    expect(sent.SequenceNumber).toMatch(/^\d+$/);
    const [message] = many(
      result(await query('ReceiveMessage', { QueueUrl: url, 'AttributeName.1': 'MessageGroupId', 'AttributeName.2': 'SequenceNumber' }), 'ReceiveMessage')
        .Message,
    );
    expect(attributeMap(message!.Attribute)).toEqual({ MessageGroupId: 'g', SequenceNumber: sent.SequenceNumber });
  });
});

describe('dead-letter queues and message move tasks', () => {
  it('lists dead-letter sources and starts, lists and cancels a move task', async () => {
    const dlqUrl = await createQueue('moves-dlq');
    const dlqArn = await queueArn(dlqUrl);
    const sourceUrl = await createQueue('moves-source', {
      'Attribute.1.Name': 'RedrivePolicy',
      'Attribute.1.Value': JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 3 }),
    });
    const sources = result(await query('ListDeadLetterSourceQueues', { QueueUrl: dlqUrl }), 'ListDeadLetterSourceQueues');
    expect(many(sources.QueueUrl)).toEqual([sourceUrl]);

    const destinationArn = await queueArn(await createQueue('moves-destination'));
    for (const text of ['a', 'b', 'c']) await query('SendMessage', { QueueUrl: dlqUrl, MessageBody: text });
    // One message a second of the shim's clock, which the test does not move: the task stays running.
    const started = result(
      await query('StartMessageMoveTask', { SourceArn: dlqArn, DestinationArn: destinationArn, MaxNumberOfMessagesPerSecond: '1' }),
      'StartMessageMoveTask',
    );
    expect(started.TaskHandle).toEqual(expect.any(String));

    const listed = many(result(await query('ListMessageMoveTasks', { SourceArn: dlqArn, MaxResults: '10' }), 'ListMessageMoveTasks').ListMessageMoveTasksResultEntry);
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({
      TaskHandle: started.TaskHandle,
      Status: 'RUNNING',
      SourceArn: dlqArn,
      DestinationArn: destinationArn,
      MaxNumberOfMessagesPerSecond: '1',
      ApproximateNumberOfMessagesToMove: '3',
      StartedTimestamp: expect.stringMatching(/^\d+$/),
    });

    const cancelled = result(await query('CancelMessageMoveTask', { TaskHandle: started.TaskHandle }), 'CancelMessageMoveTask');
    expect(['0', '1']).toContain(cancelled.ApproximateNumberOfMessagesMoved);
  });
});

describe('protocol errors', () => {
  it('refuses a request without an Action', async () => {
    expect(error(await sendQuery(t.shim.url, { QueueName: 'x' }))).toEqual({
      status: 400,
      type: 'Sender',
      code: 'MissingAction',
      message: 'The request must contain the parameter Action.',
    });
  });

  it('refuses an unknown Action', async () => {
    expect(error(await query('FlushQueue'))).toMatchObject({ status: 400, type: 'Sender', code: 'InvalidAction', message: expect.stringContaining('FlushQueue') });
    // Names of Object.prototype are not actions either.
    expect(error(await query('constructor'))).toMatchObject({ status: 400, code: 'InvalidAction' });
  });

  it('refuses a malformed form body', async () => {
    const response = await sendRaw(t.shim.url, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=CreateQueue&QueueName=bad%ZZname',
    });
    expect(error(response)).toMatchObject({ status: 400, type: 'Sender', code: 'MalformedQueryString' });
  });

  it('refuses bytes that are not UTF-8, raw in the body or percent-encoded anywhere, and stores nothing', async () => {
    const url = await createQueue('not-utf8');
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const raw = Buffer.concat([Buffer.from(`Action=SendMessage&QueueUrl=${encodeURIComponent(url)}&MessageBody=a`), Buffer.from([0xff, 0xfe]), Buffer.from('b')]);
    expect(error(await sendRaw(t.shim.url, { headers: form, body: raw }))).toMatchObject({ status: 400, type: 'Sender', code: 'MalformedQueryString', message: expect.stringContaining('UTF-8') });
    expect(error(await sendRaw(t.shim.url, { headers: form, body: `Action=SendMessage&QueueUrl=${encodeURIComponent(url)}&MessageBody=a%FF%FEb` }))).toMatchObject({ status: 400, code: 'MalformedQueryString' });
    // In the URL: hand-written, so on a shim that does not check signatures (a signed one would refuse the signature first).
    const open = await startTestShim({ credentials: [] });
    try {
      const openUrl = (await open.sqs.send(new CreateQueueCommand({ QueueName: 'not-utf8' }))).QueueUrl!;
      const answer = parseAnswer(await exchange(open.shim.url, `GET ${new URL(openUrl).pathname}?Action=SendMessage&MessageBody=a%FF%FEb HTTP/1.1\r\nHost: ${new URL(open.shim.url).host}\r\nConnection: close\r\n\r\n`));
      expect(sqsError(answer)).toMatchObject({ status: 400, code: 'MalformedQueryString' });
      expect((await open.sqs.send(new ReceiveMessageCommand({ QueueUrl: openUrl }))).Messages).toBeUndefined();
    } finally {
      await open.close();
    }
    expect(result(await query('ReceiveMessage', { QueueUrl: url }), 'ReceiveMessage').Message).toBeUndefined();
  });

  it('refuses a body that is not form-encoded, and a parameter given twice', async () => {
    const json = await sendRaw(t.shim.url, { headers: { 'content-type': 'text/plain' }, body: 'Action=ListQueues' });
    expect(error(json)).toMatchObject({ status: 400, code: 'InvalidQueryParameter' });
    const twice = await sendRaw(t.shim.url, {
      method: 'POST',
      query: { Action: 'ListQueues' },
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'Action=DeleteQueue',
    });
    expect(error(twice)).toMatchObject({ status: 400, code: 'MalformedQueryString', message: expect.stringContaining('Action') });
  });

  it('reports a missing required parameter and a map entry without its value', async () => {
    expect(error(await query('CreateQueue'))).toMatchObject({ status: 400, code: 'MissingParameter', message: expect.stringContaining('QueueName') });
    expect(error(await query('CreateQueue', { QueueName: 'half', 'Attribute.1.Name': 'DelaySeconds' }))).toMatchObject({
      status: 400,
      code: 'MissingParameter',
      message: expect.stringContaining('Attribute.1.Value'),
    });
  });

  it('passes integers as numbers and refuses ones that are not', async () => {
    const url = await createQueue('numbers');
    expect(error(await query('ReceiveMessage', { QueueUrl: url, MaxNumberOfMessages: 'ten' }))).toMatchObject({
      status: 400,
      code: 'InvalidParameterValue',
      message: expect.stringContaining('MaxNumberOfMessages'),
    });
    expect(error(await query('ReceiveMessage', { QueueUrl: url, MaxNumberOfMessages: '11' }))).toMatchObject({ status: 400, code: 'InvalidParameterValue' });
  });

  it('refuses a binary attribute value that is not base64 with InvalidParameterValue', async () => {
    const url = await createQueue('binary');
    const attribute = { 'MessageAttribute.1.Name': 'a', 'MessageAttribute.1.Value.DataType': 'Binary' };
    expect(error(await query('SendMessage', { QueueUrl: url, MessageBody: 'x', ...attribute, 'MessageAttribute.1.Value.BinaryValue': 'not base64!' }))).toMatchObject({
      status: 400,
      code: 'InvalidParameterValue',
      message: expect.stringContaining('base64'),
    });
    expect(await query('SendMessage', { QueueUrl: url, MessageBody: 'x', ...attribute, 'MessageAttribute.1.Value.BinaryValue': 'AQID' })).toMatchObject({ status: 200 });
  });

  it('refuses a batch entry integer that is not one in that entry only, as before', async () => {
    const url = await createQueue('batch-numbers');
    const response = await query('SendMessageBatch', {
      QueueUrl: url,
      'SendMessageBatchRequestEntry.1.Id': 'good',
      'SendMessageBatchRequestEntry.1.MessageBody': 'x',
      'SendMessageBatchRequestEntry.2.Id': 'bad',
      'SendMessageBatchRequestEntry.2.MessageBody': 'y',
      'SendMessageBatchRequestEntry.2.DelaySeconds': 'one',
    });
    expect(response.status).toBe(200);
    expect(response.body).toContain('<Id>good</Id>');
    expect(response.body).toMatch(/<BatchResultErrorEntry><Id>bad<\/Id>.*<Code>InvalidParameterValue<\/Code>/s);
  });

  it('refuses more parameters, or deeper parameter names, than any SQS request has', async () => {
    // Decoding such a body used to take seconds of the event loop and hundreds of MB of heap.
    const manyParameters = 'Action=ListQueues' + Array.from({ length: 10_001 }, (_, index) => `&p${index}=`).join('');
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    expect(error(await sendRaw(t.shim.url, { headers: form, body: manyParameters }))).toMatchObject({ status: 400, code: 'MalformedQueryString' });
    const deepName = `Action=ListQueues&QueueNamePrefix${'.1'.repeat(100_000)}=x`;
    expect(error(await sendRaw(t.shim.url, { headers: form, body: deepName }))).toMatchObject({ status: 400, code: 'MalformedQueryString' });
    // The deepest name SQS reads still goes through.
    const url = await createQueue('deep-names');
    const deepest = { QueueUrl: url, 'SendMessageBatchRequestEntry.1.Id': 'a', 'SendMessageBatchRequestEntry.1.MessageBody': 'b', 'SendMessageBatchRequestEntry.1.MessageAttribute.1.Name': 'n', 'SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType': 'String', 'SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue': 'v' };
    expect(many(result(await query('SendMessageBatch', deepest), 'SendMessageBatch').SendMessageBatchResultEntry)).toHaveLength(1);
  });

  it('escapes client text echoed in an error message', async () => {
    const response = await query('GetQueueAttributes', { QueueUrl: `/${ACCOUNT}/numbers`, 'AttributeName.1': '<Bogus & "x">' });
    expect(response.body).toContain('&lt;Bogus &amp; "x"&gt;');
    expect(error(response)).toMatchObject({ status: 400, code: 'InvalidAttributeName', message: expect.stringContaining('<Bogus & "x">') });
  });
});
