import { join } from 'node:path';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeGateway } from '../../functions/src/fake-gateway/server.js';
import { closeSiteDatabase, openSiteDatabase, siteStores } from '../../functions/src/runtime/store/site-database.js';
import { parseTask } from '../../functions/src/runtime/task.js';
import { ENV } from '../../functions/src/workflow-definition.js';
import {
  type AgentDown,
  type AgentUp,
  DEFAULT_WORKFLOW_MODULE,
  type LoadedWorkflow,
  loadWorkflowModule,
  type MessagesReturned,
  type RestartScheduled,
  resolveWorkflowQueues,
  Supervisor,
  type SupervisorOptions,
  type WorkflowQueues,
} from '../../edge-shim/src/fallback/index.js';
import { createWorkflowQueues } from '../../testkit/workflow-queues.js';
import { startTestShim, TEST_CREDENTIALS, type TestShim, testEngine } from '../helpers/shim.js';
import { waitForState } from '../helpers/wait.js';
import { ChoreControl } from './fixtures/chores/control.js';

/**
 * The fallback agents' supervisor, with real processes against a real shim over loopback: the
 * chores workflow (fixtures/chores), whose steps ask a control server what to do (succeed, crash,
 * hang, or be caught mid-task), and whose agents can be told to fail their start.
 */
const silent = pino({ level: process.env.TEST_LOG ?? 'silent' });
const PROCESS_TEST = { timeout: 90_000 };

let shim: TestShim;
/**
 * The test's own client, with the SDK's usual retries (the helper's client makes one attempt, for
 * protocol tests): it idles while agents work, and a keep-alive connection the shim closed in the
 * meantime is retried, as by any SDK client.
 */
let sqs: SQSClient;
let control: ChoreControl;
let chores: LoadedWorkflow;
let queues: WorkflowQueues;
let supervisor: Supervisor | undefined;
let events: { up: AgentUp[]; down: AgentDown[]; restarts: RestartScheduled[]; returned: MessagesReturned[]; stopping: string[]; standbys: string[] };

beforeEach(async () => {
  shim = await startTestShim();
  sqs = new SQSClient({ endpoint: shim.shim.url, region: 'us-east-1', credentials: TEST_CREDENTIALS });
  control = await ChoreControl.start();
  chores = await loadWorkflowModule('test/edge-shim/fixtures/chores/workflow.ts');
  await createWorkflowQueues(sqs, chores.workflow);
  queues = await resolveWorkflowQueues(sqs, chores.workflow);
});

afterEach(async () => {
  await supervisor?.stop();
  supervisor = undefined;
  await control.close();
  sqs.destroy();
  await shim.close();
});

/** The agents' database: a file next to the shim's; with the shim on PostgreSQL, its database, as the shim gives it to them there. */
const agentsDatabase = () => (testEngine() === 'postgres' ? shim.dbFile : join(shim.dir, 'edge-agents.db'));

function startSupervisor(overrides: Partial<SupervisorOptions> = {}, start = true): Supervisor {
  supervisor = new Supervisor({
    workflow: chores.workflow,
    entryRoot: chores.entryRoot,
    siteId: 'edge-t',
    database: agentsDatabase(),
    shim: { endpoint: shim.shim.url, region: 'us-east-1', credentials: TEST_CREDENTIALS },
    queues: queues.queues,
    humanReviewQueueUrl: queues.humanReviewQueueUrl,
    environment: { CHORES_CONTROL_URL: control.url, POWERTOOLS_LOG_LEVEL: 'CRITICAL' },
    heartbeatIntervalMs: 200,
    // A standby is a second process per stage: only the test of a takeover has one.
    warmStandby: false,
    logger: silent,
    agentLogLevel: 'silent',
    ...overrides,
  });
  events = { up: [], down: [], restarts: [], returned: [], stopping: [], standbys: [] };
  supervisor.on('agent-up', (event) => events.up.push(event));
  supervisor.on('agent-down', (event) => events.down.push(event));
  supervisor.on('restart', (event) => events.restarts.push(event));
  supervisor.on('messages-returned', (event) => events.returned.push(event));
  supervisor.on('agent-stopping', (event) => events.stopping.push(event.stage));
  supervisor.on('standby-ready', (event) => events.standbys.push(event.stage));
  if (start) supervisor.start();
  return supervisor;
}

