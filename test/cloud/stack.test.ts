import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Match } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { pascalCase } from '../../infra/lib/workflow-pipeline.js';
import { humanReviewQueueName, stageQueueNames, type WorkflowDefinition } from '../../functions/src/workflow-definition.js';
import { payments } from '../../functions/src/workflows/payments.js';
import { synthStack } from './support/synth-stack.js';

type Resource = { Type: string; Properties: Record<string, any> };

const { stack, template } = synthStack({ workflow: payments, environment: { PAYMENT_GATEWAY_URL: 'https://gateway.test' } });
const resources = (type: string) => Object.entries(template.findResources(type) as Record<string, Resource>);
const logicalId = (construct: { node: { defaultChild?: unknown } }) => stack.getLogicalId(construct.node.defaultChild as never);

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

  it('runs each agent on Node 22 with its stage settings and its environment', () => {
    const functions = resources('AWS::Lambda::Function');
    expect(functions).toHaveLength(payments.stages.length);
    payments.stages.forEach((stage, index) => {
      const { handler } = stack.pipeline.stages[index]!;
      const fn = template.toJSON().Resources[logicalId(handler)] as Resource;
      expect(fn.Properties).toMatchObject({ Runtime: 'nodejs22.x', Handler: 'index.handler', MemorySize: stage.memoryMb, Timeout: stage.timeoutSeconds });
      const variables = fn.Properties.Environment.Variables;
      expect(Object.keys(variables)).toEqual(
        expect.arrayContaining(['IDEMPOTENCY_TABLE', 'WORKFLOW_TABLE', 'LEDGER_TABLE', 'STATE_TABLE', 'HUMAN_REVIEW_QUEUE_URL', 'PAYMENT_GATEWAY_URL']),
      );
      const next = stack.pipeline.stages[index + 1];
      if (next) expect(variables.NEXT_QUEUE_URL).toEqual({ Ref: logicalId(next.queue) });
      else expect(variables.NEXT_QUEUE_URL).toBeUndefined();
    });
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

  it('alarms on dead-letter depth and on the age of the oldest message of every stage', () => {
    expect(resources('AWS::CloudWatch::Alarm')).toHaveLength(payments.stages.length * 2);
    for (const { queue, deadLetterQueue } of stack.pipeline.stages) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(deadLetterQueue), 'QueueName'] } }],
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateAgeOfOldestMessage',
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(queue), 'QueueName'] } }],
      });
    }
  });

  it('lets each function send only to the next stage and human review, on named resources only', () => {
    const policies = resources('AWS::IAM::Policy');
    stack.pipeline.stages.forEach(({ handler }, index) => {
      const role = logicalId(handler.role as never);
      const statements = policies
        .filter(([, policy]) => policy.Properties.Roles.some((ref: { Ref: string }) => ref.Ref === role))
        .flatMap(([, policy]) => policy.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[]);
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

  it('outputs the queue URLs and table names', () => {
    const outputs = Object.keys(template.findOutputs('*'));
    const expected = [
      ...payments.stages.flatMap((stage) => [`${pascalCase(stage.name)}QueueUrl`, `${pascalCase(stage.name)}DeadLetterQueueUrl`]),
      'HumanReviewQueueUrl',
      'IdempotencyTableName',
      'WorkflowTableName',
      'LedgerTableName',
      'StateTableName',
    ];
    expect(outputs.sort()).toEqual(expected.sort());
  });

  it('builds the same resources for any workflow definition', () => {
    const small: WorkflowDefinition = {
      name: 'tiny',
      stages: [{ name: 'only', entry: 'test/cloud/support/forward-handler.ts', maxReceiveCount: 2, timeoutSeconds: 5, memoryMb: 128, batchSize: 3, maxConcurrency: 5, runsAtEdge: false }],
    };
    const tiny = synthStack({ workflow: small }).template;
    tiny.resourceCountIs('AWS::SQS::Queue', 3);
    tiny.resourceCountIs('AWS::Lambda::Function', 1);
    tiny.hasResourceProperties('AWS::SQS::Queue', { QueueName: 'tiny-only.fifo', RedrivePolicy: { deadLetterTargetArn: Match.anyValue(), maxReceiveCount: 2 } });
    tiny.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: 3, ScalingConfig: { MaximumConcurrency: 5 } });
  });

  it('passes cfn-lint (W3005, redundant DependsOn in CDK output, aside)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'holdfast-lint-'));
    try {
      const file = join(dir, 'template.json');
      await writeFile(file, JSON.stringify(template.toJSON()));
      const result = await promisify(execFile)('cfn-lint', ['--ignore-checks', 'W3005', '--', file]).then(
        () => ({ code: 0, output: '' }),
        (error: { code: number; stdout: string }) => ({ code: error.code, output: error.stdout }),
      );
      expect(result).toEqual({ code: 0, output: '' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
