import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeleteMessageCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { type FakeGateway, startFakeGateway } from '../../functions/src/fake-gateway/server.js';
import { createWorkflowResources } from '../../functions/src/local-pipeline/resources.js';
import type { SqsAgentHandler } from '../../functions/src/runtime/agent.js';
import { Ledger } from '../../functions/src/runtime/ledger.js';
import { DynamoDbCounters } from '../../functions/src/runtime/store/dynamodb-counters.js';
import { DynamoDbLedger } from '../../functions/src/runtime/store/dynamodb-ledger.js';
import { DynamoDbStepLog } from '../../functions/src/runtime/store/dynamodb-step-log.js';
import { stageTaskId } from '../../functions/src/runtime/task.js';
import { velocityKey } from '../../functions/src/workflows/payments-saga.js';
import { payments } from '../../functions/src/workflows/payments.js';
import { ENV, type TableKey } from '../../functions/src/workflow-definition.js';
import { emulator } from '../helpers/emulator.js';
import { documentClient, invocationContext, receiveEvent, useEmulatorInProcess } from './support/runtime.js';

/**
 * The tables each payments stage declares (payments.ts), which are all its function is granted and
 * told about in AWS, are enough for its agent: every stage's handler runs in a fresh module instance
 * with only its declared tables in its environment, as the stack configures it. The notifier refuses
 * the payment for good, so the notify stage also runs the earlier stages' compensations.
 */
const TABLE_VARIABLES: Readonly<Record<TableKey, string>> = {
  idempotency: ENV.idempotencyTable,
  workflow: ENV.workflowTable,
  ledger: ENV.ledgerTable,
  state: ENV.stateTable,
};

const REPOSITORY_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const aws = emulator();
const sqs = new SQSClient(aws);
let gateway: FakeGateway;
let notifier: FakeGateway;
const savedEnvironment = { ...process.env };

beforeAll(async () => {
  useEmulatorInProcess();
  [gateway, notifier] = await Promise.all([startFakeGateway(), startFakeGateway()]);
});
afterAll(async () => {
  process.env = savedEnvironment;
  sqs.destroy();
  await Promise.all([gateway?.close(), notifier?.close()]);
});

it('runs every payments stage, compensations included, with only the tables its stage declares', { timeout: 30_000 }, async () => {
  const resources = await createWorkflowResources(aws, payments, { namePrefix: `tables-${randomUUID().slice(0, 8)}-` });
  const request = { paymentId: `pay-${randomUUID()}`, account: 'acct-tables', merchant: 'shop-1', amountMinor: 4_200, currency: 'EUR' };
  const workflowId = request.paymentId;
  const task = { taskId: stageTaskId(workflowId, 'authorize'), workflow: payments.name, workflowId, stage: 'authorize', group: request.account, input: request };
  await sqs.send(
    new SendMessageCommand({ QueueUrl: resources.queues.authorize!.queueUrl, MessageBody: JSON.stringify(task), MessageGroupId: request.account, MessageDeduplicationId: randomUUID() }),
  );
  // A client error is no outage: the notify step fails for good and the saga is compensated.
  Object.assign(notifier.faults, { failNext: 1, failStatus: 400 });

  for (const [index, stage] of payments.stages.entries()) {
    const declared = Object.keys(stage.tables!) as TableKey[];
    for (const variable of Object.values(TABLE_VARIABLES)) delete process.env[variable];
    delete process.env[ENV.nextQueueUrl];
    const next = payments.stages[index + 1];
    Object.assign(process.env, {
      ...Object.fromEntries(declared.map((key) => [TABLE_VARIABLES[key], resources.tables[key]])),
      [ENV.humanReviewQueueUrl]: resources.humanReviewQueueUrl,
      [ENV.gatewayUrl]: gateway.url,
      [ENV.notifierUrl]: notifier.url,
      ...(next && { [ENV.nextQueueUrl]: resources.queues[next.name]!.queueUrl }),
    });
    // A fresh instance of the agent and everything it imports: no client or table name kept from an earlier stage.
    vi.resetModules();
    const { handler } = (await import(join(REPOSITORY_ROOT, stage.entry))) as { handler: SqsAgentHandler };
    const queueUrl = resources.queues[stage.name]!.queueUrl;
    const { event, messages } = await receiveEvent(sqs, queueUrl);
    expect(messages, stage.name).toHaveLength(1);
    expect(await handler(event, invocationContext(stage.name, stage.timeoutSeconds)), stage.name).toEqual({ batchItemFailures: [] });
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: messages[0]!.ReceiptHandle }));
  }

  const log = await new DynamoDbStepLog(documentClient(), resources.tables.workflow).load(workflowId);
  expect(log.saga?.status).toBe('compensated');
  expect(log.steps.map((step) => [step.step, step.status])).toEqual([
    ['authorize', 'compensated'],
    ['fraud-score', 'compensated'],
    ['ledger', 'compensated'],
    ['notify', 'failed'],
  ]);
  expect(gateway.state.authorizations.find((authorization) => authorization.paymentId === workflowId)?.status).toBe('voided');
  const ledger = new Ledger(new DynamoDbLedger(documentClient(), resources.tables.ledger));
  expect(await ledger.getPosting(`${workflowId}:reversal`)).toBeDefined();
  expect(await ledger.trialBalance()).toMatchObject({ balanced: true, entries: 4 });
  const { velocity } = (log.steps[1]!.result as { value: { velocity: { key: string } } }).value;
  expect(velocity.key.startsWith(velocityKey(request.account, ''))).toBe(true);
  expect(await new DynamoDbCounters(documentClient(), resources.tables.state).read(velocity.key)).toEqual({ region: 1 });
});