/** Sends chores to the first stage in one request, so that a waiting agent receives them in one batch. */
async function sendChores(workflowIds: readonly string[], group?: string): Promise<void> {
  const tasks = workflowIds.map((workflowId) => ({ taskId: `${workflowId}:prepare`, workflow: 'chores', workflowId, stage: 'prepare', group: group ?? workflowId, input: {} }));
  const { Failed = [] } = await sqs.send(
    new SendMessageBatchCommand({
      QueueUrl: queues.queues.prepare!.queueUrl,
      Entries: tasks.map((task, index) => ({ Id: String(index), MessageBody: JSON.stringify(task), MessageGroupId: task.group, MessageDeduplicationId: task.taskId })),
    }),
  );
  expect(Failed).toEqual([]);
}

async function counts(stage: string) {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queues.queues[stage]!.queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
  );
  return { visible: Number(Attributes!.ApproximateNumberOfMessages), inFlight: Number(Attributes!.ApproximateNumberOfMessagesNotVisible) };
}

/** The tasks waiting on a stage's queue, in order (each received once, then left in flight). */
async function receiveTasks(stage: string) {
  const tasks = [];
  for (;;) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queues.queues[stage]!.queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 600 }));
    if (Messages.length === 0) return tasks;
    tasks.push(...Messages.map((message) => parseTask(message.Body!)));
  }
}

const agent = (stage: string) => supervisor!.status().find((status) => status.stage === stage)!;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits for the `nth` (1-based) agent-up of a stage. */
const up = (stage: string, nth: number) =>
  waitForState(() => {
    const found = events.up.filter((event) => event.stage === stage)[nth - 1];
    if (!found) throw new Error(`agent ${stage} not up ${nth} times yet`);
    return found;
  });

