import { createHash } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context, SQSEvent } from 'aws-lambda';
import { functionIdentity, invocationInfo, lambdaContext } from '../../../functions/src/event-source/context.js';
import { sqsEvent } from '../../../functions/src/event-source/sqs-event.js';
import { emulator } from '../../helpers/emulator.js';

/** Points the AWS SDK clients handlers create in this process at the emulator. */
export function useEmulatorInProcess(variables: Record<string, string> = {}): void {
  const { endpoint, region, credentials } = emulator();
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: region,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    POWERTOOLS_LOG_LEVEL: 'CRITICAL',
    ...variables,
  });
}

/** A Lambda context for a direct invocation with `timeoutSeconds` to run. */
export function invocationContext(functionName: string, timeoutSeconds: number): Context {
  return lambdaContext(invocationInfo(functionIdentity({ functionName, region: 'us-east-1', accountId: '123456789012', memoryMb: 256 }), timeoutSeconds));
}

/** Receives up to `max` messages from a queue and shapes them as Lambda's SQS event source would. */
export async function receiveEvent(sqs: SQSClient, queueUrl: string, max = 10): Promise<{ event: SQSEvent; messages: Message[] }> {
  const { Messages = [] } = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: max, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['All'] }),
  );
  return { event: sqsEvent(Messages, { queueArn: 'arn:aws:sqs:us-east-1:123456789012:test.fifo', region: 'us-east-1' }), messages: Messages };
}

/** An SQS event carrying tasks as Lambda's event source would deliver them from a FIFO queue. */
export function taskEvent(tasks: readonly { taskId: string; group: string }[]): SQSEvent {
  const messages = tasks.map((task, index) => {
    const body = JSON.stringify(task);
    return {
      MessageId: `m-${index}-${task.taskId}`,
      ReceiptHandle: `r-${index}`,
      Body: body,
      MD5OfBody: createHash('md5').update(body).digest('hex'),
      Attributes: { ApproximateReceiveCount: '1', MessageGroupId: task.group, MessageDeduplicationId: task.taskId, SentTimestamp: String(Date.now()) },
    };
  });
  return sqsEvent(messages, { queueArn: 'arn:aws:sqs:us-east-1:123456789012:test.fifo', region: 'us-east-1' });
}

let documents: DynamoDBDocumentClient | undefined;

/** One document client on the emulator for the test file's own reads and writes. */
export function documentClient(): DynamoDBDocumentClient {
  documents ??= DynamoDBDocumentClient.from(new DynamoDBClient(emulator()), { marshallOptions: { removeUndefinedValues: true } });
  return documents;
}
