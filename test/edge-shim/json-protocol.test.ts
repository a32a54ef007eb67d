import { GetQueueUrlCommand, QueueDoesNotExist } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RawResponse, sendRaw } from '../helpers/raw-request.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// The AWS JSON 1.0 protocol at its edges: raw requests a well-behaved SDK would never send.

const JSON_TYPE = 'application/x-amz-json-1.0';

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t.close());

function jsonRequest(target: string | undefined, body: string, contentType = JSON_TYPE): Promise<RawResponse> {
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
