import { randomUUID } from 'node:crypto';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { syncEdgeToRegion } from '../../functions/src/edge/index.js';
import { type FakeGateway, FRAUDULENT_ACCOUNT_PREFIX, startFakeGateway } from '../../functions/src/fake-gateway/server.js';
import { createAgent } from '../../functions/src/runtime/agent.js';
import type { AgentDependencies } from '../../functions/src/runtime/dependencies.js';
import type { FallbackOutcome } from '../../functions/src/runtime/fallback.js';
import { Ledger } from '../../functions/src/runtime/ledger.js';
import { REGION, type Site, edgeSite } from '../../functions/src/runtime/site.js';
import { dynamoDbStores } from '../../functions/src/runtime/store/stores.js';
import type { Stores } from '../../functions/src/runtime/store/types.js';
import type { Task } from '../../functions/src/runtime/task.js';
import { EDGE_LIMIT_DEFAULTS, type PaymentsSettings, paymentsSaga, velocityKey } from '../../functions/src/workflows/payments-saga.js';
import { payments } from '../../functions/src/workflows/payments.js';
import { ENV, type TableKey } from '../../functions/src/workflow-definition.js';
import { edgeDatabase, regionTables, type TestEdgeDatabase } from './support/backends.js';
import { firstTask } from './support/edge-site.js';
import { invocationContext, taskEvent } from './support/runtime.js';

/**
 * Sagas that cross sites: each stage's task carries the outcomes of the steps before it, so a stage
 * can run where its store never saw them. The payments workflow hops between the region (DynamoDB)
 * and an edge site (SQLite) stage by stage, both ways, compensations included; the edge's part
 * then reaches the region by the sync, and the region's step log tells where each step ran.
 */
const savedEnvironment = { ...process.env };
let gateway: FakeGateway;
let tables: Record<TableKey, string>;
let dynamodb: DynamoDBClient;
let regionStores: Stores;
let edge: TestEdgeDatabase;
const EDGE = edgeSite('edge-a');
const settings: PaymentsSettings = { edgeLimits: EDGE_LIMIT_DEFAULTS };

beforeAll(async () => {
  gateway = await startFakeGateway();
  Object.assign(process.env, { [ENV.gatewayUrl]: gateway.url, [ENV.notifierUrl]: gateway.url, POWERTOOLS_LOG_LEVEL: 'CRITICAL' });
  ({ tables, dynamodb } = await regionTables('cross'));
  regionStores = dynamoDbStores(dynamodb, tables);
});
afterAll(async () => {
  process.env = savedEnvironment;
  dynamodb.destroy();
  await gateway.close();
});
afterEach(() => edge?.remove());

/** Runs one stage's agent at a site for a task; returns what it handed on (next stage or human review). */
async function runAt(site: Site, stores: Stores, task: Task): Promise<{ next?: Task; escalated?: Task }> {
  const passed: { next?: Task; escalated?: Task } = {};
  const dependencies: AgentDependencies<PaymentsSettings> = {
    site,
    stores,
    settings,
    handOff: async (next) => void (passed.next = next),
    escalate: async (task) => void (passed.escalated = task),
  };
  const response = await createAgent(paymentsSaga, task.stage, dependencies)(taskEvent([task]), invocationContext(`payments-${task.stage}`, 15));
  expect(response.batchItemFailures, task.stage).toEqual([]);
  return passed;
}

const inRegion = (task: Task) => runAt(REGION, regionStores, task);
const atEdge = (task: Task) => runAt(EDGE, edge.stores, task);

function payment(overrides: Partial<{ account: string; amountMinor: number }> = {}) {
  return { paymentId: `pay-${randomUUID()}`, account: `acct-${randomUUID().slice(0, 8)}`, merchant: 'shop-1', amountMinor: 4_000, currency: 'EUR', ...overrides };
}

const answers = (steps: readonly { step: string; status: string; result?: unknown; ranAt?: { site: string } }[]) =>
  steps.map((step) => [step.step, step.status, (step.result as FallbackOutcome | undefined)?.answeredBy, step.ranAt?.site]);

function sync() {
  return syncEdgeToRegion({ database: edge.db, dynamodb, tables, logger: pino({ level: 'silent' }) });
}

