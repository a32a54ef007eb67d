import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, expect, it } from 'vitest';
import { pascalCase } from '../../infra/lib/workflow-pipeline.js';
import { humanReviewQueueName, stageQueueNames } from '../../functions/src/workflow-definition.js';
import { payments } from '../../functions/src/workflows/payments.js';
import { emulator } from '../helpers/emulator.js';
import { REPOSITORY_ROOT } from './support/synth-stack.js';

/**
 * `cdk synth`, `cdk bootstrap` and `cdk deploy` of the app against the emulator, as a user runs them.
 * A copy of the stack under its own names keeps it apart from other tests sharing the emulator.
 * Deploys use CreateStack (--method direct): the emulator reports no outputs for a stack created
 * from a change set. Its event source mappings are disabled: the emulator cannot run functions.
 * The emulator's CloudFormation ignores a table's TimeToLiveSpecification and
 * PointInTimeRecoverySpecification, so those are checked in the template only (stack.test.ts).
 */
const aws = emulator();
const suffix = randomUUID().slice(0, 8);
const stackName = `HoldfastDeploy${suffix}`;
const workflow = { ...payments, name: `deploy-${suffix}` };
const workdir = await mkdtemp(join(tmpdir(), 'holdfast-deploy-'));
const assembly = join(workdir, 'cdk.out');

// The CLI resolves S3 template URLs for CloudFormation through this endpoint; the emulator's
// CloudFormation recognises its own S3 by a localhost host name.
const s3ForCloudFormation = new URL(aws.endpoint);
s3ForCloudFormation.hostname = 'localhost';

async function cdk(...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(join(REPOSITORY_ROOT, 'node_modules/.bin/cdk'), [...args, '--no-notices'], {
    cwd: REPOSITORY_ROOT,
    maxBuffer: 16 * 1024 * 1024,
    env: {
      ...process.env,
      AWS_ENDPOINT_URL: aws.endpoint,
      AWS_ENDPOINT_URL_S3_FOR_CLOUDFORMATION: s3ForCloudFormation.origin,
      AWS_REGION: aws.region,
      AWS_DEFAULT_REGION: aws.region,
      AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey,
      CDK_DISABLE_VERSION_CHECK: '1',
      // CDK's built-in template validation doubles the synth time; stack.test.ts runs cfn-lint instead.
      CDK_VALIDATION: 'false',
    },
  });
  return stdout;
}

let deployed = false;
afterAll(async () => {
  try {
    if (deployed) await cdk('destroy', stackName, '--app', assembly, '--force');
  } finally {
    await rm(workdir, { recursive: true, force: true });
  }
});

it('refuses to synthesize without the agents\' gateway and notifier, saying what to pass', { timeout: 60_000 }, async () => {
  const failure = await cdk('synth', '--quiet', '--output', join(workdir, 'refused.out')).then(
    () => undefined,
    (error: { stderr: string }) => error.stderr,
  );
  expect(failure).toContain('pass -c gatewayUrl=https://... -c notifierUrl=https://... (or -c serviceUrls=none');
});

it('synthesizes offline, bootstraps and deploys to the emulator, and outputs the region, workflow, queues, tables and alarm topic it created', { timeout: 240_000 }, async () => {
  await cdk(
    'synth', '--quiet', '--output', assembly, '-c', `stackName=${stackName}`, '-c', `workflowName=${workflow.name}`, '-c', 'eventSources=disabled',
    '-c', 'gatewayUrl=https://gateway.example', '-c', 'notifierUrl=https://notifier.example',
  );
  await cdk('bootstrap', '--app', assembly);
  const outputsFile = join(workdir, 'outputs.json');
  deployed = true;
  await cdk('deploy', stackName, '--app', assembly, '--method', 'direct', '--require-approval', 'never', '--outputs-file', outputsFile);
  const outputs = (JSON.parse(await readFile(outputsFile, 'utf8')) as Record<string, Record<string, string>>)[stackName]!;
  expect(outputs).toMatchObject({ Region: aws.region, WorkflowName: workflow.name });

  const sqs = new SQSClient(aws);
  const dynamodb = new DynamoDBClient(aws);
  try {
    for (const stage of workflow.stages) {
      const names = stageQueueNames(workflow, stage);
      const id = pascalCase(stage.name);
      expect(outputs[`${id}QueueUrl`]).toMatch(new RegExp(`/${names.queue.replaceAll('.', '\\.')}$`));
      expect(outputs[`${id}DeadLetterQueueUrl`]).toMatch(new RegExp(`/${names.deadLetter.replaceAll('.', '\\.')}$`));
      const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: names.queue }));
      const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] }));
      expect(Attributes?.FifoQueue).toBe('true');
      expect(JSON.parse(Attributes?.RedrivePolicy ?? '{}')).toMatchObject({ maxReceiveCount: stage.maxReceiveCount, deadLetterTargetArn: expect.stringMatching(names.deadLetter) });
      await sqs.send(new GetQueueUrlCommand({ QueueName: names.deadLetter }));
    }
    expect(outputs.HumanReviewQueueUrl).toMatch(new RegExp(`/${humanReviewQueueName(workflow).replaceAll('.', '\\.')}$`));

    for (const key of ['Idempotency', 'Workflow', 'Ledger', 'State']) {
      const { Table } = await dynamodb.send(new DescribeTableCommand({ TableName: outputs[`${key}TableName`] }));
      expect(Table?.TableStatus).toBe('ACTIVE');
      expect(Table?.DeletionProtectionEnabled).toBe(key === 'Ledger' || key === 'Workflow');
    }
    expect(outputs.AlarmTopicArn).toMatch(new RegExp(`^arn:aws:sns:${aws.region}:\\d{12}:${stackName}-`));
  } finally {
    sqs.destroy();
    dynamodb.destroy();
  }
});
