import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { edgeAgentEnvironment } from '../../functions/src/edge/environment.js';
import { type LocalRunner, startLocalRunner } from '../../functions/src/event-source/runner.js';
import { type FakeGateway, startFakeGateway } from '../../functions/src/fake-gateway/server.js';
import { createAgent } from '../../functions/src/runtime/agent.js';
import type { FallbackOutcome } from '../../functions/src/runtime/fallback.js';
import { isPostgresDatabase } from '../../functions/src/runtime/store/site-database.js';
import type { SagaStatus } from '../../functions/src/runtime/store/types.js';
import { type Task, parseTask, stageTaskId } from '../../functions/src/runtime/task.js';
import {
  accountExposureKey,
  EDGE_LIMIT_DEFAULTS,
  type EdgeLimits,
  edgeLimitsFromEnvironment,
  paymentsSaga,
  siteExposureKey,
  velocityKey,
} from '../../functions/src/workflows/payments-saga.js';
import { payments } from '../../functions/src/workflows/payments.js';
import { ENV, type WorkflowDefinition } from '../../functions/src/workflow-definition.js';
import { Settled, waitForState } from '../helpers/wait.js';
import { EDGE_ENGINES } from './support/backends.js';
import { depth, drain, type EdgeSite, firstTask, sendTask, startEdgeSite } from './support/edge-site.js';
import { invocationContext } from './support/runtime.js';

/**
 * The payments agents in degraded mode: at an edge site, on its database (an SQLite file, or
 * PostgreSQL: each test runs on both) and the shim's queues, while the region is gone. Low-risk payments within the limits are authorized there;
 * everything else goes to human review; fraud scoring uses its rules alone; the ledger never runs
 * there, and nothing that needs it is undone there.
 */
const EDGE_STAGES: WorkflowDefinition = { ...payments, stages: payments.stages.filter((stage) => stage.runsAtEdge) };
const silent = pino({ level: 'silent' });
const savedEnvironment = { ...process.env };

let gateway: FakeGateway;
let site: EdgeSite;
const runners: LocalRunner[] = [];

beforeAll(async () => {
  gateway = await startFakeGateway();
});
afterAll(async () => {
  await gateway.close();
});
afterEach(async () => {
  await Promise.all(runners.splice(0).map((runner) => runner.stop()));
  await site.close();
  process.env = { ...savedEnvironment };
  Object.assign(gateway.faults, { latencyMs: 0, failNext: 0, failStatus: 503, down: false });
});

const settings = (limits: Partial<EdgeLimits> = {}) => ({ edgeLimits: { ...EDGE_LIMIT_DEFAULTS, ...limits } });

/** The edge stages as the shim runs them, here in process with explicit dependencies (the limits among them). */
async function runEdgeAgents(limits: Partial<EdgeLimits> = {}): Promise<LocalRunner> {
  const handlers = Object.fromEntries(
    EDGE_STAGES.stages.map((stage) => [stage.name, createAgent(paymentsSaga, stage.name, site.dependencies(payments, stage.name, settings(limits)))]),
  );
  const runner = await startLocalRunner({ workflow: EDGE_STAGES, aws: site.aws, queues: site.queues, handlers, waitTimeSeconds: 1, logger: silent });
  runners.push(runner);
  return runner;
}

function payment(overrides: Partial<{ account: string; amountMinor: number }> = {}) {
  return { paymentId: `pay-${randomUUID()}`, account: `acct-${randomUUID().slice(0, 8)}`, merchant: 'shop-1', amountMinor: 5_000, currency: 'EUR', ...overrides };
}

async function submit(request: ReturnType<typeof payment>): Promise<void> {
  await sendTask(site.shim.sqs, site.queues.authorize!.queueUrl, firstTask(payments, request));
}

/** Waits for the saga to reach `status` in the edge database; another final status fails at once. */
function settled(paymentId: string, status: SagaStatus) {
  const { stepLog } = site.database.stores;
  return waitForState(async () => {
    const log = await stepLog.load(paymentId);
    if (log.saga && log.saga.status !== status && log.saga.status !== 'running' && log.saga.status !== 'compensating') {
      throw new Settled(`saga ${paymentId} ended ${log.saga.status}, not ${status}`);
    }
    if (log.saga?.status !== status) throw new Error(`saga ${paymentId} is ${log.saga?.status ?? 'not started'}`);
    return log;
  });
}

