import { createHash } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { md5OfAttributes } from '../../edge-shim/src/sqs/message-attributes.js';
import { sendRaw } from '../helpers/raw-request.js';
import { createQueue } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// Input at the edges of what SQS allows, sent raw in the AWS JSON protocol (an SDK builds its own
// objects from such input and may not carry it as sent).
let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t?.close());

async function call(action: string, input: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await sendRaw(t.shim.url, {
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AmazonSQS.${action}` },
    body: JSON.stringify(input),
  });
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
