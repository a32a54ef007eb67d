import { join } from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Runtime } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  ENV,
  humanReviewQueueName,
  stageQueueNames,
  stageVisibilityTimeoutSeconds,
  TABLES,
  type StageDefinition,
  type TableAccess,
  type TableKey,
  type WorkflowDefinition,
} from '../../functions/src/workflow-definition.js';

/**
 * Per table: its construct id, the variable that names it to the agents, and what happens to it when
 * the stack is deleted. The ledger (the book of record) and the workflow step log (each payment's
 * audit trail) outlive the stack; idempotency records expire within a day and the fraud velocity
 * window refills as payments arrive, so those two go with it.
 */
const TABLE_SETTINGS: Readonly<Record<TableKey, { id: string; variable: string; removalPolicy: RemovalPolicy }>> = {
  idempotency: { id: 'IdempotencyTable', variable: ENV.idempotencyTable, removalPolicy: RemovalPolicy.DESTROY },
  workflow: { id: 'WorkflowTable', variable: ENV.workflowTable, removalPolicy: RemovalPolicy.RETAIN },
  ledger: { id: 'LedgerTable', variable: ENV.ledgerTable, removalPolicy: RemovalPolicy.RETAIN },
  state: { id: 'StateTable', variable: ENV.stateTable, removalPolicy: RemovalPolicy.DESTROY },
};

/** What a stage that declares no tables gets: every table, read and write. */
const ALL_TABLES: Readonly<Record<TableKey, TableAccess>> = { idempotency: 'readwrite', workflow: 'readwrite', ledger: 'readwrite', state: 'readwrite' };

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
  /** Whether the alarms notify an encrypted SNS topic the pipeline creates (default true). */
  readonly alarmTopic?: boolean;
  /** How long the functions' logs are kept: one year by default, as PCI DSS asks of audit logs. */
  readonly logRetention?: RetentionDays;
}

export interface PipelineStage {
  readonly definition: StageDefinition;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly handler: NodejsFunction;
  readonly logGroup: LogGroup;
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
 * function fed by an SQS event source with partial batch responses, its log group, and alarms; the
 * workflow's tables, human review queue and alarm topic. Everything is encrypted at rest and each
 * function may do only what its stage needs: consume its queue, send to the next one and to human
 * review, and use the tables its stage declares, with the access declared.
 */
export class WorkflowPipeline extends Construct {
  readonly stages: readonly PipelineStage[];
  readonly humanReviewQueue: Queue;
  readonly tables: Readonly<Record<TableKey, Table>>;
  /** Where the alarms notify; absent when the pipeline was built without one. */
  readonly alarmTopic?: Topic;

