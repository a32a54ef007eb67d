import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { ListQueuesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { AwsConnection } from '../event-source/connection.js';

export class EndpointError extends Error {}

async function probe(service: string, call: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await call();
    return undefined;
  } catch (error) {
    const { name, message, code } = error as Error & { code?: string };
    return `${service} answered ${code ?? name}: ${message}`;
  }
}

/**
 * Checks, before anything is created, that the endpoint answers both SQS and DynamoDB, as the
 * pipeline needs. The usual mistake is AWS_ENDPOINT_URL left pointing at the edge shim, which
 * speaks SQS only: without this check the queues get created there and the run fails at the tables.
 */
export async function checkAwsEndpoint(aws: AwsConnection): Promise<void> {
  const options = { ...aws, maxAttempts: 1 };
  const sqs = new SQSClient(options);
  const dynamodb = new DynamoDBClient(options);
  try {
    const failures = (
      await Promise.all([
        probe('SQS (ListQueues)', () => sqs.send(new ListQueuesCommand({ MaxResults: 1 }))),
        probe('DynamoDB (ListTables)', () => dynamodb.send(new ListTablesCommand({ Limit: 1 }))),
      ])
    ).filter((failure) => failure !== undefined);
    if (failures.length === 0) return;
    const sqsOnly = failures.length === 1 && failures[0]!.startsWith('DynamoDB');
    throw new EndpointError(
      [
        `The AWS endpoint ${aws.endpoint ?? `of ${aws.region}`} cannot run the pipeline: it needs SQS and DynamoDB, and`,
        ...failures.map((failure) => `  ${failure}`),
        sqsOnly
          ? 'It speaks SQS but not DynamoDB: is AWS_ENDPOINT_URL pointing at the edge shim? Unset it to run against a moto server started for this run, or point it at LocalStack.'
          : 'Unset AWS_ENDPOINT_URL to run against a moto server started for this run, or point it at a running LocalStack.',
        'Nothing was created.',
      ].join('\n'),
    );
  } finally {
    sqs.destroy();
    dynamodb.destroy();
  }
}
