import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pascalCase } from '../../infra/lib/workflow-pipeline.js';
import type { EdgeStatus } from '../../edge-shim/src/observability/status.js';
import { startFakeGateway } from '../../functions/src/fake-gateway/server.js';
import { DynamoDbStepLog } from '../../functions/src/runtime/store/dynamodb-step-log.js';
import { parseTask, stageTaskId } from '../../functions/src/runtime/task.js';
import { ENV, humanReviewQueueName, stageQueueNames } from '../../functions/src/workflow-definition.js';
import { payments } from '../../functions/src/workflows/payments.js';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { spawnShim } from '../../testkit/shim-process.js';
import { firstTask, sendTask } from '../functions/support/edge-site.js';
import { emulator } from '../helpers/emulator.js';
import { drainRegion } from '../helpers/hybrid.js';
import { eventually } from '../helpers/wait.js';
import { REPOSITORY_ROOT } from './support/synth-stack.js';

/**
 * `cdk synth`, `cdk bootstrap` and `cdk deploy` of the app against the emulator, as a user runs them
 * (README, "Deploying the stack": on an emulator), then an edge site wired from the deployed stack's outputs.
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
let outputsFile: string;
let outputs: Record<string, string>;

beforeAll(async () => {
  await cdk(
    'synth', '--quiet', '--output', assembly, '-c', `stackName=${stackName}`, '-c', `workflowName=${workflow.name}`, '-c', 'eventSources=disabled',
    '-c', 'gatewayUrl=https://gateway.example', '-c', 'notifierUrl=https://notifier.example', '-c', 'edgeRole=arn:aws:iam::123456789012:root',
  );
  await cdk('bootstrap', '--app', assembly);
  outputsFile = join(workdir, 'outputs.json');
  deployed = true;
  await cdk('deploy', stackName, '--app', assembly, '--method', 'direct', '--require-approval', 'never', '--outputs-file', outputsFile);
  outputs = (JSON.parse(await readFile(outputsFile, 'utf8')) as Record<string, Record<string, string>>)[stackName]!;
}, 240_000);

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

it('deploys to the emulator and outputs the region, workflow, queues, tables, alarm topic and edge role it created', { timeout: 60_000 }, async () => {
  expect(outputs).toMatchObject({ Region: aws.region, WorkflowName: workflow.name, EdgeRoleArn: expect.stringMatching(/^arn:aws:iam::\d{12}:role\//) });
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

/** The edge's status document, from its /status page. */
async function edgeStatus(url: string): Promise<EdgeStatus> {
  return (await (await fetch(`${url}/status`)).json()) as EdgeStatus;
}

