import { CreateQueueCommand, GetQueueAttributesCommand, type Message, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { AwsConnection, StageQueues } from '../../../functions/src/event-source/runner.js';
import { sqsTaskQueues, type AgentDependencies } from '../../../functions/src/runtime/dependencies.js';
import { edgeSite } from '../../../functions/src/runtime/site.js';
import { stageTaskId, type Task } from '../../../functions/src/runtime/task.js';
import { humanReviewQueueName, stageQueueNames, type WorkflowDefinition } from '../../../functions/src/workflow-definition.js';
import { startTestShim, TEST_CREDENTIALS, type TestShim } from '../../helpers/shim.js';
import { type EdgeEngine, edgeDatabase, type TestEdgeDatabase } from './backends.js';

/**
 * An edge site for a test: the shim (standalone, on loopback) with the workflow's queues, and an
 * edge database of the engine asked for, as the shim will run fallback agents while the region is down.
 */
export interface EdgeSite {
  readonly siteId: string;
  readonly shim: TestShim;
  readonly aws: AwsConnection;
  readonly queues: Record<string, StageQueues>;
  readonly humanReviewQueueUrl: string;
  readonly database: TestEdgeDatabase;
  /** Dependencies of an agent running here, on this site's database and queues, with its saga's settings. */
  dependencies<S>(workflow: WorkflowDefinition, stage: string, settings: S): AgentDependencies<S>;
  close(): Promise<void>;
}

async function createFifoQueue(sqs: SQSClient, name: string, attributes: Record<string, string> = {}): Promise<string> {
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: 'true', ...attributes } }));
  return QueueUrl!;
}

export async function startEdgeSite(workflow: WorkflowDefinition, engine: EdgeEngine = 'sqlite', siteId = 'edge-a'): Promise<EdgeSite> {
  const shim = await startTestShim();
  const queues: Record<string, StageQueues> = {};
  for (const stage of workflow.stages) {
    const names = stageQueueNames(workflow, stage);
    const deadLetterQueueUrl = await createFifoQueue(shim.sqs, names.deadLetter);
    const { Attributes } = await shim.sqs.send(new GetQueueAttributesCommand({ QueueUrl: deadLetterQueueUrl, AttributeNames: ['QueueArn'] }));
    const queueUrl = await createFifoQueue(shim.sqs, names.queue, {
      VisibilityTimeout: String(stage.timeoutSeconds * 6),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: stage.maxReceiveCount }),
    });
    queues[stage.name] = { queueUrl, deadLetterQueueUrl };
  }
  const humanReviewQueueUrl = await createFifoQueue(shim.sqs, humanReviewQueueName(workflow));
  const database = await edgeDatabase(engine);
  const site = edgeSite(siteId);
  return {
    siteId,
    shim,
    aws: { endpoint: shim.shim.url, region: 'us-east-1', credentials: TEST_CREDENTIALS },
    queues,
    humanReviewQueueUrl,
    database,
    dependencies(definition, stageName, settings) {
      const index = definition.stages.findIndex((stage) => stage.name === stageName);
      const next = definition.stages[index + 1];
      return {
        site,
        stores: database.stores,
        settings,
        ...sqsTaskQueues(shim.sqs, {
          nextQueueUrl: () => queues[next!.name]!.queueUrl,
          humanReviewQueueUrl: () => humanReviewQueueUrl,
        }),
      };
    },
    async close() {
      await shim.close();
      await database.remove();
    },
  };
}

/** The first stage's task of a payment-like workflow, as a client submits it (grouped by account). */
export function firstTask(workflow: WorkflowDefinition, request: { paymentId: string; account: string }): Task {
  const stage = workflow.stages[0]!.name;
  return { taskId: stageTaskId(request.paymentId, stage), workflow: workflow.name, workflowId: request.paymentId, stage, group: request.account, input: request };
}

export async function sendTask(sqs: SQSClient, queueUrl: string, task: Task): Promise<void> {
  await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(task), MessageGroupId: task.group, MessageDeduplicationId: task.taskId }));
}

/** Takes every message now visible on a queue (they stay in flight: each is read once). */
export async function drain(sqs: SQSClient, queueUrl: string): Promise<Message[]> {
  const messages: Message[] = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 600 }));
    if (Messages.length === 0) return messages;
    messages.push(...Messages);
  }
}

/** Messages on a queue, visible or in flight. */
export async function depth(sqs: SQSClient, queueUrl: string): Promise<number> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible);
}
