/**
 * Creates a workflow's queues and tables on an endpoint, as the stack does in AWS: for tests and for
 * the local pipeline. Creating what already exists with the same settings is harmless.
 */
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  CreateTableCommand,
  DynamoDBClient,
  ResourceInUseException,
  UpdateContinuousBackupsCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type KeySchemaElement,
} from '@aws-sdk/client-dynamodb';
import type { AwsConnection, StageQueues } from '../event-source/connection.js';
import { DEAD_LETTER_RETENTION_SECONDS, ENV, humanReviewQueueName, stageQueueNames, stageVisibilityTimeoutSeconds, TABLES, type WorkflowDefinition } from '../workflow-definition.js';

export type TableKey = keyof typeof TABLES;

export interface WorkflowResources {
  readonly queues: Readonly<Record<string, StageQueues>>;
  readonly humanReviewQueueUrl: string;
  readonly tables: Readonly<Record<TableKey, string>>;
}

export interface ResourceOptions {
  /** Put in front of every queue and table name, to keep tests that share an endpoint apart. */
  readonly namePrefix?: string;
  /** Source queues' visibility timeout; six times the stage timeout by default, as AWS advises for Lambda. */
  readonly visibilityTimeoutSeconds?: number;
}

export function tableName(workflow: WorkflowDefinition, table: TableKey, namePrefix = ''): string {
  return `${namePrefix}${workflow.name}-${table}`;
}

function clients(aws: AwsConnection) {
  const config = { region: aws.region, ...(aws.endpoint && { endpoint: aws.endpoint }), ...(aws.credentials && { credentials: aws.credentials }) };
  return { sqs: new SQSClient(config), dynamodb: new DynamoDBClient(config) };
}

async function createFifoQueue(sqs: SQSClient, name: string, attributes: Record<string, string> = {}): Promise<{ url: string; arn: string }> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: 'true', SqsManagedSseEnabled: 'true', ...attributes } }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  if (!QueueUrl || !Attributes?.QueueArn) throw new Error(`CreateQueue ${name} returned no URL or ARN`);
  return { url: QueueUrl, arn: Attributes.QueueArn };
}

async function createTable(dynamodb: DynamoDBClient, name: string, key: TableKey): Promise<void> {
  const spec: { partitionKey: string; sortKey?: string; ttlAttribute?: string; pointInTimeRecovery?: boolean } = TABLES[key];
  const keySchema: KeySchemaElement[] = [{ AttributeName: spec.partitionKey, KeyType: 'HASH' }];
  if (spec.sortKey) keySchema.push({ AttributeName: spec.sortKey, KeyType: 'RANGE' });
  try {
    await dynamodb.send(
      new CreateTableCommand({
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: keySchema,
        AttributeDefinitions: keySchema.map(({ AttributeName }) => ({ AttributeName, AttributeType: 'S' })),
        SSESpecification: { Enabled: true },
      }),
    );
  } catch (error) {
    if (!(error instanceof ResourceInUseException)) throw error;
  }
  await waitUntilTableExists({ client: dynamodb, maxWaitTime: 60, minDelay: 1 }, { TableName: name });
  if (spec.ttlAttribute) {
    await dynamodb.send(new UpdateTimeToLiveCommand({ TableName: name, TimeToLiveSpecification: { AttributeName: spec.ttlAttribute, Enabled: true } }));
  }
  if (spec.pointInTimeRecovery) {
    await dynamodb.send(new UpdateContinuousBackupsCommand({ TableName: name, PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } }));
  }
}

export async function createWorkflowResources(aws: AwsConnection, workflow: WorkflowDefinition, options: ResourceOptions = {}): Promise<WorkflowResources> {
  const prefix = options.namePrefix ?? '';
  const { sqs, dynamodb } = clients(aws);
  try {
    const queues: Record<string, StageQueues> = {};
    for (const stage of workflow.stages) {
      const names = stageQueueNames(workflow, stage);
      const deadLetter = await createFifoQueue(sqs, prefix + names.deadLetter, { MessageRetentionPeriod: String(DEAD_LETTER_RETENTION_SECONDS) });
      const queue = await createFifoQueue(sqs, prefix + names.queue, {
        VisibilityTimeout: String(options.visibilityTimeoutSeconds ?? stageVisibilityTimeoutSeconds(stage)),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: deadLetter.arn, maxReceiveCount: stage.maxReceiveCount }),
      });
      queues[stage.name] = { queueUrl: queue.url, deadLetterQueueUrl: deadLetter.url };
    }
    const humanReview = await createFifoQueue(sqs, prefix + humanReviewQueueName(workflow));
    const tables = Object.fromEntries((Object.keys(TABLES) as TableKey[]).map((key) => [key, tableName(workflow, key, prefix)])) as Record<TableKey, string>;
    await Promise.all((Object.keys(tables) as TableKey[]).map((key) => createTable(dynamodb, tables[key], key)));
    return { queues, humanReviewQueueUrl: humanReview.url, tables };
  } finally {
    sqs.destroy();
    dynamodb.destroy();
  }
}

/** The environment variables through which agents find a workflow's tables and human review queue. */
export function resourceEnvironment(resources: WorkflowResources): Record<string, string> {
  return {
    [ENV.idempotencyTable]: resources.tables.idempotency,
    [ENV.workflowTable]: resources.tables.workflow,
    [ENV.ledgerTable]: resources.tables.ledger,
    [ENV.stateTable]: resources.tables.state,
    [ENV.humanReviewQueueUrl]: resources.humanReviewQueueUrl,
  };
}
