import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { WorkflowPipeline, pascalCase, type WorkflowPipelineProps } from './workflow-pipeline.js';

export type HoldfastStackProps = StackProps & WorkflowPipelineProps;

/** One workflow's pipeline; its outputs give the queue URLs, table names and alarm topic clients and operators need. */
export class HoldfastStack extends Stack {
  readonly pipeline: WorkflowPipeline;

  constructor(scope: Construct, id: string, props: HoldfastStackProps) {
    super(scope, id, props);
    this.pipeline = new WorkflowPipeline(this, 'Pipeline', props);

    for (const { definition, queue, deadLetterQueue } of this.pipeline.stages) {
      const name = pascalCase(definition.name);
      new CfnOutput(this, `${name}QueueUrl`, { value: queue.queueUrl });
      new CfnOutput(this, `${name}DeadLetterQueueUrl`, { value: deadLetterQueue.queueUrl });
    }
    new CfnOutput(this, 'HumanReviewQueueUrl', { value: this.pipeline.humanReviewQueue.queueUrl });
    for (const [key, table] of Object.entries(this.pipeline.tables)) {
      new CfnOutput(this, `${pascalCase(key)}TableName`, { value: table.tableName });
    }
    if (this.pipeline.alarmTopic) new CfnOutput(this, 'AlarmTopicArn', { value: this.pipeline.alarmTopic.topicArn });
  }
}
