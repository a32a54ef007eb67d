import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { CreateQueueCommand, GetQueueUrlCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createWorkflowResources, type WorkflowResources } from '../../functions/src/local-pipeline/resources.js';
import { DynamoDbStepLog } from '../../functions/src/runtime/store/dynamodb-step-log.js';
import { ChoreControl } from '../edge-shim/fixtures/chores/control.js';
import { chores } from '../edge-shim/fixtures/chores/workflow.js';
import { firstTask, sendTask } from '../functions/support/edge-site.js';
import { emulator } from '../helpers/emulator.js';
import { type HybridTest, agentsDatabase, drainRegion, startHybridTest } from '../helpers/hybrid.js';
import { eventually } from '../helpers/wait.js';

// Sync always before replay, whatever happened before: the fallback agents' work that never reached
// the region (a sync that failed: the edge was given the wrong tables) holds the replay of the
// workflow's tasks across restarts, while the edge is online, until it is synced; other queues go on.

const aws = emulator();
const WORKFLOW = `${new URL('../edge-shim/fixtures/chores/workflow.ts', import.meta.url).pathname}#chores`;
const WRONG_TABLES = { idempotency: 'missing-idempotency', workflow: 'missing-workflow', state: 'missing-state' };
let dir: string;
let control: ChoreControl;
let resources: WorkflowResources;
let edge: HybridTest;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'holdfast-sync-first-'));
  control = await ChoreControl.start();
  resources = await createWorkflowResources(aws, chores);
  const agentEnv = join(dir, 'agents.env');
  writeFileSync(agentEnv, `CHORES_CONTROL_URL=${control.url}\nPOWERTOOLS_LOG_LEVEL=ERROR\n`);
  edge = await startHybridTest({ siteId: 'site-sync', workflow: WORKFLOW, ...agentsDatabase(dir), agentEnvFile: agentEnv, agentStandby: false, regionTables: WRONG_TABLES });
}, 120_000);

afterAll(async () => {
  await edge?.close();
  await control?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('holds the replay of the workflow\'s tasks until the agents\' work is synced, across restarts and online; other queues replay meanwhile', { timeout: 180_000 }, async () => {
  const other = (await edge.sqs.send(new CreateQueueCommand({ QueueName: `other-${randomUUID().slice(0, 8)}` }))).QueueUrl!;
  const prepare = (await edge.sqs.send(new GetQueueUrlCommand({ QueueName: 'chores-prepare.fifo' }))).QueueUrl!;
  const chore = { paymentId: `chore-${randomUUID().slice(0, 8)}`, account: 'house-1' };

  edge.proxy.setMode('blackhole');
  await eventually(() => edge.shim.status(), (status) => status.mode === 'offline' && status.agents.length > 0 && status.agents.every((agent) => agent.state === 'running'));
  await sendTask(edge.sqs, prepare, firstTask(chores, chore));
  await edge.sqs.send(new SendMessageCommand({ QueueUrl: other, MessageBody: 'not the workflow\'s' }));
  // Prepared and delivered at the edge; its settle task waits there for the region.
  await eventually(() => edge.shim.status(), (status) => status.queues.find((queue) => queue.name === 'chores-settle.fifo')?.backlog === 1);

  // The region is back, but the sync cannot reach the tables it was given: the edge says which, and stays offline.
  edge.proxy.setMode('pass');
  const stuck = await eventually(() => edge.shim.status(), (status) => status.sync?.state === 'failed' && /stays offline/.test(status.reason));
  expect(stuck.mode).toBe('offline');
  expect(stuck.reason).toMatch(/the region has no table missing-\w+ \(the workflow's \w+ table\): give the deployed stack's table names with --region-tables/);

  // Restarted, still with the wrong tables, while the region is up: online at once, the other
  // queue replayed, the workflow's task held for the sync.
  edge = await edge.restart();
  const held = await eventually(() => edge.shim.status(), (status) => status.mode !== 'offline' && status.queues.find((queue) => queue.name === new URL(other).pathname.split('/').pop())?.backlog === 0);
  const settle = held.queues.find((queue) => queue.name === 'chores-settle.fifo')!;
  expect(settle.backlog).toBe(1);
  expect(settle.replayWaits).toMatch(/sync/);
  expect(await drainRegion(edge.region, 'chores-settle.fifo')).toEqual([]);

  // With the right tables: synced first, then replayed.
  edge = await edge.restart({ regionTables: { idempotency: resources.tables.idempotency, workflow: resources.tables.workflow, state: resources.tables.state } });
  await eventually(() => edge.shim.status(), (status) => status.mode === 'online' && status.backlog === 0, 100);
  const status = await edge.shim.status();
  expect(status.sync).toMatchObject({ state: 'done', conflicts: 0 });
  const replayed = await drainRegion(edge.region, 'chores-settle.fifo');
  expect(replayed.map((message) => (JSON.parse(message.Body!) as { workflowId: string }).workflowId)).toEqual([chore.paymentId]);
  const documents = DynamoDBDocumentClient.from(new DynamoDBClient(aws));
  try {
    const log = await new DynamoDbStepLog(documents, resources.tables.workflow).load(chore.paymentId);
    expect(log.steps.map((step) => [step.step, step.status])).toEqual([
      ['prepare', 'completed'],
      ['deliver', 'completed'],
    ]);
  } finally {
    documents.destroy();
  }
});