describe('fallback agents under the supervisor', () => {
  it('runs each edge stage in a process of its own and hands tasks on; a stage that needs the region never runs', PROCESS_TEST, async () => {
    startSupervisor();
    await supervisor!.running();
    const status = supervisor!.status();
    expect(status.map((entry) => [entry.stage, entry.state, entry.restarts])).toEqual([
      ['prepare', 'running', 0],
      ['deliver', 'running', 0],
    ]);
    const pids = status.map((entry) => entry.pid!);
    expect(new Set([...pids, process.pid]).size).toBe(3);
    expect(pids.every(isAlive)).toBe(true);

    await sendChores(['c1', 'c2', 'c3']);
    await waitForState(async () => expect(await counts('settle')).toEqual({ visible: 3, inFlight: 0 }));
    await waitForState(() => expect([agent('prepare').tasksDone, agent('deliver').tasksDone]).toEqual([3, 3]));

    for (const id of ['c1', 'c2', 'c3']) {
      expect([control.effects.get(`${id}:prepare`), control.effects.get(`${id}:deliver`)]).toEqual([1, 1]);
    }
    expect(control.starts.get('settle')).toBeUndefined();
    const settle = await receiveTasks('settle');
    expect(settle.map((task) => task.taskId).sort()).toEqual(['c1:settle', 'c2:settle', 'c3:settle']);
    expect(settle[0]!.trail?.map((step) => [step.step, step.ranAt?.site, step.ranAt?.atEdge])).toEqual([
      ['prepare', 'edge-t', true],
      ['deliver', 'edge-t', true],
    ]);
    expect(agent('prepare').lastHeartbeatAt).not.toBeNull();
  });

  it('restarts an agent killed with SIGKILL mid-task from its warm standby; the task is neither lost nor done twice', PROCESS_TEST, async () => {
    // One batch of two tasks of one group: `a` completes, then the agent dies in the middle of `b`.
    control.plan('b:prepare', 'hold');
    startSupervisor({ warmStandby: true });
    await supervisor!.running();
    await waitForState(() => expect(events.standbys).toContain('prepare'));
    await sendChores(['a', 'b'], 'g');
    await waitForState(() => expect([control.effects.get('a:prepare'), control.isHolding('b:prepare')]).toEqual([1, true]));

    const { pid } = agent('prepare');
    process.kill(pid!, 'SIGKILL');
    const back = await up('prepare', 2);

    expect(back).toMatchObject({ stage: 'prepare', restart: true, fromStandby: true });
    expect(back.pid).not.toBe(pid);
    expect(events.restarts).toEqual([{ stage: 'prepare', reason: 'killed by SIGKILL', restarts: 1, consecutiveFailures: 1, delayMs: 0 }]);
    expect(agent('prepare')).toMatchObject({ restarts: 1, lastRestartReason: 'killed by SIGKILL' });
    // Both held messages come back when the dead invocation's in-progress records expire: within the stage timeout.
    await waitForState(() => expect(events.returned).toHaveLength(1));
    expect(events.returned[0]!.count).toBe(2);
    expect(events.returned[0]!.visibleInSeconds).toBeLessThanOrEqual(chores.workflow.stages[0]!.timeoutSeconds);

    await waitForState(async () => expect(await counts('settle')).toEqual({ visible: 2, inFlight: 0 }));
    // `a` was not run again (its stored result answered), `b` ran again and took effect once.
    expect([control.calls.get('a:prepare'), control.effects.get('a:prepare')]).toEqual([1, 1]);
    expect([control.calls.get('b:prepare'), control.effects.get('b:prepare')]).toEqual([2, 1]);
    expect([control.effects.get('a:deliver'), control.effects.get('b:deliver')]).toEqual([1, 1]);
    expect((await receiveTasks('settle')).map((task) => task.taskId)).toEqual(['a:settle', 'b:settle']);
    expect(await counts('prepare')).toEqual({ visible: 0, inFlight: 0 });
  });

  it('kills an agent that stops heartbeating and starts a new one', PROCESS_TEST, async () => {
    startSupervisor({ hangTimeoutMs: 2_000 });
    await supervisor!.running();
    const { pid } = agent('prepare');
    // A stopped process is alive but silent, like one stuck in a tight loop or a dead lock.
    process.kill(pid!, 'SIGSTOP');
    expect(await up('prepare', 2)).toMatchObject({ restart: true, fromStandby: false });

    expect(events.restarts).toHaveLength(1);
    expect(events.restarts[0]!.reason).toMatch(/^hung: no heartbeat for \d+\.\d s$/);
    expect(agent('prepare').lastRestartReason).toBe(events.restarts[0]!.reason);
    await waitForState(() => expect(isAlive(pid!)).toBe(false));
    await sendChores(['after-hang']);
    await waitForState(async () => expect((await counts('settle')).visible).toBe(1));
  });

  it('kills and restarts an agent whose handler runs past the stage timeout, and the task is done once after', PROCESS_TEST, async () => {
    control.plan('h:prepare', 'hang');
    startSupervisor();
    await sendChores(['h']);
    await up('prepare', 2);

    expect(events.restarts.map((event) => [event.stage, event.reason])).toEqual([['prepare', "a handler ran past the stage's 5 s timeout"]]);
    await waitForState(async () => expect(await counts('settle')).toEqual({ visible: 1, inFlight: 0 }));
    expect([control.calls.get('h:prepare'), control.effects.get('h:prepare')]).toEqual([2, 1]);
  });

  it('backs off in a crash loop, reports it, and restarts at once again after a stable run', PROCESS_TEST, async () => {
    control.failStarts('prepare', 4);
    // Without a standby (as here) every restart is a new process, which fails its start while told to.
    startSupervisor({ restartDelayMs: 200, stableRunMs: 0 });
    await supervisor!.running();

    const loop = events.restarts.filter((event) => event.stage === 'prepare');
    expect(loop.map((event) => [event.restarts, event.consecutiveFailures, event.delayMs])).toEqual([
      [1, 1, 0],
      [2, 2, 200],
      [3, 3, 400],
      [4, 4, 800],
    ]);
    for (const event of loop) expect(event.reason).toBe('could not start: Error: the prepare agent was told to fail at start');
    expect(agent('prepare')).toMatchObject({ state: 'running', restarts: 4, lastRestartReason: loop[3]!.reason });
    expect(agent('deliver').restarts).toBe(0);

    // It ran (stableRunMs 0: any run is stable), so the next death is restarted at once again.
    process.kill(agent('prepare').pid!, 'SIGKILL');
    await up('prepare', 2);
    expect(events.restarts.at(-1)).toMatchObject({ restarts: 5, consecutiveFailures: 1, delayMs: 0, reason: 'killed by SIGKILL' });
  });

  it('takes the times it reports from the clock it is given', PROCESS_TEST, async () => {
    const now = Date.parse('2030-01-02T03:04:05.000Z');
    startSupervisor({ clock: () => now });
    await supervisor!.running();
    process.kill(agent('prepare').pid!, 'SIGKILL');

    // The clock stands still: no downtime, and no agent is ever hung or late to start.
    expect(await up('prepare', 2)).toMatchObject({ restart: true, downtimeMs: 0 });
    expect(agent('prepare')).toMatchObject({ restarts: 1, lastRestartAt: '2030-01-02T03:04:05.000Z', lastHeartbeatAt: '2030-01-02T03:04:05.000Z' });
  });

  it('stop() lets an agent finish the task it is doing and gives back at once what it had not started', PROCESS_TEST, async () => {
    control.plan('a:prepare', 'hold');
    startSupervisor();
    await supervisor!.running();
    await sendChores(['a', 'b'], 'g');
    await waitForState(() => expect(control.isHolding('a:prepare')).toBe(true));

    const stopped = supervisor!.stop();
    await waitForState(() => expect(events.stopping).toContain('prepare'));
    control.release('a:prepare');
    await stopped;

    expect(supervisor!.status().map((entry) => [entry.stage, entry.state, entry.pid])).toEqual([
      ['prepare', 'stopped', null],
      ['deliver', 'stopped', null],
    ]);
    expect(events.down.filter((event) => !event.stopped || event.reason !== 'stopped')).toEqual([]);
    // `a` finished and went on to the next queue; `b` was never started and is visible again now.
    expect(control.effects.get('a:prepare')).toBe(1);
    expect(control.calls.get('b:prepare')).toBeUndefined();
    expect(await counts('deliver')).toEqual({ visible: 1, inFlight: 0 });
    expect(await counts('prepare')).toEqual({ visible: 1, inFlight: 0 });
    expect(events.returned).toEqual([{ stage: 'prepare', count: 1, visibleInSeconds: 0 }]);
    expect((await receiveTasks('prepare')).map((task) => task.taskId)).toEqual(['b:prepare']);
  });

  it('stop() kills an agent still busy after the grace and gives back everything it held at once', PROCESS_TEST, async () => {
    control.plan('a:prepare', 'hang');
    // A grace well inside the stage's 5 s timeout: the grace, not the runner's timeout, ends it.
    startSupervisor({ stopGraceMs: 500 });
    await supervisor!.running();
    await sendChores(['a', 'b'], 'g');
    await waitForState(() => expect(control.calls.get('a:prepare')).toBe(1));
    const { pid } = agent('prepare');

    await supervisor!.stop();

    expect(events.down.find((event) => event.stage === 'prepare')).toEqual({ stage: 'prepare', pid, reason: 'still running 0.5 s after it was told to stop', stopped: true });
    // The idle deliver agent stops as well (on a busy machine it may take longer than this short grace, and be killed).
    expect(events.down.find((event) => event.stage === 'deliver')).toMatchObject({ stopped: true });
    expect(isAlive(pid!)).toBe(false);
    expect(events.restarts).toEqual([]);
    expect(await counts('prepare')).toEqual({ visible: 2, inFlight: 0 });
    expect((await receiveTasks('prepare')).map((task) => task.taskId)).toEqual(['a:prepare', 'b:prepare']);
  });

  it('readies standbys ahead of an outage: start() puts them to work without starting a process, and stop() ends those never used', PROCESS_TEST, async () => {
    startSupervisor({ warmStandby: true }, false);
    const readied: number[] = [];
    supervisor!.on('standby-ready', (event) => readied.push(event.pid!));
    const stages = supervisor!.status().length;
    supervisor!.prepare();
    await waitForState(() => expect(readied).toHaveLength(stages));
    const prepared = [...readied];

    supervisor!.start();
    await supervisor!.running();
    expect(events.up.map((event) => [event.pid, event.fromStandby]).sort()).toEqual(prepared.map((pid) => [pid, true]).sort());
    await sendChores(['ready-at-once']);
    await waitForState(async () => expect((await counts('settle')).visible).toBe(1));
    await supervisor!.stop();

    // Readied again for the next outage; a stop before it comes ends them.
    const before = readied.length;
    supervisor!.prepare();
    await waitForState(() => expect(readied.length).toBe(before + stages));
    await supervisor!.stop();
    expect(readied.slice(before).filter(isAlive)).toEqual([]);
  });

  it('can run again after a stop, as for a second outage', PROCESS_TEST, async () => {
    startSupervisor();
    await supervisor!.running();
    await supervisor!.stop();
    await expect(supervisor!.running()).rejects.toThrow('the fallback agents are not running');

    supervisor!.start();
    await supervisor!.running();
    await sendChores(['second-outage']);
    await waitForState(async () => expect((await counts('settle')).visible).toBe(1));
  });
});

