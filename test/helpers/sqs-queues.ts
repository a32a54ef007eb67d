import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type ReceiveMessageCommandInput,
  type SQSClient,
} from '@aws-sdk/client-sqs';

let created = 0;

/** Creates a queue with a name no other test uses; FIFO when `fifo`. Returns its URL. */
export async function createQueue(sqs: SQSClient, prefix: string, attributes: Record<string, string> = {}, fifo = false): Promise<string> {
  created += 1;
  const name = `${prefix}-${created}${fifo ? '.fifo' : ''}`;
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: fifo ? { FifoQueue: 'true', ...attributes } : attributes }),
  );
  return QueueUrl!;
}

export interface Counts {
  visible: number;
  notVisible: number;
  delayed: number;
}

/** ApproximateNumberOfMessages, …NotVisible and …Delayed. */
export async function counts(sqs: SQSClient, queueUrl: string): Promise<Counts> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
    }),
  );
  return {
    visible: Number(Attributes!.ApproximateNumberOfMessages),
    notVisible: Number(Attributes!.ApproximateNumberOfMessagesNotVisible),
    delayed: Number(Attributes!.ApproximateNumberOfMessagesDelayed),
  };
}

/** One ReceiveMessage without waiting; the messages, never undefined. */
export async function receive(sqs: SQSClient, queueUrl: string, input: Omit<ReceiveMessageCommandInput, 'QueueUrl'> = {}): Promise<Message[]> {
  const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 0, ...input }));
  return Messages ?? [];
}
