import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LocalRunner, startLocalRunner } from '../../functions/src/event-source/runner.js';
import { type FakeGateway, startFakeGateway } from '../../functions/src/fake-gateway/server.js';
import { createWorkflowResources, resourceEnvironment, type WorkflowResources } from '../../functions/src/local-pipeline/resources.js';
import { Ledger } from '../../functions/src/runtime/ledger.js';
import { DynamoDbLedger } from '../../functions/src/runtime/store/dynamodb-ledger.js';
import { DynamoDbStepLog } from '../../functions/src/runtime/store/dynamodb-step-log.js';
import { payments } from '../../functions/src/workflows/payments.js';
import { ENV } from '../../functions/src/workflow-definition.js';
import { firstTask, sendTask } from '../functions/support/edge-site.js';
import { emulator } from '../helpers/emulator.js';
import { eventually } from '../helpers/wait.js';
import { type HybridTest, agentsDatabase, startHybridTest } from '../helpers/hybrid.js';

// The payments workflow through an outage, end to end: the region (moto, with its own agents in
// the local runner) and the hybrid edge with its fallback agents. A payment submitted while the
// region is cut off is authorized and scored at the edge, its ledger task waits there; when the
// region returns the agents stop, their work is synced into the region's tables, the task is
// replayed, and the region's agents post and notify it: authorized once, posted once.

const aws = emulator();
let dir: string;
let gateway: FakeGateway;
let resources: WorkflowResources;
let cloud: LocalRunner;
let edge: HybridTest;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-fallback-'));
  gateway = await startFakeGateway();
  resources = await createWorkflowResources(aws, payments);
  const agents = { [ENV.gatewayUrl]: gateway.url, [ENV.notifierUrl]: gateway.url, POWERTOOLS_LOG_LEVEL: 'ERROR' };
  cloud = await startLocalRunner({
    workflow: payments,
    aws,
    queues: resources.queues,
    environment: { ...resourceEnvironment(resources), ...agents },
    waitTimeSeconds: 1,
    logger: pino({ level: 'silent' }),
  });
  const agentEnv = join(dir, 'agents.env');
  writeFileSync(agentEnv, Object.entries(agents).map(([name, value]) => `${name}=${value}`).join('\n'));
  edge = await startHybridTest({ siteId: 'site-1', ...agentsDatabase(dir), agentEnvFile: agentEnv, agentStandby: false });
}, 120_000);

afterAll(async () => {
  await edge?.close();
  await cloud?.stop();
  await gateway?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('authorizes and scores a payment at the edge during an outage, and the region posts and notifies it once after the replay', { timeout: 120_000 }, async () => {
  const request = { paymentId: `pay-${randomUUID().slice(0, 8)}`, account: `acct-${randomUUID().slice(0, 8)}`, merchant: 'shop-1', amountMinor: 4_200, currency: 'EUR' };
  const authorizeUrl = (await edge.sqs.send(new GetQueueUrlCommand({ QueueName: 'payments-authorize.fifo' }))).QueueUrl!;
  edge.proxy.setMode('blackhole');
  await eventually(() => edge.shim.status(), (status) => status.mode === 'offline' && status.agents.length > 0 && status.agents.every((agent) => agent.state === 'running'));
  await sendTask(edge.sqs, authorizeUrl, firstTask(payments, request));
  // Authorized and scored at the edge: its ledger task waits at the edge for the region.
  await eventually(() => edge.shim.status(), (status) => status.queues.find((queue) => queue.name === 'payments-ledger.fifo')?.backlog === 1);
  expect(gateway.state.authorizations).toHaveLength(1);

  edge.proxy.setMode('pass');
  await eventually(() => edge.shim.status(), (status) => status.mode === 'online' && status.backlog === 0);
  const status = await edge.shim.status();
  expect(status.sync).toMatchObject({ state: 'done', conflicts: 0 });
  expect(status.sync!.written).toBeGreaterThan(0);
  expect(status.agents.every((agent) => agent.state === 'stopped')).toBe(true);

  const documents = DynamoDBDocumentClient.from(new DynamoDBClient(aws));
  try {
    const stepLog = new DynamoDbStepLog(documents, resources.tables.workflow);
    const log = await eventually(() => stepLog.load(request.paymentId), (loaded) => loaded.saga?.status === 'completed');
    expect(log.steps.map((step) => [step.step, step.status])).toEqual([
      ['authorize', 'completed'],
      ['fraud-score', 'completed'],
      ['ledger', 'completed'],
      ['notify', 'completed'],
    ]);
    expect(gateway.state.authorizations).toHaveLength(1);
    expect(gateway.state.notifications).toHaveLength(1);
    expect((await new Ledger(new DynamoDbLedger(documents, resources.tables.ledger)).trialBalance()).balanced).toBe(true);
  } finally {
    documents.destroy();
  }
});
