/**
 * `npm run pipeline`: the whole reference pipeline on this machine. Starts the AWS emulator (or uses
 * AWS_ENDPOINT_URL), a fake payment gateway and notifier, creates the payments workflow's queues and
 * tables, runs its agents in the local runner, submits a few payments and prints how each ended.
 */
import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetQueueAttributesCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { holdfastLogger } from '../runtime/log.js';
import { type AwsConnection, startLocalRunner } from '../event-source/runner.js';
import { startFakeGateway } from '../fake-gateway/server.js';
import { Ledger } from '../runtime/ledger.js';
import { DynamoDbLedger } from '../runtime/store/dynamodb-ledger.js';
import { DynamoDbStepLog } from '../runtime/store/dynamodb-step-log.js';
import type { SagaStatus } from '../runtime/store/types.js';
import { stageTaskId } from '../runtime/task.js';
import { payments } from '../workflows/payments.js';
import { ENV } from '../workflow-definition.js';
import { EndpointError, checkAwsEndpoint } from './endpoint-check.js';
import { startMoto } from './moto.js';
import { createWorkflowResources, resourceEnvironment } from './resources.js';

// The project runs on Node 20 on purpose; keep the SDK's upgrade notice (once per worker) out of the report.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const FINAL: readonly SagaStatus[] = ['completed', 'escalated', 'compensated'];
const SETTLE_TIMEOUT_MS = 60_000;

const requests = [
  { account: 'acct-alice', merchant: 'shop-books', amountMinor: 12_000, currency: 'EUR' },
  { account: 'acct-alice', merchant: 'shop-coffee', amountMinor: 350, currency: 'EUR' },
  { account: 'acct-bob', merchant: 'shop-books', amountMinor: 45_000, currency: 'EUR' },
  { account: 'fraud-mallory', merchant: 'shop-jewels', amountMinor: 99_000, currency: 'EUR' },
].map((request) => ({ paymentId: `pay-${randomUUID().slice(0, 8)}`, ...request }));

const moto = process.env.AWS_ENDPOINT_URL ? undefined : await startMoto();
const aws: AwsConnection = {
  endpoint: process.env.AWS_ENDPOINT_URL ?? moto!.endpoint,
  region: process.env.AWS_REGION ?? 'us-east-1',
  credentials: {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'testing',
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'testing',
  },
};
const gateway = await startFakeGateway();
const notifier = await startFakeGateway();
const sqs = new SQSClient(aws);
const documents = DynamoDBDocumentClient.from(new DynamoDBClient(aws));
let stopRunner: (() => Promise<void>) | undefined;

try {
  console.log(`AWS endpoint ${aws.endpoint}${moto ? ' (moto, started for this run)' : ''}; gateway ${gateway.url}; notifier ${notifier.url}`);
  await checkAwsEndpoint(aws);
  const resources = await createWorkflowResources(aws, payments);
  console.log(`Created the ${payments.name} queues and tables; starting the agents: ${payments.stages.map((stage) => stage.name).join(' -> ')}`);
  const runner = await startLocalRunner({
    workflow: payments,
    aws,
    queues: resources.queues,
    environment: { ...resourceEnvironment(resources), [ENV.gatewayUrl]: gateway.url, [ENV.notifierUrl]: notifier.url, POWERTOOLS_LOG_LEVEL: 'ERROR' },
    logger: holdfastLogger('local-runner', process.env.LOG_LEVEL ?? 'warn'),
  });
  stopRunner = () => runner.stop();

  // The gateway fails its next two requests: the agents retry them.
  gateway.faults.failNext = 2;
  for (const request of requests) {
    const task = { taskId: stageTaskId(request.paymentId, 'authorize'), workflow: payments.name, workflowId: request.paymentId, stage: 'authorize', group: request.account, input: request };
    await sqs.send(
      new SendMessageCommand({
        QueueUrl: resources.queues.authorize!.queueUrl,
        MessageBody: JSON.stringify(task),
        MessageGroupId: request.account,
        MessageDeduplicationId: task.taskId,
      }),
    );
    console.log(`Submitted ${request.paymentId}: ${request.account} pays ${request.merchant} ${(request.amountMinor / 100).toFixed(2)} ${request.currency}`);
  }

  const stepLog = new DynamoDbStepLog(documents, resources.tables.workflow);
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  console.log('\nOutcomes:');
  for (const request of requests) {
    let log = await stepLog.load(request.paymentId);
    while (!FINAL.includes(log.saga?.status as SagaStatus) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      log = await stepLog.load(request.paymentId);
    }
    const steps = log.steps.map((step) => {
      const answeredBy = (step.result as { answeredBy?: string } | undefined)?.answeredBy;
      return `${step.step} ${step.status}${answeredBy ? ` (${answeredBy})` : ''}${step.error ? `: ${step.error}` : ''}`;
    });
    console.log(`  ${request.paymentId} ${log.saga?.status ?? 'not started'}: ${steps.join(', ')}`);
  }

  const balance = await new Ledger(new DynamoDbLedger(documents, resources.tables.ledger)).trialBalance();
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: resources.humanReviewQueueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  console.log(`\nLedger: ${balance.entries} entries, ${balance.balanced ? 'balanced' : 'NOT balanced'}`);
  console.log(`Gateway: ${gateway.state.authorizations.length} authorizations, requests ${JSON.stringify(gateway.state.requests)}`);
  console.log(`Notifier: ${notifier.state.notifications.length} notifications sent`);
  console.log(`Human review queue: ${Attributes?.ApproximateNumberOfMessages ?? '?'} messages`);
} catch (error) {
  if (!(error instanceof EndpointError)) throw error;
  console.error(`\n${error.message}`);
  process.exitCode = 1;
} finally {
  await stopRunner?.();
  sqs.destroy();
  documents.destroy();
  await Promise.all([gateway.close(), notifier.close()]);
  await moto?.stop();
}
