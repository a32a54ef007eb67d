import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateQueueCommand, GetQueueAttributesCommand, ListQueuesCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { TEST_CREDENTIALS, type TestShim, startTestShim } from '../helpers/shim.js';

// Two options a site meets on its first day: --queues, which a standalone shim applies at start as
// ElasticMQ does with its configuration, and --region, which follows the upstream's region so that
// clients sign for the site's region.

const EXAMPLE = fileURLToPath(new URL('../../deploy/queues.example.json', import.meta.url));

describe('--queues in a standalone shim', () => {
  const shims: TestShim[] = [];
  afterEach(async () => {
    for (const shim of shims.splice(0)) await shim.close();
  });

  it('creates the declared queues at start, dead-letter queues first, redrive policies naming its own', async () => {
    const t = await startTestShim({ queuesFile: EXAMPLE, accountId: '111122223333' });
    shims.push(t);
    const { QueueUrls } = await t.sqs.send(new ListQueuesCommand({}));
    expect(QueueUrls?.map((url) => url.split('/').pop()).sort()).toEqual(['payments-authorize-dlq.fifo', 'payments-authorize.fifo', 'telemetry']);
    const { Attributes } = await t.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: `${t.shim.url}/111122223333/payments-authorize.fifo`, AttributeNames: ['All'] }),
    );
    expect(Attributes).toMatchObject({ FifoQueue: 'true', VisibilityTimeout: '180' });
    // The example names an ARN of another account and region: the shim's queue of that name it is.
    expect(JSON.parse(Attributes!.RedrivePolicy!)).toEqual({ deadLetterTargetArn: 'arn:aws:sqs:us-east-1:111122223333:payments-authorize-dlq.fifo', maxReceiveCount: 5 });
  });

  it('brings a queue it already has in line with the file at the next start, and keeps its messages', async () => {
    const first = await startTestShim({ queuesFile: EXAMPLE });
    const queueUrl = `${first.shim.url}/000000000000/telemetry`;
    await first.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'kept' }));
    const { dbFile } = first;
    const changed = join(first.dir, 'queues.json');
    writeFileSync(changed, JSON.stringify({ queues: [{ name: 'telemetry', attributes: { MessageRetentionPeriod: '3600' } }] }));
    await first.shim.close();

    const second = await startTestShim({ dbFile, queuesFile: changed });
    shims.push(second);
    first.sqs.destroy();
    const url = `${second.shim.url}/000000000000/telemetry`;
    const { Attributes } = await second.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
    expect(Attributes).toMatchObject({ MessageRetentionPeriod: '3600', ApproximateNumberOfMessages: '1' });
  });

  it('refuses to start when the file declares a queue of the other type than the one it has', async () => {
    const first = await startTestShim();
    shims.push(first);
    await first.sqs.send(new CreateQueueCommand({ QueueName: 'telemetry.fifo', Attributes: { FifoQueue: 'true' } }));
    const file = join(first.dir, 'queues.json');
    writeFileSync(file, JSON.stringify({ queues: [{ name: 'telemetry.fifo', attributes: {} }] }));
    await first.shim.close();
    await expect(startTestShim({ dbFile: first.dbFile, queuesFile: file })).rejects.toThrow(/declares telemetry.fifo standard, but this shim has it as a FIFO queue/);
  });
});

describe('--region', () => {
  const shims: TestShim[] = [];
  afterEach(async () => {
    for (const shim of shims.splice(0)) await shim.close();
  });

  it("is the upstream's region by default: clients sign for the site's region", async () => {
    const region = await startTestShim({ region: 'eu-west-1' });
    shims.push(region);
    const edge = await startTestShim({ upstream: region.shim.url, upstreamRegion: 'eu-west-1', upstreamCredentials: TEST_CREDENTIALS });
    shims.push(edge);
    const client = new SQSClient({ endpoint: edge.shim.url, region: 'eu-west-1', credentials: TEST_CREDENTIALS, maxAttempts: 1 });
    try {
      const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: 'signed-for-eu-west-1' }));
      const { Attributes } = await client.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
      expect(Attributes?.QueueArn).toBe('arn:aws:sqs:eu-west-1:000000000000:signed-for-eu-west-1');
    } finally {
      client.destroy();
    }
    // A client signing for another region is refused, as the region itself refuses it.
    await expect(edge.sqs.send(new ListQueuesCommand({}))).rejects.toThrow(/Credential should be scoped to a valid region/);
  });
});
