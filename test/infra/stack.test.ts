import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { App, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AccountPrincipal, Role } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Architecture, Tracing } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { describe, expect, it } from 'vitest';
import { HoldfastStack } from '../../infra/lib/holdfast-stack.js';
import { pascalCase } from '../../infra/lib/workflow-pipeline.js';
import { humanReviewQueueName, stageQueueNames, type StageDefinition, type WorkflowDefinition } from '../../functions/src/workflow-definition.js';
import { payments } from '../../functions/src/workflows/payments.js';
import { REPOSITORY_ROOT, synthStack } from './support/synth-stack.js';

type Resource = { Type: string; Properties: Record<string, any> };

const { stack, template } = synthStack({ workflow: payments, environment: { PAYMENT_GATEWAY_URL: 'https://gateway.test' } });
const resources = (type: string) => Object.entries(template.findResources(type) as Record<string, Resource>);
const logicalId = (construct: { node: { defaultChild?: unknown } }) => stack.getLogicalId(construct.node.defaultChild as never);

type Statement = { Action: string | string[]; Resource: unknown };
/** The statements of every inline policy attached to a role. */
function roleStatements(synthesized: Template, roleId: string): Statement[] {
  return Object.values(synthesized.findResources('AWS::IAM::Policy') as Record<string, Resource>)
    .filter((policy) => policy.Properties.Roles.some((ref: { Ref: string }) => ref.Ref === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[]);
}
/** DynamoDB actions a role may take, by the logical id of the table they apply to. */
function tableActions(synthesized: Template, roleId: string): Record<string, string[]> {
  const byTable: Record<string, string[]> = {};
  for (const statement of roleStatements(synthesized, roleId)) {
    const actions = [statement.Action].flat().filter((action) => action.startsWith('dynamodb:'));
    for (const resource of [statement.Resource].flat() as { 'Fn::GetAtt'?: [string, string] }[]) {
      const table = resource['Fn::GetAtt']?.[0];
      if (table && actions.length > 0) (byTable[table] ??= []).push(...actions);
    }
  }
  return byTable;
}
const stageNamed = (name: string) => stack.pipeline.stages.find((stage) => stage.definition.name === name)!;
const tableIds = () => Object.fromEntries(Object.entries(stack.pipeline.tables).map(([key, table]) => [key, logicalId(table)]));

describe('the Holdfast stack', () => {
  it('gives every stage a FIFO queue, encrypted, redriving to its FIFO dead-letter queue after maxReceiveCount', () => {
    for (const stage of payments.stages) {
      const names = stageQueueNames(payments, stage);
      template.hasResourceProperties('AWS::SQS::Queue', { QueueName: names.deadLetter, FifoQueue: true, SqsManagedSseEnabled: true });
      template.hasResourceProperties('AWS::SQS::Queue', {
        QueueName: names.queue,
        FifoQueue: true,
        SqsManagedSseEnabled: true,
        VisibilityTimeout: stage.timeoutSeconds * 6,
        RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: stage.maxReceiveCount },
      });
    }
    template.hasResourceProperties('AWS::SQS::Queue', { QueueName: humanReviewQueueName(payments), FifoQueue: true, SqsManagedSseEnabled: true });
    const queues = resources('AWS::SQS::Queue');
    expect(queues).toHaveLength(payments.stages.length * 2 + 1);
    expect(queues.every(([, queue]) => queue.Properties.SqsManagedSseEnabled === true)).toBe(true);
  });

  it('creates the tables encrypted, with TTL on idempotency records and point-in-time recovery on the ledger', () => {
    const tables = resources('AWS::DynamoDB::Table');
    expect(tables).toHaveLength(4);
    for (const [, table] of tables) {
      expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true });
      expect(table.Properties.BillingMode).toBe('PAY_PER_REQUEST');
    }
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
    });
    const ledger = stack.pipeline.tables.ledger.node.defaultChild as unknown as { pointInTimeRecoverySpecification: unknown };
    expect(ledger.pointInTimeRecoverySpecification).toEqual({ pointInTimeRecoveryEnabled: true });
    const withRecovery = tables.filter(([, table]) => table.Properties.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled === true);
    expect(withRecovery.map(([id]) => id)).toEqual([logicalId(stack.pipeline.tables.ledger)]);
  });

  it('keeps the ledger and the step log, protected from deletion, when the stack is deleted; drops the rest', () => {
    const { idempotency, workflow, ledger, state } = stack.pipeline.tables;
    const all = template.toJSON().Resources;
    for (const kept of [ledger, workflow]) {
      expect(all[logicalId(kept)]).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain', Properties: { DeletionProtectionEnabled: true } });
    }
    for (const dropped of [idempotency, state]) {
      expect(all[logicalId(dropped)]).toMatchObject({ DeletionPolicy: 'Delete', Properties: { DeletionProtectionEnabled: false } });
    }
  });

  it('runs each agent on Node 22 with its stage settings and its environment, naming only the tables it uses', () => {
    const functions = resources('AWS::Lambda::Function');
    expect(functions).toHaveLength(payments.stages.length);
    const tableVariables: Record<string, string[]> = {};
    payments.stages.forEach((stage, index) => {
      const { handler } = stack.pipeline.stages[index]!;
      const fn = template.toJSON().Resources[logicalId(handler)] as Resource;
      expect(fn.Properties).toMatchObject({ Runtime: 'nodejs22.x', Handler: 'index.handler', MemorySize: stage.memoryMb, Timeout: stage.timeoutSeconds });
      const variables = fn.Properties.Environment.Variables;
      expect(Object.keys(variables)).toEqual(expect.arrayContaining(['IDEMPOTENCY_TABLE', 'WORKFLOW_TABLE', 'HUMAN_REVIEW_QUEUE_URL', 'PAYMENT_GATEWAY_URL']));
      tableVariables[stage.name] = Object.keys(variables).filter((name) => name.endsWith('_TABLE')).sort();
      const next = stack.pipeline.stages[index + 1];
      if (next) expect(variables.NEXT_QUEUE_URL).toEqual({ Ref: logicalId(next.queue) });
      else expect(variables.NEXT_QUEUE_URL).toBeUndefined();
    });
    expect(tableVariables).toEqual({
      authorize: ['IDEMPOTENCY_TABLE', 'WORKFLOW_TABLE'],
      'fraud-score': ['IDEMPOTENCY_TABLE', 'STATE_TABLE', 'WORKFLOW_TABLE'],
      ledger: ['IDEMPOTENCY_TABLE', 'LEDGER_TABLE', 'WORKFLOW_TABLE'],
      notify: ['IDEMPOTENCY_TABLE', 'LEDGER_TABLE', 'WORKFLOW_TABLE'],
    });
  });

  it('gives each function access to the tables its stage declares and no others', () => {
    const ids = tableIds();
    const reachable = (name: string) => Object.keys(tableActions(template, logicalId(stageNamed(name).handler.role as never))).sort();
    expect(reachable('authorize')).toEqual([ids.idempotency, ids.workflow].sort());
    expect(reachable('fraud-score')).toEqual([ids.idempotency, ids.workflow, ids.state].sort());
    expect(reachable('ledger')).toEqual([ids.idempotency, ids.workflow, ids.ledger].sort());
    // Notify reaches the ledger only to reverse a posting when it fails for good; never the fraud state.
    expect(reachable('notify')).toEqual([ids.idempotency, ids.workflow, ids.ledger].sort());
    for (const { definition, handler } of stack.pipeline.stages) {
      const actions = tableActions(template, logicalId(handler.role as never));
      for (const [key, access] of Object.entries(definition.tables!)) {
        expect(actions[ids[key]!]).toEqual(expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:Query', ...(access === 'readwrite' ? ['dynamodb:PutItem', 'dynamodb:ConditionCheckItem'] : [])]));
      }
    }
  });

  it('grants read-only access where a stage asks for it, and every table where it declares none', () => {
    const base: Omit<StageDefinition, 'name' | 'tables'> = { entry: 'test/functions/support/forward-handler.ts', maxReceiveCount: 2, timeoutSeconds: 5, memoryMb: 128, batchSize: 1, maxConcurrency: 2, runsAtEdge: false };
    const built = synthStack({ workflow: { name: 'access', stages: [{ ...base, name: 'reader', tables: { workflow: 'read' } }, { ...base, name: 'legacy' }] } });
    const id = (construct: { node: { defaultChild?: unknown } }) => built.stack.getLogicalId(construct.node.defaultChild as never);
    const [reader, legacy] = built.stack.pipeline.stages.map(({ handler }) => ({ role: id(handler.role as never), fn: built.template.toJSON().Resources[id(handler)] as Resource }));
    const workflowTable = id(built.stack.pipeline.tables.workflow);
    const readerActions = tableActions(built.template, reader!.role);
    expect(Object.keys(readerActions)).toEqual([workflowTable]);
    expect(readerActions[workflowTable]).toContain('dynamodb:GetItem');
    expect(readerActions[workflowTable]!.filter((action) => /Put|Update|Delete|Write/.test(action))).toEqual([]);
    expect(Object.keys(reader!.fn.Properties.Environment.Variables).filter((name) => name.endsWith('_TABLE'))).toEqual(['WORKFLOW_TABLE']);

    const legacyActions = tableActions(built.template, legacy!.role);
    expect(Object.keys(legacyActions).sort()).toEqual(Object.values(built.stack.pipeline.tables).map(id).sort());
    expect(Object.values(legacyActions).every((actions) => actions.includes('dynamodb:PutItem'))).toBe(true);
    expect(Object.keys(legacy!.fn.Properties.Environment.Variables).filter((name) => name.endsWith('_TABLE')).sort()).toEqual(
      ['IDEMPOTENCY_TABLE', 'LEDGER_TABLE', 'STATE_TABLE', 'WORKFLOW_TABLE'],
    );
  });

  it('logs each function to its own log group, kept a year and retained when the stack goes', () => {
    expect(resources('AWS::Logs::LogGroup')).toHaveLength(payments.stages.length);
    for (const { handler, logGroup } of stack.pipeline.stages) {
      const fn = template.toJSON().Resources[logicalId(handler)] as Resource;
      expect(fn.Properties.LoggingConfig).toEqual({ LogGroup: { Ref: logicalId(logGroup) } });
      const group = template.toJSON().Resources[logicalId(logGroup)];
      expect(group).toMatchObject({ Properties: { RetentionInDays: 365 }, DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    }
  });

  it('lets each function write its own log group only, with no managed policies', () => {
    for (const { handler, logGroup } of stack.pipeline.stages) {
      const roleId = logicalId(handler.role as never);
      const role = template.toJSON().Resources[roleId] as Resource;
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
      const logStatements = roleStatements(template, roleId).filter((statement) => [statement.Action].flat().some((action) => action.startsWith('logs:')));
      expect(logStatements).toEqual([
        expect.objectContaining({ Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [logicalId(logGroup), 'Arn'] } }),
      ]);
    }
  });

  it('feeds each function from its queue with partial batch responses and the stage batch size and maximum concurrency', () => {
    expect(resources('AWS::Lambda::EventSourceMapping')).toHaveLength(payments.stages.length);
    for (const { definition, queue, handler } of stack.pipeline.stages) {
      template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
        EventSourceArn: { 'Fn::GetAtt': [logicalId(queue), 'Arn'] },
        FunctionName: { Ref: logicalId(handler) },
        BatchSize: definition.batchSize,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        ScalingConfig: { MaximumConcurrency: definition.maxConcurrency },
        Enabled: true,
      });
    }
  });

  it('deploys the event source mappings disabled when asked to', () => {
    const disabled = synthStack({ workflow: payments, eventSourcesEnabled: false }).template;
    const mappings = Object.values(disabled.findResources('AWS::Lambda::EventSourceMapping') as Record<string, Resource>);
    expect(mappings.map((mapping) => mapping.Properties.Enabled)).toEqual(payments.stages.map(() => false));
  });

  it('alarms on dead-letter depth and on the age of the oldest message of every stage, notifying the alarm topic', () => {
    expect(resources('AWS::CloudWatch::Alarm')).toHaveLength(payments.stages.length * 2);
    const topic = [{ Ref: logicalId(stack.pipeline.alarmTopic!) }];
    for (const { queue, deadLetterQueue } of stack.pipeline.stages) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(deadLetterQueue), 'QueueName'] } }],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        AlarmActions: topic,
        OKActions: topic,
      });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(queue), 'QueueName'] } }],
        AlarmActions: topic,
        OKActions: topic,
      });
    }
  });

  it('encrypts the alarm topic with its own key, which CloudWatch may use for this account\'s alarms only', () => {
    const [[topicId, topic]] = resources('AWS::SNS::Topic') as [[string, Resource]];
    expect(topicId).toBe(logicalId(stack.pipeline.alarmTopic!));
    const [[keyId, key]] = resources('AWS::KMS::Key') as [[string, Resource]];
    template.resourceCountIs('AWS::SNS::Topic', 1);
    expect(topic.Properties.KmsMasterKeyId).toEqual({ 'Fn::GetAtt': [keyId, 'Arn'] });
    expect(key.Properties.EnableKeyRotation).toBe(true);
    const fromOwnAlarms = { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } }, ArnLike: { 'aws:SourceArn': Match.anyValue() } };
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Allow', Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: ['kms:Decrypt', 'kms:GenerateDataKey*'], Condition: fromOwnAlarms }),
        ]),
      },
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topicId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({ Effect: 'Allow', Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: 'sns:Publish', Condition: fromOwnAlarms }),
        ]),
      },
    });
    expect(template.findOutputs('AlarmTopicArn')).toEqual({ AlarmTopicArn: { Value: { Ref: topicId } } });
  });

  it('builds no alarm topic when asked not to, and its alarms then have no actions', () => {
    const quiet = synthStack({ workflow: payments, alarmTopic: false });
    expect(quiet.stack.pipeline.alarmTopic).toBeUndefined();
    quiet.template.resourceCountIs('AWS::SNS::Topic', 0);
    quiet.template.resourceCountIs('AWS::KMS::Key', 0);
    const alarms = Object.values(quiet.template.findResources('AWS::CloudWatch::Alarm') as Record<string, Resource>);
    expect(alarms).toHaveLength(payments.stages.length * 2);
    expect(alarms.every((alarm) => alarm.Properties.AlarmActions === undefined && alarm.Properties.OKActions === undefined)).toBe(true);
    expect(Object.keys(quiet.template.findOutputs('AlarmTopicArn'))).toEqual([]);
  });

  it('lets each function send only to the next stage and human review, on named resources only', () => {
    stack.pipeline.stages.forEach(({ handler }, index) => {
      const statements = roleStatements(template, logicalId(handler.role as never));
      expect(statements.length).toBeGreaterThan(0);
      expect(statements.every((statement) => JSON.stringify(statement.Resource) !== '"*"')).toBe(true);
      const sendsTo = statements
        .filter((statement) => [statement.Action].flat().includes('sqs:SendMessage'))
        .map((statement) => (statement.Resource as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0])
        .sort();
      const next = stack.pipeline.stages[index + 1];
      expect(sendsTo).toEqual([logicalId(stack.pipeline.humanReviewQueue), ...(next ? [logicalId(next.queue)] : [])].sort());
      const receivesFrom = statements
        .filter((statement) => [statement.Action].flat().includes('sqs:ReceiveMessage'))
        .map((statement) => (statement.Resource as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0]);
      expect(receivesFrom).toEqual([logicalId(stack.pipeline.stages[index]!.queue)]);
    });
  });

  it('outputs the region, the workflow\'s name, the queue URLs, table names and alarm topic', () => {
    const outputs = Object.keys(template.findOutputs('*'));
    const expected = [
      'Region',
      'WorkflowName',
      ...payments.stages.flatMap((stage) => [`${pascalCase(stage.name)}QueueUrl`, `${pascalCase(stage.name)}DeadLetterQueueUrl`]),
      'HumanReviewQueueUrl',
      'IdempotencyTableName',
      'WorkflowTableName',
      'LedgerTableName',
      'StateTableName',
      'AlarmTopicArn',
    ];
    expect(outputs.sort()).toEqual(expected.sort());
    expect(template.findOutputs('Region').Region!.Value).toEqual({ Ref: 'AWS::Region' });
    expect(template.findOutputs('WorkflowName').WorkflowName!.Value).toBe('payments');
  });

  it('builds the same resources for any workflow definition', () => {
    const small: WorkflowDefinition = {
      name: 'tiny',
      stages: [{ name: 'only', entry: 'test/functions/support/forward-handler.ts', maxReceiveCount: 2, timeoutSeconds: 5, memoryMb: 128, batchSize: 3, maxConcurrency: 5, runsAtEdge: false }],
    };
    const tiny = synthStack({ workflow: small }).template;
    tiny.resourceCountIs('AWS::SQS::Queue', 3);
    tiny.resourceCountIs('AWS::Lambda::Function', 1);
    tiny.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'tiny-only.fifo', RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 2 } });
    tiny.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: 3, ScalingConfig: { MaximumConcurrency: 5 } });
  });

  // cfn-lint is a Python process that loads every resource spec: seconds alone, far more on a loaded machine.
  it('passes cfn-lint (W3005, redundant DependsOn in CDK output, aside)', { timeout: 120_000 }, async () => {
    expect(await cfnLint(template)).toEqual({ code: 0, output: '' });
  });
});

