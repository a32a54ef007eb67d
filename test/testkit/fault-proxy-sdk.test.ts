import { CreateQueueCommand, ReceiveMessageCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { TEST_CREDENTIALS, type TestShim, startTestShim } from '../helpers/shim.js';
import { receive } from '../helpers/sqs-queues.js';

// The AWS SDK v3 talking to a real shim through the fault proxy: what a client of the region sees
// in each mode, and what the server behind the proxy got. The client's request timeout is only the
// way a client gives up on a blackhole; nothing is asserted about time.

let shim: TestShim;
let proxy: FaultProxy;
let throughProxy: SQSClient;
let queueUrl: string;

beforeAll(async () => {
  shim = await startTestShim();
  proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: shim.shim.port } });
  throughProxy = new SQSClient({
    endpoint: `http://${proxy.address}`,
    region: 'us-east-1',
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
    // This SDK only warns about a request past requestTimeout unless throwOnRequestTimeout is set.
    requestHandler: { requestTimeout: 1000, throwOnRequestTimeout: true, connectionTimeout: 1000 },
  });
  ({ QueueUrl: queueUrl } = (await shim.sqs.send(new CreateQueueCommand({ QueueName: 'through-the-proxy' }))) as { QueueUrl: string });
});

afterAll(async () => {
  throughProxy.destroy();
  await proxy.close();
  await shim.close();
});

const send = (body: string) => throughProxy.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
const failure = (call: Promise<unknown>) => call.then(() => undefined, (error: Error) => error);

describe('the AWS SDK through the fault proxy', () => {
  it('works in pass mode', async () => {
    proxy.setMode('pass');
    await send('passed');
    const { Messages = [] } = await throughProxy.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 0 }));
    expect(Messages.map((message) => message.Body)).toEqual(['passed']);
  });

  it('refuse: the call fails at once and nothing reaches the shim', async () => {
    proxy.setMode('refuse');
    const error = await failure(send('refused'));
    expect(error).toBeInstanceOf(Error);
    expect((error as NodeJS.ErrnoException).code).toMatch(/ECONNRESET|EPIPE/);
    expect(await receive(shim.sqs, queueUrl)).toEqual([]);
  });

  it('blackhole: the call times out and nothing reaches the shim', async () => {
    proxy.setMode('blackhole');
    const error = await failure(send('swallowed'));
    expect(error?.name).toBe('TimeoutError');
    expect(proxy.stats().upstream.dropped).toBeGreaterThan(0);
    expect(await receive(shim.sqs, queueUrl)).toEqual([]);
  });

  it('lost answers: the call fails, yet the message was stored (the ambiguous case)', async () => {
    proxy.setMode({ kind: 'lost-answers', then: 'reset' });
    const error = await failure(send('stored, unanswered'));
    expect((error as NodeJS.ErrnoException | undefined)?.code).toBe('ECONNRESET');
    const stored = await receive(shim.sqs, queueUrl);
    expect(stored.map((message) => message.Body)).toEqual(['stored, unanswered']);
  });

  it('lost answers, hanging: the call times out, yet the message was stored', async () => {
    proxy.setMode('lost-answers');
    const error = await failure(send('stored, never answered'));
    expect(error?.name).toBe('TimeoutError');
    const stored = await receive(shim.sqs, queueUrl);
    expect(stored.map((message) => message.Body)).toEqual(['stored, never answered']);
  });

  it('works again once back in pass mode, on a fresh connection', async () => {
    proxy.setMode('pass');
    const { MessageId } = await send('after the outage');
    expect(MessageId).toBeTruthy();
  });
});
