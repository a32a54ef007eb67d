import { join } from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Grant, type IGrantable, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { type IKey, Key } from 'aws-cdk-lib/aws-kms';
import { type Architecture, Runtime, type Tracing } from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { Queue, QueueEncryption, type QueueProps } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  DEAD_LETTER_RETENTION_SECONDS,
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
 * the stack is deleted (unless `removalPolicies` says otherwise). The ledger (the book of record) and
 * the workflow step log (each payment's audit trail) outlive the stack; idempotency records expire
 * within a day and the fraud velocity window refills as payments arrive, so those two go with it.
 */
const TABLE_SETTINGS: Readonly<Record<TableKey, { id: string; variable: string; removalPolicy: RemovalPolicy }>> = {
  idempotency: { id: 'IdempotencyTable', variable: ENV.idempotencyTable, removalPolicy: RemovalPolicy.DESTROY },
  workflow: { id: 'WorkflowTable', variable: ENV.workflowTable, removalPolicy: RemovalPolicy.RETAIN },
  ledger: { id: 'LedgerTable', variable: ENV.ledgerTable, removalPolicy: RemovalPolicy.RETAIN },
  state: { id: 'StateTable', variable: ENV.stateTable, removalPolicy: RemovalPolicy.DESTROY },
};

/**
 * What an edge site does in the region (edge-shim/src/hybrid/region/): carries its clients' requests
 * on the workflow's queues out, replays its backlog (SendMessageBatch), mirrors the queues
 * (GetQueueUrl, GetQueueAttributes), and creates again, tagged, a queue the region lost. IAM
 * authorizes each batch action by its single one.
 */
const EDGE_QUEUE_ACTIONS = [
  'sqs:GetQueueUrl',
  'sqs:GetQueueAttributes',
  'sqs:SendMessage',
  'sqs:ReceiveMessage',
  'sqs:DeleteMessage',
  'sqs:ChangeMessageVisibility',
  'sqs:CreateQueue',
  'sqs:TagQueue',
];
/** The edge's probe of the region: ListQueues, which IAM grants only on every queue ("*"). */
const EDGE_PROBE_ACTIONS = ['sqs:ListQueues'];
/**
 * What the sync of the edge's fallback agents (functions/src/edge/sync.ts) does to each table: it
 * reads a record and writes it on a condition; checkpoints are listed (Query), counters merged
 * (UpdateItem). It never reaches the ledger, which only the region posts to.
 */
const EDGE_SYNC_ACTIONS: Readonly<Record<Exclude<TableKey, 'ledger'>, readonly string[]>> = {
  workflow: ['dynamodb:GetItem', 'dynamodb:PutItem'],
  idempotency: ['dynamodb:GetItem', 'dynamodb:PutItem'],
  state: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
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
  /**
   * Where the alarms notify: an encrypted SNS topic the pipeline creates (true, the default), your own
   * topic (CloudWatch must be allowed to publish to it, and to use its key), or none (false).
   */
  readonly alarmTopic?: boolean | ITopic;
  /** How long the functions' logs are kept: one year by default, as PCI DSS asks of audit logs. */
  readonly logRetention?: RetentionDays;
  /**
   * A customer-managed KMS key that encrypts the queues and the tables (and that the functions and
   * the edge are granted the use of). By default SQS-managed encryption and DynamoDB's AWS-owned key.
   */
  readonly encryptionKey?: IKey;
  /** Settings of each stage's function, by stage name; a stage not named keeps the defaults. */
  readonly stageFunctions?: Readonly<Record<string, StageFunctionSettings>>;
  /** What becomes of the tables, queues and log groups when they leave the stack. */
  readonly removalPolicies?: PipelineRemovalPolicies;
}

/** How a stage's function runs, beyond what its stage definition says. */
export interface StageFunctionSettings {
  /** x86_64 by default. */
  readonly architecture?: Architecture;
  /** Memory in MiB: the stage's `memoryMb` by default. */
  readonly memorySize?: number;
  /**
   * Concurrency reserved for (and the most of) this function; none by default. At least the
   * stage's `maxConcurrency`, or the event source would be throttled.
   */
  readonly reservedConcurrentExecutions?: number;
  /** X-Ray tracing; none by default. */
  readonly tracing?: Tracing;
}

export interface PipelineRemovalPolicies {
  /** Per table: the ledger and the step log (`workflow`) are retained and protected from deletion by default, the others destroyed. */
  readonly tables?: Readonly<Partial<Record<TableKey, RemovalPolicy>>>;
  /** The queues, and the messages they hold: destroyed by default. */
  readonly queues?: RemovalPolicy;
  /** The functions' log groups: retained by default. */
  readonly logGroups?: RemovalPolicy;
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
 * review, and use the tables its stage declares, with the access declared. `grantEdge` lets an edge
 * site do what it does in the region.
 */
export class WorkflowPipeline extends Construct {
  readonly stages: readonly PipelineStage[];
  readonly humanReviewQueue: Queue;
  readonly tables: Readonly<Record<TableKey, Table>>;
  /** Where the alarms notify; absent when the pipeline was built without one. */
  readonly alarmTopic?: ITopic;
  /** The customer-managed key of the queues and tables, when one was given. */
  readonly encryptionKey?: IKey;
  private readonly props: WorkflowPipelineProps;

  constructor(scope: Construct, id: string, props: WorkflowPipelineProps) {
    super(scope, id);
    const { workflow } = props;
    this.props = props;
    this.encryptionKey = props.encryptionKey;
    const unknownStages = Object.keys(props.stageFunctions ?? {}).filter((name) => !workflow.stages.some((stage) => stage.name === name));
    if (unknownStages.length > 0) throw new Error(`stageFunctions names stages that workflow ${workflow.name} does not have: ${unknownStages.join(', ')}`);

    this.tables = {
      idempotency: this.table('idempotency'),
      workflow: this.table('workflow'),
      ledger: this.table('ledger'),
      state: this.table('state'),
    };
    this.humanReviewQueue = this.queue('HumanReviewQueue', { queueName: humanReviewQueueName(workflow), retentionPeriod: Duration.days(14) });

    const alarmTopic = props.alarmTopic ?? true;
    if (alarmTopic !== false) this.alarmTopic = alarmTopic === true ? this.createAlarmTopic() : alarmTopic;

    const queues = workflow.stages.map((stage) => this.stageQueues(workflow, stage));
    this.stages = workflow.stages.map((stage, index) => {
      const { queue, deadLetterQueue } = queues[index]!;
      const next = queues[index + 1]?.queue;
      const tables = Object.entries(stage.tables ?? ALL_TABLES) as [TableKey, TableAccess][];
      // Kept after the stack is deleted, like the ledger and step log whose history the logs explain.
      const logGroup = new LogGroup(this, `${pascalCase(stage.name)}LogGroup`, {
        retention: props.logRetention ?? RetentionDays.ONE_YEAR,
        removalPolicy: props.removalPolicies?.logGroups ?? RemovalPolicy.RETAIN,
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

  /**
   * Lets an edge site's identity do what the edge does in the region: carry its clients' requests
   * on the workflow's queues out, probe, mirror and replay, create again a queue the region lost,
   * and sync its fallback agents' work into the step log, idempotency and state tables (with the
   * use of the encryption key, if any). Nothing on the ledger; nothing that deletes, purges or
   * reconfigures a queue. README, "The edge's identity", has it as a policy document.
   */
  grantEdge(grantee: IGrantable): Grant {
    const queues = [...this.stages.flatMap((stage) => [stage.queue, stage.deadLetterQueue]), this.humanReviewQueue];
    const grants = [
      Grant.addToPrincipal({ grantee, actions: EDGE_PROBE_ACTIONS, resourceArns: ['*'] }),
      Grant.addToPrincipal({ grantee, actions: EDGE_QUEUE_ACTIONS, resourceArns: queues.map((queue) => queue.queueArn) }),
      ...Object.entries(EDGE_SYNC_ACTIONS).map(([key, actions]) =>
        Grant.addToPrincipal({ grantee, actions: [...actions], resourceArns: [this.tables[key as TableKey].tableArn] }),
      ),
      ...(this.encryptionKey ? [this.encryptionKey.grantEncryptDecrypt(grantee)] : []),
    ];
    return grants.reduce((all, grant) => all.combine(grant));
  }

  /** A FIFO queue, encrypted (with the customer-managed key when given), reachable over TLS only. */
  private queue(id: string, props: Omit<QueueProps, 'fifo' | 'encryption' | 'encryptionMasterKey' | 'enforceSSL' | 'removalPolicy'>): Queue {
    return new Queue(this, id, {
      ...props,
      fifo: true,
      ...(this.encryptionKey ? { encryption: QueueEncryption.KMS, encryptionMasterKey: this.encryptionKey } : { encryption: QueueEncryption.SQS_MANAGED }),
      enforceSSL: true,
      removalPolicy: this.props.removalPolicies?.queues ?? RemovalPolicy.DESTROY,
    });
  }

  private table(key: TableKey): Table {
    const spec: { partitionKey: string; sortKey?: string; ttlAttribute?: string; pointInTimeRecovery?: boolean } = TABLES[key];
    const { id } = TABLE_SETTINGS[key];
    const removalPolicy = this.props.removalPolicies?.tables?.[key] ?? TABLE_SETTINGS[key].removalPolicy;
    return new Table(this, id, {
      partitionKey: { name: spec.partitionKey, type: AttributeType.STRING },
      ...(spec.sortKey && { sortKey: { name: spec.sortKey, type: AttributeType.STRING } }),
      ...(spec.ttlAttribute && { timeToLiveAttribute: spec.ttlAttribute }),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: spec.pointInTimeRecovery ?? false },
      billingMode: BillingMode.PAY_PER_REQUEST,
      ...(this.encryptionKey ? { encryption: TableEncryption.CUSTOMER_MANAGED, encryptionKey: this.encryptionKey } : { encryption: TableEncryption.AWS_MANAGED }),
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
    const deadLetterQueue = this.queue(`${id}DeadLetterQueue`, { queueName: names.deadLetter, retentionPeriod: Duration.seconds(DEAD_LETTER_RETENTION_SECONDS) });
    const queue = this.queue(`${id}Queue`, {
      queueName: names.queue,
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
    const settings = props.stageFunctions?.[stage.name] ?? {};
    if (settings.reservedConcurrentExecutions !== undefined && settings.reservedConcurrentExecutions < stage.maxConcurrency) {
      throw new Error(
        `stage ${stage.name}: reserved concurrency ${settings.reservedConcurrentExecutions} is below its event source's maximum concurrency ${stage.maxConcurrency}, which would be throttled`,
      );
    }
    return new NodejsFunction(this, `${pascalCase(stage.name)}Function`, {
      entry: join(props.root, stage.entry),
      handler: 'handler',
      projectRoot: props.root,
      depsLockFilePath: join(props.root, 'package-lock.json'),
      runtime: Runtime.NODEJS_22_X,
      memorySize: settings.memorySize ?? stage.memoryMb,
      ...(settings.architecture && { architecture: settings.architecture }),
      ...(settings.reservedConcurrentExecutions !== undefined && { reservedConcurrentExecutions: settings.reservedConcurrentExecutions }),
      ...(settings.tracing && { tracing: settings.tracing }),
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