/** cfn-lint's verdict on a template (W3005, redundant DependsOn in CDK output, aside). */
async function cfnLint(linted: Template): Promise<{ code: number; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-lint-'));
  try {
    const file = join(dir, 'template.json');
    await writeFile(file, JSON.stringify(linted.toJSON()));
    return await promisify(execFile)('cfn-lint', ['--ignore-checks', 'W3005', '--', file]).then(
      () => ({ code: 0, output: '' }),
      (error: { code: number; stdout: string }) => ({ code: error.code, output: error.stdout }),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What the edge's identity may do, as the README's Security section lists it. */
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

describe("the edge's grant and role", () => {
  const TRUST_ANCHOR = 'arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/4ef9e3a6-5b0c-4d4f-9a52-1c2f0e0d2f7b';
  const withRole = synthStack({ workflow: payments, edgeRole: { rolesAnywhereTrustAnchorArn: TRUST_ANCHOR } });
  const id = (construct: { node: { defaultChild?: unknown } }) => withRole.stack.getLogicalId(construct.node.defaultChild as never);
  const roleId = id(withRole.stack.edgeRole!);
  const { pipeline } = withRole.stack;

  it('grants the probe, the workflow\'s queues and the sync\'s tables exactly, and nothing on the ledger', () => {
    const queueArns = [...pipeline.stages.flatMap((stage) => [stage.queue, stage.deadLetterQueue]), pipeline.humanReviewQueue].map((queue) => ({ 'Fn::GetAtt': [id(queue), 'Arn'] }));
    const tableArn = (key: keyof typeof pipeline.tables) => ({ 'Fn::GetAtt': [id(pipeline.tables[key]), 'Arn'] });
    expect(roleStatements(withRole.template, roleId)).toEqual([
      { Effect: 'Allow', Action: 'sqs:ListQueues', Resource: '*' },
      { Effect: 'Allow', Action: EDGE_QUEUE_ACTIONS, Resource: queueArns },
      { Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:PutItem'], Resource: tableArn('workflow') },
      { Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:PutItem'], Resource: tableArn('idempotency') },
      { Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'], Resource: tableArn('state') },
    ]);
    expect(JSON.stringify(roleStatements(withRole.template, roleId))).not.toContain(id(pipeline.tables.ledger));
  });

  it('lets IAM Roles Anywhere take the role through the site\'s trust anchor only, with session tags and source identity, and outputs it', () => {
    const service = { Service: 'rolesanywhere.amazonaws.com' };
    const throughTheAnchor = { ArnEquals: { 'aws:SourceArn': TRUST_ANCHOR } };
    withRole.template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          { Effect: 'Allow', Principal: service, Action: 'sts:AssumeRole', Condition: throughTheAnchor },
          { Effect: 'Allow', Principal: service, Action: ['sts:TagSession', 'sts:SetSourceIdentity'], Condition: throughTheAnchor },
        ],
      },
    });
    expect(withRole.template.findOutputs('EdgeRoleArn').EdgeRoleArn!.Value).toEqual({ 'Fn::GetAtt': [roleId, 'Arn'] });
    withRole.template.resourceCountIs('AWS::IAM::InstanceProfile', 0);
  });

  it('lets EC2 take it through an instance profile, or a principal of your own', () => {
    const ec2 = synthStack({ workflow: payments, edgeRole: 'ec2' });
    ec2.template.hasResourceProperties('AWS::IAM::Role', { AssumeRolePolicyDocument: { Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }] } });
    ec2.template.hasResourceProperties('AWS::IAM::InstanceProfile', { Roles: [{ Ref: ec2.stack.getLogicalId(ec2.stack.edgeRole!.node.defaultChild as never) }] });
    expect(Object.keys(ec2.template.findOutputs('EdgeInstanceProfileName'))).toEqual(['EdgeInstanceProfileName']);

    const own = synthStack({ workflow: payments, edgeRole: new AccountPrincipal('210987654321') });
    own.template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: { Statement: [{ Effect: 'Allow', Principal: { AWS: { 'Fn::Join': ['', Match.arrayWith([':iam::210987654321:root'])] } }, Action: 'sts:AssumeRole' }] },
    });
  });

  it('makes no role unless asked, and grants a principal of any stack', () => {
    template.resourceCountIs('AWS::IAM::InstanceProfile', 0);
    expect(Object.keys(template.findOutputs('EdgeRoleArn'))).toEqual([]);
    const app = new App({ builtinCloudFormationValidation: false, context: { 'aws:cdk:bundling-stacks': [] } });
    const holdfast = new HoldfastStack(app, 'Holdfast', { root: REPOSITORY_ROOT, workflow: payments });
    const elsewhere = new Stack(app, 'EdgeIdentities');
    const role = new Role(elsewhere, 'SiteRole', { assumedBy: new AccountPrincipal('210987654321') });
    holdfast.pipeline.grantEdge(role);
    const statements = roleStatements(Template.fromStack(elsewhere), elsewhere.getLogicalId(role.node.defaultChild as never));
    expect(statements.map((statement) => statement.Action)).toEqual([
      'sqs:ListQueues',
      EDGE_QUEUE_ACTIONS,
      ['dynamodb:GetItem', 'dynamodb:PutItem'],
      ['dynamodb:GetItem', 'dynamodb:PutItem'],
      ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:Query'],
    ]);
  });
});