describe('a saga across sites', () => {
  it('hops from the region to the edge and back, stage by stage, and the region ends up knowing where each step ran', async () => {
    edge = await edgeDatabase();
    const request = payment();
    const authorized = await inRegion(firstTask(payments, request));
    const scored = await atEdge(authorized.next!);
    const posted = await inRegion(scored.next!);
    const notified = await atEdge(posted.next!);
    expect(notified.next).toBeUndefined();

    // The edge saw only the steps its tasks carried, and recorded them as they ran.
    const atTheEdge = await edge.stores.stepLog.load(request.paymentId);
    expect(atTheEdge.saga?.status).toBe('completed');
    expect(answers(atTheEdge.steps)).toEqual([
      ['authorize', 'completed', 'gateway', 'region'],
      ['fraud-score', 'completed', 'rules', 'edge-a'],
      ['ledger', 'completed', 'ledger', 'region'],
      ['notify', 'completed', 'notifier', 'edge-a'],
    ]);
    expect((await regionStores.stepLog.load(request.paymentId)).saga?.status).toBe('running');

    const result = await sync();
    expect(result.counts.conflicts).toBe(0);
    const inTheRegion = await regionStores.stepLog.load(request.paymentId);
    expect(inTheRegion.saga?.status).toBe('completed');
    expect(answers(inTheRegion.steps)).toEqual(answers(atTheEdge.steps));
    expect(gateway.state.authorizations.filter((authorization) => authorization.paymentId === request.paymentId)).toHaveLength(1);
    expect(gateway.state.notifications.filter((notification) => notification.paymentId === request.paymentId)).toHaveLength(1);
    expect((await new Ledger(regionStores.ledger!).getPosting(request.paymentId))?.entries).toHaveLength(2);
    // The edge's velocity count of the account reaches the region as its own writer's count.
    expect(await regionStores.counters.read(velocityKey(request.account))).toEqual({ 'edge-a': 1 });
  });

  it('compensates in the region a step authorized at the edge: the region voids the edge\'s authorization', async () => {
    edge = await edgeDatabase();
    const request = payment({ account: `${FRAUDULENT_ACCOUNT_PREFIX}${randomUUID().slice(0, 8)}` });
    const authorized = await atEdge(firstTask(payments, request));
    expect(authorized.next?.trail?.map((carried) => [carried.step, carried.ranAt?.site])).toEqual([['authorize', 'edge-a']]);
    // The fraud service, in the region, scores the account as fraud: the payment is declined there.
    expect((await inRegion(authorized.next!)).next).toBeUndefined();

    const inTheRegion = await regionStores.stepLog.load(request.paymentId);
    expect(inTheRegion.saga?.status).toBe('compensated');
    expect(answers(inTheRegion.steps)).toEqual([
      ['authorize', 'compensated', 'gateway', 'edge-a'],
      ['fraud-score', 'failed', undefined, 'region'],
    ]);
    expect(inTheRegion.steps[0]!.compensatedAt?.site).toBe('region');
    expect(gateway.state.authorizations.find((authorization) => authorization.paymentId === request.paymentId)?.status).toBe('voided');

    // The edge's own record stops at the authorization: the region is further along, nothing conflicts.
    const result = await sync();
    expect(result.counts).toMatchObject({ conflicts: 0 });
    expect(result.byKind.step).toMatchObject({ identical: 1, conflicts: 0 });
    expect((await regionStores.stepLog.load(request.paymentId)).saga?.status).toBe('compensated');
  });

  it('compensates at the edge a step the region authorized, and the sync carries the compensation to the region', async () => {
    edge = await edgeDatabase();
    // Large, and from an account this edge site already counted ten payments for today: the rules decline it.
    const request = payment({ amountMinor: 150_000 });
    await edge.stores.counters.increment('seed-velocity', EDGE.id, [{ key: velocityKey(request.account), delta: 10 }]);
    const authorized = await inRegion(firstTask(payments, request));
    expect((await atEdge(authorized.next!)).next).toBeUndefined();

    const atTheEdge = await edge.stores.stepLog.load(request.paymentId);
    expect(atTheEdge.saga?.status).toBe('compensated');
    expect(atTheEdge.steps.map((step) => [step.step, step.status, step.ranAt?.site, step.compensatedAt?.site])).toEqual([
      ['authorize', 'compensated', 'region', 'edge-a'],
      ['fraud-score', 'failed', 'edge-a', undefined],
    ]);
    expect(atTheEdge.steps[1]!.error).toBe('PermanentError: payment declined: fraud score 105');
    expect(gateway.state.authorizations.find((authorization) => authorization.paymentId === request.paymentId)?.status).toBe('voided');

    const result = await sync();
    expect(result.counts.conflicts).toBe(0);
    const inTheRegion = await regionStores.stepLog.load(request.paymentId);
    expect(inTheRegion.saga?.status).toBe('compensated');
    expect(inTheRegion.steps.map((step) => [step.step, step.status, step.ranAt?.site, step.compensatedAt?.site])).toEqual(
      atTheEdge.steps.map((step) => [step.step, step.status, step.ranAt?.site, step.compensatedAt?.site]),
    );
  });

  it('refuses a later stage\'s task that carries no record of the steps before it at a site that never saw them', async () => {
    edge = await edgeDatabase();
    const request = payment();
    const authorized = await inRegion(firstTask(payments, request));
    const { trail: _, ...bare } = authorized.next!;
    const response = await createAgent(paymentsSaga, 'fraud-score', {
      site: EDGE,
      stores: edge.stores,
      settings,
      handOff: async () => {},
      escalate: async () => {},
    })(taskEvent([bare]), invocationContext('payments-fraud-score', 15));
    expect(response.batchItemFailures).toHaveLength(1);
    expect((await edge.stores.stepLog.load(request.paymentId)).saga).toBeUndefined();
  });
});