  constructor(scope: Construct, id: string, props: WorkflowPipelineProps) {
    super(scope, id);
    const { workflow } = props;

    this.tables = {
      idempotency: this.table('idempotency'),
      workflow: this.table('workflow'),
      ledger: this.table('ledger'),
      state: this.table('state'),
    };
    this.humanReviewQueue = new Queue(this, 'HumanReviewQueue', {
      queueName: humanReviewQueueName(workflow),
      fifo: true,
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });

    if (props.alarmTopic ?? true) this.alarmTopic = this.createAlarmTopic();

    const queues = workflow.stages.map((stage) => this.stageQueues(workflow, stage));
    this.stages = workflow.stages.map((stage, index) => {
      const { queue, deadLetterQueue } = queues[index]!;
      const next = queues[index + 1]?.queue;
      const tables = Object.entries(stage.tables ?? ALL_TABLES) as [TableKey, TableAccess][];
      // Kept after the stack is deleted, like the ledger and step log whose history the logs explain.
      const logGroup = new LogGroup(this, `${pascalCase(stage.name)}LogGroup`, {
        retention: props.logRetention ?? RetentionDays.ONE_YEAR,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      // An own role rather than the default one, whose managed policy may write to every log group.
      const role = new Role(this, `${pascalCase(stage.name)}FunctionRole`, { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
      logGroup.grantWrite(role);
      const handler = this.stageFunction(stage, props, { next, tables, logGroup, role });
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
      for (const [key, access] of tables) {
        if (access === 'read') this.tables[key].grantReadData(handler);
        else this.tables[key].grantReadWriteData(handler);
      }
      return { definition: stage, queue, deadLetterQueue, handler, logGroup, ...this.stageAlarms(stage, queue, deadLetterQueue, props) };
    });
  }

  private table(key: TableKey): Table {
    const spec: { partitionKey: string; sortKey?: string; ttlAttribute?: string; pointInTimeRecovery?: boolean } = TABLES[key];
    const { id, removalPolicy } = TABLE_SETTINGS[key];
    return new Table(this, id, {
      partitionKey: { name: spec.partitionKey, type: AttributeType.STRING },
      ...(spec.sortKey && { sortKey: { name: spec.sortKey, type: AttributeType.STRING } }),
      ...(spec.ttlAttribute && { timeToLiveAttribute: spec.ttlAttribute }),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: spec.pointInTimeRecovery ?? false },
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.AWS_MANAGED,
      removalPolicy,
      // A retained table is also one nobody should delete by hand without first turning this off.
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
    });
  }

  /**
   * An SNS topic encrypted with its own KMS key: CloudWatch cannot publish to a topic under the AWS
   * managed SNS key, whose policy cannot let it in. Only this account's alarms may use either.
   */
  private createAlarmTopic(): Topic {
    const { account, region, partition } = Stack.of(this);
    const cloudWatch = new ServicePrincipal('cloudwatch.amazonaws.com');
    const fromOwnAlarms = {
      StringEquals: { 'aws:SourceAccount': account },
      ArnLike: { 'aws:SourceArn': `arn:${partition}:cloudwatch:${region}:${account}:alarm:*` },
    };
    const key = new Key(this, 'AlarmTopicKey', {
      description: 'Encrypts the alarm notifications of the Holdfast pipeline',
      enableKeyRotation: true,
      // It protects only notifications on their way to subscribers: nothing to keep once the topic is gone.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    key.addToResourcePolicy(
      new PolicyStatement({ principals: [cloudWatch], actions: ['kms:Decrypt', 'kms:GenerateDataKey*'], resources: ['*'], conditions: fromOwnAlarms }),
    );
    const topic = new Topic(this, 'AlarmTopic', { displayName: 'Holdfast pipeline alarms', masterKey: key, enforceSSL: true });
    // The topic policy replaces SNS's default one, which is what lets same-account alarms publish.
    topic.addToResourcePolicy(
      new PolicyStatement({ principals: [cloudWatch], actions: ['sns:Publish'], resources: [topic.topicArn], conditions: fromOwnAlarms }),
    );
    return topic;
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

  private stageFunction(
    stage: StageDefinition,
    props: WorkflowPipelineProps,
    { next, tables, logGroup, role }: { next: Queue | undefined; tables: readonly [TableKey, TableAccess][]; logGroup: LogGroup; role: Role },
  ): NodejsFunction {
    return new NodejsFunction(this, `${pascalCase(stage.name)}Function`, {
      entry: join(props.root, stage.entry),
      handler: 'handler',
      projectRoot: props.root,
      depsLockFilePath: join(props.root, 'package-lock.json'),
      runtime: Runtime.NODEJS_22_X,
      memorySize: stage.memoryMb,
      timeout: Duration.seconds(stage.timeoutSeconds),
      logGroup,
      role,
      environment: {
        ...Object.fromEntries(tables.map(([key]) => [TABLE_SETTINGS[key].variable, this.tables[key].tableName])),
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
    if (this.alarmTopic) {
      const action = new SnsAction(this.alarmTopic);
      for (const alarm of [deadLetterAlarm, oldestMessageAlarm]) {
        alarm.addAlarmAction(action);
        alarm.addOkAction(action);
      }
    }
    return { deadLetterAlarm, oldestMessageAlarm };
  }
}
