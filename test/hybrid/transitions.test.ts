import { randomUUID } from 'node:crypto';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/wait.js';
import { type HybridTest, drainRegion, startHybridTest } from '../helpers/hybrid.js';

// The hybrid edge through a whole outage: online (pass-through), offline (store and forward),
// replaying, online again, against the emulator as the region with a fault proxy between them.

let t: HybridTest | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;



const mode = async () => (await t!.shim.status()).mode;

describe('pass-through while the region is up', () => {
  it('creates queues and sends in the region, answering with the edge URL and the region message id', async () => {
    t = await startHybridTest();
    const name = unique('passthrough');
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: name }));
    expect(QueueUrl).toBe(`${t.shim.url}/000000000000/${name}`);
    const sent = await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'to the region' }));
    const [message] = await drainRegion(t.region, name);
    expect(message).toMatchObject({ MessageId: sent.MessageId, Body: 'to the region' });
    expect(await mode()).toBe('online');
  });
});

describe('an outage', () => {
  it('takes sends at the edge while the region is cut off and replays them in order when it returns', async () => {
    t = await startHybridTest();
    const name = `${unique('outage')}.fifo`;
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' } }));
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'before', MessageGroupId: 'g' }));
    t.proxy.setMode('blackhole');
    const during = Array.from({ length: 20 }, (_, index) => `during ${index}`);
    for (const body of during) await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body, MessageGroupId: 'g' }));
    await eventually(mode, (current) => current === 'offline');
    expect((await t.shim.status()).backlog).toBe(20);
    t.proxy.setMode('pass');
    await eventually(mode, (current) => current === 'online');
    expect((await t.shim.status()).backlog).toBe(0);
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'after', MessageGroupId: 'g' }));
    const bodies = (await drainRegion(t.region, name)).map((message) => message.Body);
    expect(bodies).toEqual(['before', ...during, 'after']);
  });

  it('reports the counts of what the edge still holds with the region\'s', async () => {
    t = await startHybridTest();
    const name = unique('counts');
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: name }));
    const { Attributes } = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn', 'ApproximateNumberOfMessages'] }));
    expect(Attributes).toEqual({ QueueArn: `arn:aws:sqs:us-east-1:000000000000:${name}`, ApproximateNumberOfMessages: '0' });
  });
});
