import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type LocalRunner, type LocalRunnerOptions, startLocalRunner } from '../../functions/src/event-source/runner.js';
import { FRAUDULENT_ACCOUNT_PREFIX, type FakeGateway, startFakeGateway } from '../../functions/src/fake-gateway/server.js';
import { type WorkflowResources, createWorkflowResources, resourceEnvironment } from '../../functions/src/local-pipeline/resources.js';
import { Ledger } from '../../functions/src/runtime/ledger.js';
import { DynamoDbCounters } from '../../functions/src/runtime/store/dynamodb-counters.js';
import type { FallbackOutcome } from '../../functions/src/runtime/fallback.js';
import { DynamoDbLedger } from '../../functions/src/runtime/store/dynamodb-ledger.js';
import { DynamoDbStepLog } from '../../functions/src/runtime/store/dynamodb-step-log.js';
import type { SagaStatus } from '../../functions/src/runtime/store/types.js';
import { stageTaskId } from '../../functions/src/runtime/task.js';
import { STAND_IN_LIMIT_MINOR, velocityKey } from '../../functions/src/workflows/payments-saga.js';
import { payments } from '../../functions/src/workflows/payments.js';
import { ENV, type WorkflowDefinition } from '../../functions/src/workflow-definition.js';
import { emulator } from '../helpers/emulator.js';
import { Settled, waitForState } from '../helpers/wait.js';
import { documentClient, useEmulatorInProcess } from './support/runtime.js';

/**
 * End-to-end runs of the payments workflow: the real agents, each in a worker thread of the local
 * runner, on FIFO queues and tables in the emulator, calling a fake gateway and notifier over HTTP.
 * Short function timeouts and visibility timeouts keep redeliveries quick.
 */
const aws = emulator();
const sqs = new SQSClient(aws);
const STAGE_TIMEOUT_SECONDS = 6;
const quick = (overrides: { maxReceiveCount?: number } = {}): WorkflowDefinition => ({
  ...payments,
  stages: payments.stages.map((stage) => ({ ...stage, timeoutSeconds: STAGE_TIMEOUT_SECONDS, ...overrides })),
});

let gateway: FakeGateway;
let notifier: FakeGateway;
const runners: LocalRunner[] = [];
const children: ChildProcess[] = [];

beforeAll(() => useEmulatorInProcess());
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await Promise.all(runners.splice(0).map((runner) => runner.stop()));
  await Promise.all([gateway?.close(), notifier?.close()]);
});
afterAll(() => sqs.destroy());

interface Pipeline {
  readonly workflow: WorkflowDefinition;
  readonly resources: WorkflowResources;
  readonly options: Omit<LocalRunnerOptions, 'logger'>;
  readonly stepLog: DynamoDbStepLog;
  readonly ledger: Ledger;
  readonly ledgerStore: DynamoDbLedger;
}

async function pipeline(workflow = quick(), visibilityTimeoutSeconds = STAGE_TIMEOUT_SECONDS): Promise<Pipeline> {
  gateway = await startFakeGateway();
  notifier = await startFakeGateway();
  const resources = await createWorkflowResources(aws, workflow, { namePrefix: `pay-${randomUUID().slice(0, 8)}-`, visibilityTimeoutSeconds });
  const ledgerStore = new DynamoDbLedger(documentClient(), resources.tables.ledger);
  return {
    workflow,
    resources,
    options: {
      workflow,
      aws,
      queues: resources.queues,
      waitTimeSeconds: 1,
      environment: { ...resourceEnvironment(resources), [ENV.gatewayUrl]: gateway.url, [ENV.notifierUrl]: notifier.url, POWERTOOLS_LOG_LEVEL: 'CRITICAL' },
    },
    stepLog: new DynamoDbStepLog(documentClient(), resources.tables.workflow),
    ledger: new Ledger(ledgerStore),
    ledgerStore,
  };
}

async function run(p: Pipeline): Promise<void> {
  runners.push(await startLocalRunner({ ...p.options, logger: pino({ level: 'silent' }) }));
}

function payment(overrides: Partial<{ account: string; merchant: string; amountMinor: number }> = {}) {
  const paymentId = `pay-${randomUUID()}`;
  return { paymentId, account: 'acct-1', merchant: 'shop-1', amountMinor: 12_345, currency: 'EUR', ...overrides };
}

/** Submits a payment the way a client does: a task for the first stage, grouped by account. */
async function submit(p: Pipeline, request: ReturnType<typeof payment>, deduplicationId = randomUUID()): Promise<string> {
  const workflowId = request.paymentId;
  const task = { taskId: stageTaskId(workflowId, 'authorize'), workflow: p.workflow.name, workflowId, stage: 'authorize', group: request.account, input: request };
  await sqs.send(
    new SendMessageCommand({ QueueUrl: p.resources.queues.authorize!.queueUrl, MessageBody: JSON.stringify(task), MessageGroupId: request.account, MessageDeduplicationId: deduplicationId }),
  );
  return workflowId;
}

const FINAL: readonly SagaStatus[] = ['completed', 'escalated', 'compensated'];

