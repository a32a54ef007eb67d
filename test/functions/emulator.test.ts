import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { expect, it } from 'vitest';
import { emulator } from '../helpers/emulator.js';

it('reaches the AWS emulator and creates a FIFO queue there', async () => {
  const sqs = new SQSClient(emulator());
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'emulator-check.fifo', Attributes: { FifoQueue: 'true' } }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['FifoQueue'] }));
  expect(Attributes?.FifoQueue).toBe('true');
  sqs.destroy();
});