describe('the payments workflow, by default', () => {
  it('authorizes and scores a payment at the edge and leaves its ledger task for the region', PROCESS_TEST, async () => {
    const gateway = await startFakeGateway();
    try {
      const payments = await loadWorkflowModule(DEFAULT_WORKFLOW_MODULE);
      await createWorkflowQueues(sqs, payments.workflow);
      const paymentQueues = await resolveWorkflowQueues(sqs, payments.workflow);
      startSupervisor({
        workflow: payments.workflow,
        entryRoot: payments.entryRoot,
        queues: paymentQueues.queues,
        humanReviewQueueUrl: paymentQueues.humanReviewQueueUrl,
        environment: { [ENV.gatewayUrl]: gateway.url, [ENV.notifierUrl]: gateway.url, POWERTOOLS_LOG_LEVEL: 'CRITICAL' },
      });
      await supervisor!.running();
      expect(supervisor!.status().map((entry) => entry.stage)).toEqual(['authorize', 'fraud-score', 'notify']);

      const input = { paymentId: 'pay-edge-1', account: 'acct-1', merchant: 'shop-1', amountMinor: 5_000, currency: 'EUR' };
      const task = { taskId: 'pay-edge-1:authorize', workflow: 'payments', workflowId: input.paymentId, stage: 'authorize', group: input.account, input };
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: paymentQueues.queues.authorize!.queueUrl,
          Entries: [{ Id: '0', MessageBody: JSON.stringify(task), MessageGroupId: task.group, MessageDeduplicationId: task.taskId }],
        }),
      );
      const ledger = await waitForState(async () => {
        const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: paymentQueues.queues.ledger!.queueUrl, VisibilityTimeout: 600 }));
        if (Messages.length === 0) throw new Error('no ledger task yet');
        return parseTask(Messages[0]!.Body!);
      });
      expect(ledger.taskId).toBe('pay-edge-1:ledger');
      expect(ledger.trail?.map((step) => [step.step, step.outcome.answeredBy, step.ranAt?.site])).toEqual([
        ['authorize', 'gateway', 'edge-t'],
        ['fraud-score', 'rules', 'edge-t'],
      ]);
      expect(gateway.state.authorizations.map((authorization) => authorization.paymentId)).toEqual(['pay-edge-1']);
      // Recorded in the database the supervisor was given.
      const database = await openSiteDatabase(agentsDatabase());
      try {
        expect((await siteStores(database).stepLog.load('pay-edge-1')).steps.map((step) => [step.step, step.status])).toEqual([
          ['authorize', 'completed'],
          ['fraud-score', 'completed'],
        ]);
      } finally {
        await closeSiteDatabase(database);
      }
    } finally {
      await supervisor?.stop();
      await gateway.close();
    }
  });
});