describe('what a team chooses', () => {
  it('notifies a topic of its own, and makes none', () => {
    const app = new App({ builtinCloudFormationValidation: false, context: { 'aws:cdk:bundling-stacks': [] } });
    const shared = new Stack(app, 'Shared');
    const topic = new Topic(shared, 'OnCall');
    const built = new HoldfastStack(app, 'WithTopic', { root: REPOSITORY_ROOT, workflow: payments, alarmTopic: topic });
    const synthesized = Template.fromStack(built);
    synthesized.resourceCountIs('AWS::SNS::Topic', 0);
    synthesized.resourceCountIs('AWS::KMS::Key', 0);
    const alarms = Object.values(synthesized.findResources('AWS::CloudWatch::Alarm') as Record<string, Resource>);
    expect(alarms).toHaveLength(payments.stages.length * 2);
    for (const alarm of alarms) {
      expect(alarm.Properties.AlarmActions).toEqual([{ 'Fn::ImportValue': expect.stringMatching(/^Shared:/) }]);
      expect(alarm.Properties.OKActions).toEqual(alarm.Properties.AlarmActions);
    }
    expect(built.pipeline.alarmTopic).toBe(topic);
    // The team's topic is theirs to know: no output for it.
    expect(Object.keys(synthesized.findOutputs('AlarmTopicArn'))).toEqual([]);
  });

  it('encrypts every queue and table with a customer-managed key, which the functions and the edge may use', () => {
    const app = new App({ builtinCloudFormationValidation: false, context: { 'aws:cdk:bundling-stacks': [] } });
    const keys = new Stack(app, 'Keys');
    const key = new Key(keys, 'DataKey');
    const built = new HoldfastStack(app, 'WithKey', { root: REPOSITORY_ROOT, workflow: payments, encryptionKey: key, edgeRole: 'ec2' });
    const synthesized = Template.fromStack(built);
    const keyArn = { 'Fn::ImportValue': expect.stringMatching(/^Keys:/) };
    const queues = Object.values(synthesized.findResources('AWS::SQS::Queue') as Record<string, Resource>);
    expect(queues).toHaveLength(payments.stages.length * 2 + 1);
    for (const queue of queues) {
      expect(queue.Properties.KmsMasterKeyId).toEqual(keyArn);
      expect(queue.Properties.SqsManagedSseEnabled).toBeUndefined();
    }
    const tables = Object.values(synthesized.findResources('AWS::DynamoDB::Table') as Record<string, Resource>);
    expect(tables).toHaveLength(4);
    for (const table of tables) expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: keyArn });
    const usesKey = (roleId: string) =>
      roleStatements(synthesized, roleId).some((statement) => [statement.Action].flat().includes('kms:Decrypt') && JSON.stringify(statement.Resource).includes('Keys:'));
    const roleIds = [...built.pipeline.stages.map((stage) => stage.handler.role!), built.edgeRole!].map((role) => built.getLogicalId(role.node.defaultChild as never));
    expect(roleIds.map(usesKey)).toEqual(roleIds.map(() => true));
  });

  it('runs each stage\'s function as its settings say, and the others as their stage definition says', () => {
    const built = synthStack({
      workflow: payments,
      stageFunctions: {
        authorize: { architecture: Architecture.ARM_64, memorySize: 1024, reservedConcurrentExecutions: 4, tracing: Tracing.ACTIVE },
        notify: { tracing: Tracing.PASS_THROUGH },
      },
    });
    const fn = (name: string) => {
      const handler = built.stack.pipeline.stages.find((stage) => stage.definition.name === name)!.handler;
      return (built.template.toJSON().Resources[built.stack.getLogicalId(handler.node.defaultChild as never)] as Resource).Properties;
    };
    expect(fn('authorize')).toMatchObject({ Architectures: ['arm64'], MemorySize: 1024, ReservedConcurrentExecutions: 4, TracingConfig: { Mode: 'Active' } });
    expect(fn('notify')).toMatchObject({ MemorySize: 256, TracingConfig: { Mode: 'PassThrough' } });
    for (const name of ['fraud-score', 'ledger']) {
      expect(fn(name)).toMatchObject({ MemorySize: 256 });
      expect(fn(name).Architectures).toBeUndefined();
      expect(fn(name).ReservedConcurrentExecutions).toBeUndefined();
      expect(fn(name).TracingConfig).toBeUndefined();
    }
  });

  it('refuses settings for a stage the workflow lacks, and reserved concurrency below what the event source may use', () => {
    expect(() => synthStack({ workflow: payments, stageFunctions: { autorize: { memorySize: 512 } } })).toThrow(/stageFunctions names stages that workflow payments does not have: autorize/);
    expect(() => synthStack({ workflow: payments, stageFunctions: { ledger: { reservedConcurrentExecutions: 1 } } })).toThrow(/reserved concurrency 1 is below .* maximum concurrency 2/);
  });

  it('removes tables, queues and log groups as told, protecting from deletion only what it retains', () => {
    const built = synthStack({
      workflow: payments,
      removalPolicies: { tables: { ledger: RemovalPolicy.DESTROY, state: RemovalPolicy.RETAIN }, queues: RemovalPolicy.RETAIN, logGroups: RemovalPolicy.DESTROY },
    });
    const all = built.template.toJSON().Resources;
    const at = (construct: { node: { defaultChild?: unknown } }) => all[built.stack.getLogicalId(construct.node.defaultChild as never)];
    const { tables } = built.stack.pipeline;
    expect(at(tables.ledger)).toMatchObject({ DeletionPolicy: 'Delete', Properties: { DeletionProtectionEnabled: false } });
    expect(at(tables.state)).toMatchObject({ DeletionPolicy: 'Retain', Properties: { DeletionProtectionEnabled: true } });
    // Those not named keep their defaults.
    expect(at(tables.workflow)).toMatchObject({ DeletionPolicy: 'Retain', Properties: { DeletionProtectionEnabled: true } });
    expect(at(tables.idempotency)).toMatchObject({ DeletionPolicy: 'Delete' });
    const queues = Object.values(built.template.findResources('AWS::SQS::Queue') as Record<string, { DeletionPolicy: string }>);
    expect(queues.map((queue) => queue.DeletionPolicy)).toEqual(queues.map(() => 'Retain'));
    const logGroups = Object.values(built.template.findResources('AWS::Logs::LogGroup') as Record<string, { DeletionPolicy: string }>);
    expect(logGroups.map((group) => group.DeletionPolicy)).toEqual(payments.stages.map(() => 'Delete'));
    // By default the queues go with the stack.
    expect(Object.values(template.findResources('AWS::SQS::Queue') as Record<string, { DeletionPolicy: string }>).every((queue) => queue.DeletionPolicy === 'Delete')).toBe(true);
  });

  it('passes cfn-lint with every choice made', { timeout: 120_000 }, async () => {
    const app = new App({ builtinCloudFormationValidation: false, context: { 'aws:cdk:bundling-stacks': [] } });
    // A team's existing topic and key, by their ARNs.
    const shared = new Stack(app, 'Shared');
    const built = new HoldfastStack(app, 'Chosen', {
      root: REPOSITORY_ROOT,
      workflow: payments,
      alarmTopic: Topic.fromTopicArn(shared, 'OnCall', 'arn:aws:sns:eu-west-1:210987654321:on-call'),
      encryptionKey: Key.fromKeyArn(shared, 'DataKey', 'arn:aws:kms:eu-west-1:210987654321:key/0f3c8d1e-5b2a-4c6d-9e7f-1a2b3c4d5e6f'),
      edgeRole: 'ec2',
      stageFunctions: { authorize: { architecture: Architecture.ARM_64, reservedConcurrentExecutions: 4, tracing: Tracing.ACTIVE } },
      removalPolicies: { tables: { ledger: RemovalPolicy.DESTROY }, queues: RemovalPolicy.RETAIN, logGroups: RemovalPolicy.DESTROY },
    });
    expect(await cfnLint(Template.fromStack(built))).toEqual({ code: 0, output: '' });
  });
});