/** Waits for the saga to end `status`, however long the machine takes; ending otherwise fails at once. */
async function settled(p: Pipeline, workflowId: string, status: SagaStatus) {
  return waitForState(
    async () => {
      const log = await p.stepLog.load(workflowId);
      if (log.saga && log.saga.status !== status && FINAL.includes(log.saga.status)) throw new Settled(`saga ${workflowId} ended ${log.saga.status}, not ${status}`);
      expect(log.saga?.status).toBe(status);
      return log;
    },
    { intervalMs: 250 },
  );
}

const outcome = (result: unknown) => result as FallbackOutcome;

async function visibleMessages(queueUrl: string): Promise<number> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Number(Attributes?.ApproximateNumberOfMessages);
}

/** Messages on a queue, visible or in flight. */
async function queueDepth(queueUrl: string): Promise<number> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return Number(Attributes?.ApproximateNumberOfMessages) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible);
}

// Each test waits for states, never for a set time; this bounds only a run that is truly stuck.
describe('the payments workflow', { timeout: 180_000 }, () => {
  it('retries transient gateway errors and completes every stage', async () => {
    const p = await pipeline();
    gateway.faults.failNext = 2;
    await run(p);
    const workflowId = await submit(p, payment());
    const { steps } = await settled(p, workflowId, 'completed');

    expect(steps.map((step) => [step.step, step.status, outcome(step.result).answeredBy])).toEqual([
      ['authorize', 'completed', 'gateway'],
      ['fraud-score', 'completed', 'fraud-service'],
      ['ledger', 'completed', 'ledger'],
      ['notify', 'completed', 'notifier'],
    ]);
    expect(gateway.state.requests['POST /authorizations']).toBe(3);
    expect(gateway.state.authorizations).toHaveLength(1);
    expect(notifier.state.notifications.map((note) => note.paymentId)).toEqual([workflowId]);
    const posting = await p.ledger.getPosting(workflowId);
    expect(posting?.entries.map((entry) => [entry.account, entry.side, entry.amountMinor])).toEqual([
      ['customer:acct-1', 'debit', 12_345],
      ['merchant:shop-1', 'credit', 12_345],
    ]);
    expect((await p.ledger.trialBalance()).balanced).toBe(true);
  });

  it('opens the breaker when the gateway is down and lets the fallback chain answer', async () => {
    const p = await pipeline();
    gateway.faults.down = true;
    await run(p);
    const small = [payment({ amountMinor: 1_000 }), payment({ amountMinor: 2_000 }), payment({ amountMinor: 3_000 })];
    for (const request of small) await submit(p, request);
    const large = payment({ account: 'acct-2', amountMinor: STAND_IN_LIMIT_MINOR + 1 });
    await submit(p, large);

    const logs = [];
    for (const request of small) logs.push(await settled(p, request.paymentId, 'completed'));
    const authorizations = logs.map(({ steps }) => outcome(steps[0]!.result));
    expect(authorizations.map((answer) => answer.answeredBy)).toEqual(['stand-in', 'stand-in', 'stand-in']);
    expect(logs.map(({ steps }) => outcome(steps[1]!.result).answeredBy)).toEqual(['rules', 'rules', 'rules']);
    // By the last payment the circuit is open: the gateway is not even tried.
    expect(authorizations[2]!.skipped[0]!.reason).toMatch(/^BrokenCircuitError/);
    // Each of the two dependencies on the gateway (authorization, fraud scoring) was tried until its
    // breaker opened after 5 consecutive failures (one more if two calls were in flight at that
    // moment), not 4 attempts for each of the 3 payments.
    expect(gateway.state.refusedConnections).toBeGreaterThanOrEqual(10);
    expect(gateway.state.refusedConnections).toBeLessThanOrEqual(12);

    // Too large for stand-in processing: a human decides.
    const escalated = await settled(p, large.paymentId, 'escalated');
    expect(outcome(escalated.steps[0]!.result).answeredBy).toBe('human-review');
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: p.resources.humanReviewQueueUrl, WaitTimeSeconds: 1 }));
    expect(Messages.map((message) => JSON.parse(message.Body!).workflowId)).toEqual([large.paymentId]);
    expect(await p.ledger.getPosting(large.paymentId)).toBeUndefined();
    expect((await p.ledger.trialBalance()).balanced).toBe(true);
  });

  it('compensates the earlier steps in reverse when the ledger refuses the payment, and the ledger still balances', async () => {
    const p = await pipeline();
    await p.ledgerStore.closeAccount('merchant:shop-closed');
    await run(p);
    const ok = payment();
    await submit(p, ok);
    const refused = payment({ merchant: 'shop-closed' });
    const workflowId = await submit(p, refused);

    const { steps } = await settled(p, workflowId, 'compensated');
    expect(steps.map((step) => [step.step, step.status])).toEqual([
      ['authorize', 'compensated'],
      ['fraud-score', 'compensated'],
      ['ledger', 'failed'],
    ]);
    expect(steps[2]!.error).toContain('ledger account closed: merchant:shop-closed');
    const authorization = gateway.state.authorizations.find((candidate) => candidate.paymentId === workflowId);
    expect(authorization?.status).toBe('voided');
    expect(gateway.state.requests['POST /authorizations/{id}/void']).toBe(1);
    expect(notifier.state.notifications.map((note) => note.paymentId)).not.toContain(workflowId);
    expect(await p.ledger.getPosting(workflowId)).toBeUndefined();

    await settled(p, ok.paymentId, 'completed');
    const balance = await p.ledger.trialBalance();
    expect(balance).toEqual({ balanced: true, entries: 2, byCurrency: { EUR: { debitsMinor: 12_345, creditsMinor: 12_345 } } });
  });

  it('declines a payment the fraud service scores as fraud and voids its authorization', async () => {
    const p = await pipeline();
    await run(p);
    const workflowId = await submit(p, payment({ account: `${FRAUDULENT_ACCOUNT_PREFIX}acct` }));
    const { steps } = await settled(p, workflowId, 'compensated');
    expect(steps.map((step) => [step.step, step.status])).toEqual([
      ['authorize', 'compensated'],
      ['fraud-score', 'failed'],
    ]);
    expect(steps[1]!.error).toBe('PermanentError: payment declined: fraud score 97');
    expect(gateway.state.authorizations.map((authorization) => authorization.status)).toEqual(['voided']);
    const balance = await p.ledger.trialBalance();
    expect(balance).toEqual({ balanced: true, entries: 0, byCurrency: {} });
  });

  it('posts once when the same message is delivered twice', async () => {
    const p = await pipeline();
    await run(p);
    const request = payment();
    await submit(p, request);
    await submit(p, request);
    await settled(p, request.paymentId, 'completed');
    // Both deliveries have been handled (and deleted) once the first stage's queue is empty.
    await waitForState(async () => expect(await queueDepth(p.resources.queues.authorize!.queueUrl)).toBe(0), { intervalMs: 250 });
    await waitForState(async () => expect(await queueDepth(p.resources.queues.notify!.queueUrl)).toBe(0), { intervalMs: 250 });

    expect(gateway.state.authorizations).toHaveLength(1);
    expect(notifier.state.notifications).toHaveLength(1);
    expect((await p.ledger.trialBalance()).entries).toBe(2);
    // The fraud agent's velocity counter for the account counts the payment once.
    const { steps } = await p.stepLog.load(request.paymentId);
    const { velocity } = outcome(steps[1]!.result).value as { velocity: { key: string; payments: number } };
    expect(velocity).toEqual({ key: velocityKey(request.account, velocity.key.slice(-10)), payments: 1 });
    expect(await new DynamoDbCounters(documentClient(), p.resources.tables.state).read(velocity.key)).toEqual({ region: 1 });
  });

  it('resumes from the step log after the worker is killed mid-workflow', async () => {
    const p = await pipeline();
    notifier.faults.latencyMs = 60_000;
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/functions/support/payments-worker.ts'], {
      env: { ...process.env, HOLDFAST_WORKER_OPTIONS: JSON.stringify(p.options) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    const request = payment();
    await submit(p, request);

    // The notify agent is waiting on the notifier: every step before it is done. Kill the worker.
    await waitForState(() => expect(notifier.state.requests['POST /notifications']).toBe(1));
    // And the ledger's task deleted from its queue: on a loaded machine the delete can trail the notify call.
    await waitForState(async () => expect(await queueDepth(p.resources.queues.ledger!.queueUrl)).toBe(0));
    child.kill('SIGKILL');
    await once(child, 'exit');
    const before = await p.stepLog.load(request.paymentId);
    expect(before.steps.map((step) => [step.step, step.status])).toEqual([
      ['authorize', 'completed'],
      ['fraud-score', 'completed'],
      ['ledger', 'completed'],
      ['notify', 'started'],
    ]);

    notifier.faults.latencyMs = 0;
    await run(p);
    const { steps } = await settled(p, request.paymentId, 'completed');
    expect(steps.map((step) => [step.step, step.attempts])).toEqual([
      ['authorize', 1],
      ['fraud-score', 1],
      ['ledger', 1],
      ['notify', 2],
    ]);
    expect(gateway.state.authorizations).toHaveLength(1);
    expect(notifier.state.notifications).toHaveLength(1);
    expect((await p.ledger.trialBalance()).entries).toBe(2);
  });

  it('sends a poison message to the dead-letter queue, raising the alarm metric', async () => {
    // Nothing here is slow: a short visibility timeout brings the failing message back quickly.
    const p = await pipeline(quick({ maxReceiveCount: 2 }), 1);
    await run(p);
    await sqs.send(new SendMessageCommand({ QueueUrl: p.resources.queues.authorize!.queueUrl, MessageBody: '{"not": "a task"}', MessageGroupId: 'acct-poison', MessageDeduplicationId: randomUUID() }));
    const deadLetter = p.resources.queues.authorize!.deadLetterQueueUrl;
    // The dead-letter alarm watches ApproximateNumberOfMessagesVisible of this queue.
    await waitForState(async () => expect(await visibleMessages(deadLetter)).toBe(1), { intervalMs: 250 });
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: deadLetter, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }));
    expect(Messages.map((message) => message.Body)).toEqual(['{"not": "a task"}']);
  });
});
