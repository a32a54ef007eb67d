/**
 * A stage handler the local-runner test loads from its entry in a worker thread: it forwards each
 * record, with what it saw of its environment and context, to the next stage's queue. With
 * CRASH_ON_FIRST_RECEIVE set, a record's first delivery kills the thread instead.
 */
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, SQSEvent } from 'aws-lambda';

const sqs = new SQSClient({});

export async function handler(event: SQSEvent, context: Context): Promise<void> {
  const nextQueueUrl = process.env.NEXT_QUEUE_URL;
  if (!nextQueueUrl) throw new Error('NEXT_QUEUE_URL is not set');
  for (const record of event.Records) {
    if (process.env.CRASH_ON_FIRST_RECEIVE && record.attributes.ApproximateReceiveCount === '1') process.exit(1);
    const seen = {
      body: record.body,
      mark: process.env.RUNNER_TEST_MARK,
      functionName: context.functionName,
      lambdaFunctionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
      hasTimeLeft: context.getRemainingTimeInMillis() > 0,
      receiveCount: record.attributes.ApproximateReceiveCount,
    };
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: nextQueueUrl,
        MessageBody: JSON.stringify(seen),
        MessageGroupId: record.attributes.MessageGroupId,
        MessageDeduplicationId: record.messageId,
      }),
    );
  }
}
