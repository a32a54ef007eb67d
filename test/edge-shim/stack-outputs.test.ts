import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS } from '../../edge-shim/src/config.js';
import { deployedWorkflow, readStackOutputs, withStackWiring } from '../../edge-shim/src/stack-outputs.js';
import { humanReviewQueueName, stageQueueNames } from '../../functions/src/workflow-definition.js';
import { payments } from '../../functions/src/workflows/payments.js';
import { TEST_CREDENTIALS, startTestShim } from '../helpers/shim.js';

// An edge wired from the file `cdk deploy --outputs-file` writes: what it takes from the stack's
// outputs, what it leaves to the options given, and what it refuses.

const dir = mkdtempSync(join(tmpdir(), 'holdfast-stack-outputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The outputs of a stack that deployed the payments workflow as `workflowName`, its queues at `endpoint`, as the stack names them. */
function stackOutputs(workflowName: string, endpoint = 'https://sqs.eu-west-1.amazonaws.com'): Record<string, string> {
  const workflow = { ...payments, name: workflowName };
  const queueUrl = (name: string) => `${endpoint}/123456789012/${name}`;
  const stages = Object.fromEntries(
    workflow.stages.flatMap((stage) => {
      const id = stage.name.split('-').map((part) => part[0]!.toUpperCase() + part.slice(1)).join('');
      const names = stageQueueNames(workflow, stage);
      return [[`${id}QueueUrl`, queueUrl(names.queue)], [`${id}DeadLetterQueueUrl`, queueUrl(names.deadLetter)]];
    }),
  );
  return {
    Region: 'eu-west-1',
    WorkflowName: workflowName,
    ...stages,
    HumanReviewQueueUrl: queueUrl(humanReviewQueueName(workflow)),
    IdempotencyTableName: 'Holdfast-PipelineIdempotencyTable91F2F674-X1V0WX22YQ1J',
    WorkflowTableName: 'Holdfast-PipelineWorkflowTable7356A77D-RQT77RC2CQ4W',
    LedgerTableName: 'Holdfast-PipelineLedgerTable39667874-IV3LADXMUV41',
    StateTableName: 'Holdfast-PipelineStateTableE241A088-9TZKX41J0GUP',
    AlarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:Holdfast-PipelineAlarmTopicD2AEE5E8-DLKGM4Y8NQO0',
  };
}

let files = 0;
function outputsFile(document: unknown): string {
  const file = join(dir, `outputs-${(files += 1)}.json`);
  writeFileSync(file, JSON.stringify(document));
  return file;
}

describe('readStackOutputs', () => {
  it('takes the region, its SQS endpoint, the workflow, the sync\'s tables and the queues from the one stack of the file', () => {
    const wiring = readStackOutputs(outputsFile({ Holdfast: stackOutputs('payments') }));
    expect(wiring).toMatchObject({
      stackName: 'Holdfast',
      region: 'eu-west-1',
      sqsEndpoint: 'https://sqs.eu-west-1.amazonaws.com',
      workflowName: 'payments',
      tables: {
        idempotency: 'Holdfast-PipelineIdempotencyTable91F2F674-X1V0WX22YQ1J',
        workflow: 'Holdfast-PipelineWorkflowTable7356A77D-RQT77RC2CQ4W',
        state: 'Holdfast-PipelineStateTableE241A088-9TZKX41J0GUP',
      },
    });
    expect([...wiring.queueNames].sort()).toEqual(
      [...payments.stages.flatMap((stage) => Object.values(stageQueueNames(payments, stage))), humanReviewQueueName(payments)].sort(),
    );
  });

  it('takes the stack named after # from a file of several, and refuses to guess', () => {
    const file = outputsFile({ HoldfastEu: stackOutputs('payments'), HoldfastUs: { ...stackOutputs('payments-us'), Region: 'us-east-1' } });
    expect(readStackOutputs(`${file}#HoldfastUs`)).toMatchObject({ stackName: 'HoldfastUs', region: 'us-east-1', workflowName: 'payments-us' });
    expect(() => readStackOutputs(file)).toThrow(/hold the stacks HoldfastEu, HoldfastUs: name one as .*#STACK/);
    expect(() => readStackOutputs(`${file}#Holdfast`)).toThrow(/have no stack Holdfast \(they have HoldfastEu, HoldfastUs\)/);
  });

  it.each([
    ['a file that is not there', () => join(dir, 'absent.json'), /cannot read the stack outputs .*absent\.json \(written by cdk deploy --outputs-file\)/],
    ['outputs without the region', () => outputsFile({ Holdfast: { ...stackOutputs('payments'), Region: undefined } }), /stack Holdfast .* lack Region/],
    ['outputs without a table', () => outputsFile({ Holdfast: { ...stackOutputs('payments'), StateTableName: undefined } }), /lack StateTableName/],
    ['an empty file', () => outputsFile({}), /hold no stack/],
  ])('refuses %s, saying what is wrong', (_, file, message) => {
    expect(() => readStackOutputs(file())).toThrow(ConfigError);
    expect(() => readStackOutputs(file())).toThrow(message);
  });
});

describe('withStackWiring', () => {
  const wiring = readStackOutputs(outputsFile({ Holdfast: stackOutputs('payments') }));

  it('fills in the upstream, its region and the sync\'s tables', () => {
    expect(withStackWiring({ ...DEFAULTS, siteId: 'store-1' }, wiring)).toMatchObject({
      upstream: 'https://sqs.eu-west-1.amazonaws.com',
      upstreamRegion: 'eu-west-1',
      regionTables: wiring.tables,
      siteId: 'store-1',
    });
  });

  it('leaves what an option gives: an emulator\'s endpoint, a table of another name', () => {
    const config = withStackWiring({ ...DEFAULTS, upstream: 'http://localhost:5000', upstreamRegion: 'eu-west-1', regionTables: { state: 'fraud-state' } }, wiring);
    expect(config).toMatchObject({ upstream: 'http://localhost:5000', regionTables: { ...wiring.tables, state: 'fraud-state' } });
  });

  it('refuses a region other than the stack\'s', () => {
    expect(() => withStackWiring({ ...DEFAULTS, upstreamRegion: 'us-east-1' }, wiring)).toThrow(/the stack Holdfast is in eu-west-1, but the upstream region given .* is us-east-1/);
  });
});

describe('deployedWorkflow', () => {
  it('names the workflow as the stack deployed it, and refuses a definition whose queues the stack lacks', () => {
    const wiring = readStackOutputs(outputsFile({ Copy: stackOutputs('payments-copy') }));
    expect(deployedWorkflow(payments, wiring)).toEqual({ ...payments, name: 'payments-copy' });
    const other = { ...payments, stages: [...payments.stages, { ...payments.stages[0]!, name: 'settle' }] };
    expect(() => deployedWorkflow(other, wiring)).toThrow(/the stack Copy has no queue payments-copy-settle-dlq\.fifo, payments-copy-settle\.fifo: was it deployed from this workflow definition/);
  });
});

describe('an edge started from the outputs alone', () => {
  it('knows the workflow\'s queues under the stack\'s name for it, and takes sends for them while the region is away', async () => {
    // The stack's endpoint answers nothing: the edge starts offline.
    const file = outputsFile({ Holdfast: stackOutputs('payments-site', 'http://127.0.0.1:9') });
    const edge = await startTestShim({ stackOutputs: file, upstreamCredentials: { accessKeyId: 'edge', secretAccessKey: 'edge' } });
    // The shim's region is the stack's: its clients sign for eu-west-1, as they would for the region.
    const sqs = new SQSClient({ endpoint: edge.shim.url, region: 'eu-west-1', credentials: TEST_CREDENTIALS, maxAttempts: 1 });
    try {
      const status = await edge.shim.status();
      expect(status).toMatchObject({ mode: 'offline', upstream: { url: 'http://127.0.0.1:9', region: 'eu-west-1' } });
      const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: 'payments-site-authorize.fifo' }));
      const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['FifoQueue', 'VisibilityTimeout'] }));
      expect(Attributes).toEqual({ FifoQueue: 'true', VisibilityTimeout: String(payments.stages[0]!.timeoutSeconds * 6) });
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: '{}', MessageGroupId: 'acct-1', MessageDeduplicationId: 'task-1' }));
      expect((await edge.shim.status()).backlog).toBe(1);
    } finally {
      sqs.destroy();
      await edge.close();
    }
  });
});