it('wires an edge site from the outputs alone: through an outage its agents\' work is synced into the deployed tables and its backlog replayed into the deployed queues', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'holdfast-edge-from-stack-'));
  const gateway = await startFakeGateway();
  // Between the edge and the region (SQS and DynamoDB alike): cut to make the outage.
  const link = await FaultProxy.start({ target: new URL(aws.endpoint).host });
  const agentEnv = join(dir, 'agents.env');
  await writeFile(agentEnv, `${ENV.gatewayUrl}=${gateway.url}\n${ENV.notifierUrl}=${gateway.url}\nPOWERTOOLS_LOG_LEVEL=ERROR\n`);
  const logFile = join(dir, 'edge.log');
  // An edge.env as the README's "Wiring an edge from the stack" has it, for an emulator: the stack's
  // outputs, the emulator's endpoints, the site, the agents' variables, the region's credentials.
  const edge = await spawnShim({
    dbFile: join(dir, 'edge.db'),
    logFile,
    env: {
      HOLDFAST_STACK_OUTPUTS: outputsFile,
      HOLDFAST_UPSTREAM: `http://${link.address}`,
      HOLDFAST_REGION_DYNAMODB: `http://${link.address}`,
      HOLDFAST_SITE_ID: 'site-from-stack',
      HOLDFAST_AGENT_ENV: agentEnv,
      AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey,
      // The region comes from the outputs.
      AWS_REGION: '',
      AWS_DEFAULT_REGION: '',
      // An outage told within a second or so, a recovery within one.
      HOLDFAST_UPSTREAM_TIMEOUT: '3s',
      HOLDFAST_PROBE_INTERVAL: '100ms',
      HOLDFAST_BREAKER_FAILURES: '3',
      HOLDFAST_RECOVERY_PROBES: '3',
      HOLDFAST_RECOVERY_TIME: '300ms',
    },
  });
  const atEdge = new SQSClient({ endpoint: edge.url, region: aws.region, credentials: aws.credentials });
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient(aws));
  const region = new SQSClient(aws);
  try {
    const started = await eventually(() => edgeStatus(edge.adminUrl), (status) => status.mode === 'online' && status.agents.length === 3);
    expect(started.upstream).toMatchObject({ url: `http://${link.address}`, region: aws.region });
    const request = { paymentId: `pay-${randomUUID().slice(0, 8)}`, account: `acct-${randomUUID().slice(0, 8)}`, merchant: 'shop-1', amountMinor: 4_200, currency: 'EUR' };
    const deployedWorkflow = { ...payments, name: outputs.WorkflowName! };
    const authorizeUrl = (await atEdge.send(new GetQueueUrlCommand({ QueueName: stageQueueNames(deployedWorkflow, payments.stages[0]!).queue }))).QueueUrl!;

    link.setMode('blackhole');
    await eventually(() => edgeStatus(edge.adminUrl), (status) => status.mode === 'offline' && status.agents.every((agent) => agent.state === 'running'));
    // A task names the workflow its agents are written for; the stack named its queues after its copy.
    await sendTask(atEdge, authorizeUrl, firstTask(payments, request));
    // Authorized and scored at the edge; the ledger, the region's alone, waits there.
    const ledgerQueue = stageQueueNames(deployedWorkflow, payments.stages[2]!).queue;
    await eventually(() => edgeStatus(edge.adminUrl), (status) => status.queues.find((queue) => queue.name === ledgerQueue)?.backlog === 1);
    expect(gateway.state.authorizations.map((authorization) => authorization.paymentId)).toEqual([request.paymentId]);

    link.setMode('pass');
    const back = await eventually(() => edgeStatus(edge.adminUrl), (status) => status.mode === 'online' && status.backlog === 0);
    expect(back.sync).toMatchObject({ state: 'done', conflicts: 0 });

    // The sync: the edge's steps in the deployed step log, its idempotency records and fraud state in the deployed tables.
    const log = await new DynamoDbStepLog(documents, outputs.WorkflowTableName!).load(request.paymentId);
    expect(log.steps.map((step) => [step.step, step.status])).toEqual([['authorize', 'completed'], ['fraud-score', 'completed']]);
    for (const table of [outputs.IdempotencyTableName!, outputs.StateTableName!]) {
      expect((await documents.send(new ScanCommand({ TableName: table, Select: 'COUNT' }))).Count).toBeGreaterThan(0);
    }
    // The replay: the ledger's task in the deployed ledger queue, once.
    const replayed = await drainRegion(region, decodeURIComponent(new URL(outputs.LedgerQueueUrl!).pathname.split('/').pop()!));
    expect(replayed.map((message) => parseTask(message.Body!).taskId)).toEqual([stageTaskId(request.paymentId, 'ledger')]);

    // The queues the edge declared from the workflow and those it mirrored from the stack agree: the mirror logged no error.
    const entries = (await readFile(logFile, 'utf8')).split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { level: unknown; component?: string });
    expect(entries.filter((entry) => entry.component === 'mirror' && (entry.level === 'error' || entry.level === 'fatal'))).toEqual([]);
  } finally {
    atEdge.destroy();
    documents.destroy();
    region.destroy();
    await edge.stop();
    await link.close();
    await gateway.close();
    await rm(dir, { recursive: true, force: true });
  }
});
