/**
 * The contract between the agents (functions/), the CDK stack (infra/) and the local runner: a
 * workflow is a chain of stages, each an agent on its own FIFO queue. The stack turns a definition
 * into queues, tables and functions; the local runner runs the same handlers against any SQS endpoint.
 */
export interface StageDefinition {
  /** Agent name, e.g. `authorize`; also the stem of its queue names. */
  readonly name: string;
  /** Handler module, relative to the repository root; it exports `handler`. */
  readonly entry: string;
  /** Receives before a message goes to the stage's dead-letter queue. */
  readonly maxReceiveCount: number;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  /** Event-source batch size (1 to 10 for FIFO) and maximum concurrency (2 to 1000). */
  readonly batchSize: number;
  readonly maxConcurrency: number;
  /** Whether the edge shim may run this agent as a fallback while the region is down. */
  readonly runsAtEdge: boolean;
  /**
   * Tables the stage's function uses and how: the runtime's own (idempotency, workflow), those of
   * its agent, and those of earlier stages' compensations, which run in the stage that fails.
   * The stack grants and configures only these; absent means all tables, read and write.
   */
  readonly tables?: Readonly<Partial<Record<TableKey, TableAccess>>>;
}

export type TableKey = keyof typeof TABLES;
export type TableAccess = 'read' | 'readwrite';

export interface WorkflowDefinition {
  readonly name: string;
  readonly stages: readonly StageDefinition[];
}

/** DynamoDB tables every workflow uses; key names are shared by the runtime and the stack. */
export const TABLES = {
  idempotency: { partitionKey: 'id', ttlAttribute: 'expiration' },
  workflow: { partitionKey: 'pk', sortKey: 'sk' },
  ledger: { partitionKey: 'pk', sortKey: 'sk', pointInTimeRecovery: true },
  state: { partitionKey: 'pk', sortKey: 'sk' },
} as const;

/** Environment variables through which the stack and the local runner configure each agent. */
export const ENV = {
  idempotencyTable: 'IDEMPOTENCY_TABLE',
  workflowTable: 'WORKFLOW_TABLE',
  ledgerTable: 'LEDGER_TABLE',
  stateTable: 'STATE_TABLE',
  /** URL of the next stage's queue; absent on the last stage. */
  nextQueueUrl: 'NEXT_QUEUE_URL',
  humanReviewQueueUrl: 'HUMAN_REVIEW_QUEUE_URL',
  gatewayUrl: 'PAYMENT_GATEWAY_URL',
  notifierUrl: 'NOTIFIER_URL',
  /** Set only at the edge: the site's id. The agent then runs on the SQLite database below, not DynamoDB. */
  edgeSiteId: 'HOLDFAST_EDGE_SITE_ID',
  /** The edge database file (SQLite, WAL), shared by the site's fallback agents. */
  edgeDatabase: 'HOLDFAST_EDGE_DATABASE',
  /** Payments at the edge (degraded mode): largest payment authorized there, in minor units. */
  edgePaymentLimitMinor: 'HOLDFAST_EDGE_PAYMENT_LIMIT_MINOR',
  /** Total an edge site may authorize per account and currency over an outage, in minor units. */
  edgeAccountExposureMinor: 'HOLDFAST_EDGE_ACCOUNT_EXPOSURE_MINOR',
  /** Total an edge site may authorize per currency over an outage, in minor units. */
  edgeSiteExposureMinor: 'HOLDFAST_EDGE_SITE_EXPOSURE_MINOR',
} as const;

/**
 * Names of the stack's outputs, which an edge site is wired from (`holdfast --stack-outputs`). The
 * queues' URLs are outputs whose names end in `QueueUrl`: `<Stage>QueueUrl` and
 * `<Stage>DeadLetterQueueUrl` per stage (`fraud-score` → `FraudScoreQueueUrl`), and `HumanReviewQueueUrl`.
 */
export const STACK_OUTPUTS = {
  region: 'Region',
  workflowName: 'WorkflowName',
  tables: { idempotency: 'IdempotencyTableName', workflow: 'WorkflowTableName', ledger: 'LedgerTableName', state: 'StateTableName' },
  humanReviewQueueUrl: 'HumanReviewQueueUrl',
  queueUrlSuffix: 'QueueUrl',
  alarmTopicArn: 'AlarmTopicArn',
  /** The role the stack made for edge sites, when asked to, and its instance profile when EC2 may take it. */
  edgeRoleArn: 'EdgeRoleArn',
  edgeInstanceProfileName: 'EdgeInstanceProfileName',
} as const;

/** FIFO queue names of a stage: `<workflow>-<stage>.fifo` and its dead-letter queue. */
export function stageQueueNames(workflow: WorkflowDefinition, stage: StageDefinition): { queue: string; deadLetter: string } {
  return { queue: `${workflow.name}-${stage.name}.fifo`, deadLetter: `${workflow.name}-${stage.name}-dlq.fifo` };
}

export function humanReviewQueueName(workflow: WorkflowDefinition): string {
  return `${workflow.name}-human-review.fifo`;
}

/** How long a stage's dead-letter queue keeps a message: SQS's longest retention, 14 days. */
export const DEAD_LETTER_RETENTION_SECONDS = 14 * 24 * 3600;

/** Visibility timeout of a stage's queue: AWS advises six times the function timeout for a Lambda event source. */
export function stageVisibilityTimeoutSeconds(stage: StageDefinition): number {
  return stage.timeoutSeconds * 6;
}
