import { join } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Runtime } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  ENV,
  humanReviewQueueName,
  stageQueueNames,
  stageVisibilityTimeoutSeconds,
  TABLES,
  type StageDefinition,
  type WorkflowDefinition,
} from '../../functions/src/workflow-definition.js';

type TableKey = keyof typeof TABLES;

export interface WorkflowPipelineProps {
  readonly workflow: WorkflowDefinition;
  /** Directory the stage entries are relative to (the repository root, where package-lock.json is). */
  readonly root: string;
  /** Variables every agent gets besides the tables and queues (gateway and notifier URLs). */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * Whether the SQS event source mappings poll. Off where functions cannot run (an emulator without
   * Docker); the local runner then runs the agents against the deployed queues.
   */
  readonly eventSourcesEnabled?: boolean;
  /** Age of a stage's oldest message that raises its alarm. */
  readonly oldestMessageAlarmAge?: Duration;
}

export interface PipelineStage {
  readonly definition: StageDefinition;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly handler: NodejsFunction;
  readonly deadLetterAlarm: Alarm;
  readonly oldestMessageAlarm: Alarm;
}

/** `fraud-score` → `FraudScore`, for construct ids and output names. */
export function pascalCase(name: string): string {
  return name
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
}

/**
 * A workflow as AWS resources: per stage a FIFO queue with a FIFO dead-letter queue, one Lambda
 * function fed by an SQS event source with partial batch responses, and alarms; the workflow's
 * tables and human review queue. Everything is encrypted at rest and each function may do only what
 * its stage needs: consume its queue, send to the next one and to human review, use the tables.
 */
export class WorkflowPipeline extends Construct {
  readonly stages: readonly PipelineStage[];
  readonly humanReviewQueue: Queue;
  readonly tables: Readonly<Record<TableKey, Table>>;

  constructor(scope: Construct, id: string, props: WorkflowPipelineProps) {
    super(scope, id);
    const { workflow } = props;

    this.tables = {
      idempotency: this.table('IdempotencyTable', 'idempotency'),
      workflow: this.table('WorkflowTable', 'workflow'),
      ledger: this.table('LedgerTable', 'ledger'),
      state: this.table('StateTable', 'state'),
    };
    this.humanReviewQueue = new Queue(this, 'HumanReviewQueue', {
      queueName: humanReviewQueueName(workflow),
      fifo: true,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });

    const queues = workflow.stages.map((stage) => this.stageQueues(workflow, stage));
    this.stages = workflow.stages.map((stage, index) => {
      const { queue, deadLetterQueue } = queues[index]!;
      const next = queues[index + 1]?.queue;
      const handler = this.stageFunction(stage, props, next);
      handler.addEventSource(
        new SqsEventSource(queue, {
          batchSize: stage.batchSize,
          maxConcurrency: stage.maxConcurrency,
          reportBatchItemFailures: true,
          enabled: props.eventSourcesEnabled ?? true,
        }),
      );
      next?.grantSendMessages(handler);
      this.humanReviewQueue.grantSendMessages(handler);
      for (const table of Object.values(this.tables)) table.grantReadWriteData(handler);
      return { definition: stage, queue, deadLetterQueue, handler, ...this.stageAlarms(stage, queue, deadLetterQueue, props) };
    });
  }

  private table(id: string, key: TableKey): Table {
    const spec: { partitionKey: string; sortKey?: string; ttlAttribute?: string; pointInTimeRecovery?: boolean } = TABLES[key];
    return new Table(this, id, {
      partitionKey: { name: spec.partitionKey, type: AttributeType.STRING },
      ...(spec.sortKey && { sortKey: { name: spec.sortKey, type: AttributeType.STRING } }),
      ...(spec.ttlAttribute && { timeToLiveAttribute: spec.ttlAttribute }),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: spec.pointInTimeRecovery ?? false },
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.AWS_MANAGED,
    });
  }

  private stageQueues(workflow: WorkflowDefinition, stage: StageDefinition): { queue: Queue; deadLetterQueue: Queue } {
    const names = stageQueueNames(workflow, stage);
    const id = pascalCase(stage.name);
    const deadLetterQueue = new Queue(this, `${id}DeadLetterQueue`, {
      queueName: names.deadLetter,
      fifo: true,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const queue = new Queue(this, `${id}Queue`, {
      queueName: names.queue,
      fifo: true,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(stageVisibilityTimeoutSeconds(stage)),
      deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: stage.maxReceiveCount },
    });
    return { queue, deadLetterQueue };
  }

  private stageFunction(stage: StageDefinition, props: WorkflowPipelineProps, next: Queue | undefined): NodejsFunction {
    return new NodejsFunction(this, `${pascalCase(stage.name)}Function`, {
      entry: join(props.root, stage.entry),
      handler: 'handler',
      projectRoot: props.root,
      depsLockFilePath: join(props.root, 'package-lock.json'),
      runtime: Runtime.NODEJS_22_X,
      memorySize: stage.memoryMb,
      timeout: Duration.seconds(stage.timeoutSeconds),
      environment: {
        [ENV.idempotencyTable]: this.tables.idempotency.tableName,
        [ENV.workflowTable]: this.tables.workflow.tableName,
        [ENV.ledgerTable]: this.tables.ledger.tableName,
        [ENV.stateTable]: this.tables.state.tableName,
        [ENV.humanReviewQueueUrl]: this.humanReviewQueue.queueUrl,
        ...(next && { [ENV.nextQueueUrl]: next.queueUrl }),
        ...props.environment,
        NODE_OPTIONS: '--enable-source-maps',
      },
      bundling: {
        forceDockerBundling: false,
        format: OutputFormat.ESM,
        target: 'node22',
        mainFields: ['module', 'main'],
        // ESM output keeps working for bundled CommonJS dependencies that call require().
        banner: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
        // Ship the SDK the code was tested with rather than the runtime's.
        bundleAwsSDK: true,
        sourceMap: true,
        minify: true,
      },
    });
  }

  private stageAlarms(stage: StageDefinition, queue: Queue, deadLetterQueue: Queue, props: WorkflowPipelineProps): Pick<PipelineStage, 'deadLetterAlarm' | 'oldestMessageAlarm'> {
    const id = pascalCase(stage.name);
    const deadLetterAlarm = new Alarm(this, `${id}DeadLetterAlarm`, {
      alarmDescription: `Messages of stage ${stage.name} reached its dead-letter queue`,
      metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    const oldestMessageAlarm = new Alarm(this, `${id}OldestMessageAlarm`, {
      alarmDescription: `Stage ${stage.name} is falling behind: its oldest message is too old`,
      metric: queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(1), statistic: 'Maximum' }),
      threshold: (props.oldestMessageAlarmAge ?? Duration.minutes(15)).toSeconds(),
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
    return { deadLetterAlarm, oldestMessageAlarm };
  }
}