/** Waits until the fraud-score step is done: at the edge the saga then waits for the ledger, in the region. */
function scored(paymentId: string) {
  const { stepLog } = site.database.stores;
  return waitForState(async () => {
    const log = await stepLog.load(paymentId);
    if (log.saga?.status === 'escalated' || log.saga?.status === 'compensated') throw new Settled(`saga ${paymentId} ended ${log.saga.status}`);
    if (log.steps[1]?.status !== 'completed') throw new Error('not scored yet');
    return log;
  });
}

async function humanReview(): Promise<(Task & { reason: string })[]> {
  return (await drain(site.shim.sqs, site.humanReviewQueueUrl)).map((message) => JSON.parse(message.Body!));
}

const outcome = (result: unknown) => result as FallbackOutcome;
const counters = () => site.database.stores.counters;

/** The idempotency records the agents wrote into the site's database. */
async function idempotencyIds(): Promise<string[]> {
  const { db } = site.database;
  const select = 'SELECT id FROM idempotency ORDER BY id';
  return (isPostgresDatabase(db) ? (await db.query<{ id: string }>(select)).rows : db.prepare<[], { id: string }>(select).all()).map((row) => row.id);
}

describe.each(EDGE_ENGINES)('payments at an edge site (%s)', (engine) => {
  beforeEach(async () => {
    Object.assign(process.env, { [ENV.gatewayUrl]: gateway.url, [ENV.notifierUrl]: gateway.url, POWERTOOLS_LOG_LEVEL: 'CRITICAL' });
    site = await startEdgeSite(payments, engine);
  });

  it('authorizes a low-risk payment within the limits, scores it by the rules alone, and leaves the ledger task for the region', async () => {
    await runEdgeAgents();
    const request = payment();
    await submit(request);
    const { saga, steps } = await scored(request.paymentId);

    expect(saga?.status).toBe('running');
    expect(steps.map((step) => [step.step, step.status, outcome(step.result).answeredBy, step.ranAt?.site, step.ranAt?.atEdge])).toEqual([
      ['authorize', 'completed', 'gateway', 'edge-a', true],
      ['fraud-score', 'completed', 'rules', 'edge-a', true],
    ]);
    expect(outcome(steps[1]!.result).skipped).toEqual([{ name: 'fraud-service', reason: 'needs the region; running at edge site edge-a' }]);
    expect(gateway.state.authorizations.filter((authorization) => authorization.paymentId === request.paymentId)).toHaveLength(1);
    expect(gateway.state.requests['POST /fraud-scores']).toBeUndefined();

    // Reserved once, durably, in this site's counts; the velocity counts the payment once.
    expect(await counters().read(accountExposureKey(request.account, 'EUR'))).toEqual({ 'edge-a': 5_000 });
    expect((await counters().read(siteExposureKey('edge-a', 'EUR')))['edge-a']).toBe(5_000);
    expect(await counters().read(velocityKey(request.account))).toEqual({ 'edge-a': 1 });

    // The ledger's task waits at the shim, carrying what the region needs to go on.
    await waitForState(async () => expect(await depth(site.shim.sqs, site.queues.ledger!.queueUrl)).toBe(1));
    const [ledgerTask] = (await drain(site.shim.sqs, site.queues.ledger!.queueUrl)).map((message) => parseTask(message.Body!));
    expect(ledgerTask!.taskId).toBe(stageTaskId(request.paymentId, 'ledger'));
    expect(ledgerTask!.trail?.map((carried) => [carried.step, carried.outcome.answeredBy, carried.ranAt?.site])).toEqual([
      ['authorize', 'gateway', 'edge-a'],
      ['fraud-score', 'rules', 'edge-a'],
    ]);
  });

  it('sends a payment above the per-payment limit to human review without calling the gateway', async () => {
    await runEdgeAgents();
    const request = payment({ amountMinor: EDGE_LIMIT_DEFAULTS.paymentMinor + 1 });
    await submit(request);
    const { steps } = await settled(request.paymentId, 'escalated');

    expect(outcome(steps[0]!.result)).toMatchObject({ answeredBy: 'human-review', skipped: [{ name: 'admission', reason: expect.stringContaining('above the edge limit') }] });
    expect(gateway.state.authorizations.filter((authorization) => authorization.paymentId === request.paymentId)).toEqual([]);
    expect((await humanReview()).map((task) => [task.workflowId, task.stage])).toEqual([[request.paymentId, 'authorize']]);
    expect(await counters().read(accountExposureKey(request.account, 'EUR'))).toEqual({});
  });

  it('sends a payment that is not low-risk by the rules (a busy account) to human review', async () => {
    const request = payment();
    // Ten payments of the account already scored at this site today.
    await counters().increment('seed-velocity', 'edge-a', [{ key: velocityKey(request.account), delta: 10 }]);
    await runEdgeAgents();
    await submit(request);
    const { steps } = await settled(request.paymentId, 'escalated');

    expect(outcome(steps[0]!.result).skipped[0]!.reason).toBe('not low-risk enough to authorize at the edge: rules score 55');
    expect((await humanReview()).map((task) => task.reason)).toEqual(['not low-risk enough to authorize at the edge: rules score 55']);
  });

  it("stops authorizing an account at its offline exposure limit, and remembers what it authorized across a restart", async () => {
    const limits = { accountExposureMinor: 10_000 };
    const account = `acct-${randomUUID().slice(0, 8)}`;
    const first = [payment({ account, amountMinor: 4_000 }), payment({ account, amountMinor: 4_000 }), payment({ account, amountMinor: 4_000 })];
    const runner = await runEdgeAgents(limits);
    for (const request of first) await submit(request);
    await scored(first[0]!.paymentId);
    await scored(first[1]!.paymentId);
    const refused = await settled(first[2]!.paymentId, 'escalated');
    expect(outcome(refused.steps[0]!.result).skipped[0]!.reason).toMatch(/^offline exposure limit reached at edge site edge-a/);

    // The agents stop and come back (a restart of their processes): the 8 000 authorized stay counted.
    await runner.stop();
    runners.pop();
    await site.database.reopen();
    await runEdgeAgents(limits);
    const afterRestart = [payment({ account, amountMinor: 4_000 }), payment({ account, amountMinor: 2_000 })];
    for (const request of afterRestart) await submit(request);
    await settled(afterRestart[0]!.paymentId, 'escalated');
    await scored(afterRestart[1]!.paymentId);
    expect(await counters().read(accountExposureKey(account, 'EUR'))).toEqual({ 'edge-a': 10_000 });
  });

  it('stops authorizing at the edge site\'s own exposure limit, whatever the account', async () => {
    await runEdgeAgents({ siteExposureMinor: 6_000 });
    const accepted = payment({ amountMinor: 4_000 });
    const refused = payment({ amountMinor: 4_000 });
    await submit(accepted);
    await scored(accepted.paymentId);
    await submit(refused);
    await settled(refused.paymentId, 'escalated');
    expect(await counters().read(siteExposureKey('edge-a', 'EUR'))).toEqual({ 'edge-a': 4_000 });
  });

  it('reads the limits from the environment and refuses values that are not whole minor units', () => {
    expect(edgeLimitsFromEnvironment({})).toEqual(EDGE_LIMIT_DEFAULTS);
    expect(edgeLimitsFromEnvironment({ [ENV.edgePaymentLimitMinor]: '2500' }).paymentMinor).toBe(2_500);
    expect(() => edgeLimitsFromEnvironment({ [ENV.edgePaymentLimitMinor]: '25.00' })).toThrow(
      'HOLDFAST_EDGE_PAYMENT_LIMIT_MINOR must be a whole number of minor units, got "25.00"',
    );
    // What an agent built from the environment is given, once, with its other dependencies.
    expect(paymentsSaga.settingsFromEnvironment({ [ENV.edgeSiteExposureMinor]: '6000' })).toEqual(settings({ siteExposureMinor: 6_000 }));
  });

  it('escalates, and does not compensate, a notification refused for good at the edge: undoing the ledger posting needs the region', async () => {
    // A payment the region authorized, scored and posted before it went dark; its notify task reached the edge.
    const request = payment();
    const ranAt = { site: 'region', atEdge: false, at: new Date().toISOString() };
    const trail = [
      { step: 'authorize', index: 0, outcome: { answeredBy: 'gateway', value: { authorizationId: 'auth-region-1' }, skipped: [] }, ranAt },
      { step: 'fraud-score', index: 1, outcome: { answeredBy: 'fraud-service', value: { score: 12 }, skipped: [] }, ranAt },
      { step: 'ledger', index: 2, outcome: { answeredBy: 'ledger', value: { postingId: request.paymentId, written: 'written' }, skipped: [] }, ranAt },
    ];
    const task: Task = { ...firstTask(payments, request), taskId: stageTaskId(request.paymentId, 'notify'), stage: 'notify', trail };
    Object.assign(gateway.faults, { failNext: 1, failStatus: 400 });
    await runEdgeAgents();
    await sendTask(site.shim.sqs, site.queues.notify!.queueUrl, task);
    const { steps } = await settled(request.paymentId, 'escalated');

    expect(steps.map((step) => [step.step, step.status, step.ranAt?.site])).toEqual([
      ['authorize', 'completed', 'region'],
      ['fraud-score', 'completed', 'region'],
      ['ledger', 'completed', 'region'],
      ['notify', 'failed', 'edge-a'],
    ]);
    const [escalated] = await humanReview();
    expect(escalated!.taskId).toBe(task.taskId);
    expect(escalated!.reason).toMatch(/^step notify failed for good at edge site edge-a \(HttpStatusError: notifier answered HTTP 400.*\); undoing ledger needs the region$/);
    expect(gateway.state.requests['POST /authorizations/{id}/void']).toBeUndefined();
  });

  it('never runs the ledger at the edge', async () => {
    const ledger = createAgent(paymentsSaga, 'ledger', site.dependencies(payments, 'ledger', settings()));
    await expect(ledger({ Records: [] }, invocationContext('payments-ledger', 15))).rejects.toThrow(
      'stage ledger of payments does not run at the edge (runsAtEdge: false); its tasks wait for the region',
    );
    expect(() =>
      edgeAgentEnvironment({ workflow: payments, stage: 'ledger', siteId: 'edge-a', database: site.database.location, queueUrls: {}, humanReviewQueueUrl: site.humanReviewQueueUrl }),
    ).toThrow('stage ledger of payments does not run at the edge');
  });

  it("runs each edge stage from its entry, as the shim will, with the environment edgeAgentEnvironment builds: its records go to the site's database", async () => {
    const queueUrls = Object.fromEntries(Object.entries(site.queues).map(([name, queues]) => [name, queues.queueUrl]));
    for (const stage of EDGE_STAGES.stages) {
      const environment = {
        ...edgeAgentEnvironment({ workflow: payments, stage: stage.name, siteId: 'edge-a', database: site.database.location, queueUrls, humanReviewQueueUrl: site.humanReviewQueueUrl }),
        [ENV.gatewayUrl]: gateway.url,
        [ENV.notifierUrl]: gateway.url,
        POWERTOOLS_LOG_LEVEL: 'CRITICAL',
      };
      // One runner per stage, as one child process per fallback agent: its workflow is that stage alone.
      runners.push(
        await startLocalRunner({
          workflow: { ...payments, stages: [stage] },
          aws: site.aws,
          queues: { [stage.name]: site.queues[stage.name]! },
          environment,
          waitTimeSeconds: 1,
          logger: silent,
        }),
      );
    }
    const request = payment();
    await submit(request);
    const { steps } = await scored(request.paymentId);
    expect(steps.map((step) => [step.step, outcome(step.result).answeredBy, step.ranAt?.site])).toEqual([
      ['authorize', 'gateway', 'edge-a'],
      ['fraud-score', 'rules', 'edge-a'],
    ]);
    // Each stage's run of the task is recorded once, under its stage's key prefix.
    expect((await idempotencyIds()).map((id) => id.split('#')[0])).toEqual(['payments.authorize', 'payments.fraud-score']);
    await waitForState(async () => expect(await depth(site.shim.sqs, site.queues.ledger!.queueUrl)).toBe(1));
  });
});
