import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { humanReviewQueueName, stageQueueNames, stageVisibilityTimeoutSeconds, type WorkflowDefinition } from '../functions/src/workflow-definition.js';

/** Creates a workflow's queues at an SQS endpoint (the shim) as the stack does: per stage a FIFO queue with its dead-letter queue, and human review. */
export async function createWorkflowQueues(sqs: SQSClient, workflow: WorkflowDefinition): Promise<void> {
  const fifo = (name: string, attributes: Record<string, string> = {}) =>
    sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { FifoQueue: 'true', ...attributes } }));
  for (const stage of workflow.stages) {
    const names = stageQueueNames(workflow, stage);
    const { QueueUrl } = await fifo(names.deadLetter);
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
    await fifo(names.queue, {
      VisibilityTimeout: String(stageVisibilityTimeoutSeconds(stage)),
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: stage.maxReceiveCount }),
    });
  }
  await fifo(humanReviewQueueName(workflow));
}
