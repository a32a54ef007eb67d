import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PermanentError, TransientError } from '../../functions/src/runtime/errors.js';
import { Ledger } from '../../functions/src/runtime/ledger.js';
import { type AgentDefinition, type SagaDefinition, type SagaRuntime, runStage } from '../../functions/src/runtime/saga.js';
import { REGION, edgeSite } from '../../functions/src/runtime/site.js';
import { DynamoDbLedger } from '../../functions/src/runtime/store/dynamodb-ledger.js';
import type { StepLogStore } from '../../functions/src/runtime/store/types.js';
import { type Task, stageTaskId } from '../../functions/src/runtime/task.js';
import type { WorkflowDefinition } from '../../functions/src/workflow-definition.js';
import { BACKENDS, type TestBackend, regionTables, testBackend } from './support/backends.js';

/**
 * The saga runner over each backend: the same steps, compensations and resumptions on the region's
 * DynamoDB tables and on an edge database (the ledger the steps post to is the region's in both).
 */

const stage = (name: string) => ({ name, entry: 'unused', maxReceiveCount: 3, timeoutSeconds: 10, memoryMb: 128, batchSize: 1, maxConcurrency: 2, runsAtEdge: true });
const workflow: WorkflowDefinition = { name: 'saga', stages: [stage('reserve'), stage('post'), stage('ship')] };
const policy = { timeoutMs: 1_000, retry: { attempts: 2, initialDelayMs: 1, maxDelayMs: 5 }, breaker: { consecutiveFailures: 50, halfOpenAfterMs: 1_000 } };

interface Input {
  readonly amountMinor: number;
}

/** What the steps did, in order, and switches to make them fail. */
let journal: string[];
let faults: { shipFails?: 'permanent'; postCrashesOnce?: boolean; reserveCompensationFailsOnce?: boolean };
let ledger: Ledger;

const agent = (name: string, extra: Partial<AgentDefinition<Input>> = {}): AgentDefinition<Input> => ({
  policy,
  escalateToHumanReview: false,
  alternatives: [{ name, run: async () => journal.push(`do ${name}`) }],
  compensate: async () => {
    journal.push(`undo ${name}`);
  },
  ...extra,
});

const saga: SagaDefinition<Input> = {
  workflow,
  parseInput: (input) => input as Input,
  agents: {
    reserve: agent('reserve', {
      compensate: async () => {
        if (faults.reserveCompensationFailsOnce) {
          faults.reserveCompensationFailsOnce = false;
          throw new Error('crashed while compensating');
        }
        journal.push('undo reserve');
      },
    }),
    post: agent('post', {
      alternatives: [
        {
          name: 'ledger',
          run: async ({ workflowId, input }) => {
            const written = await ledger.post(workflowId, { from: 'customer:c1', to: 'merchant:m1', money: { amountMinor: input.amountMinor, currency: 'EUR' }, memo: 'test' });
            journal.push(`do post (${written})`);
            if (faults.postCrashesOnce) {
              faults.postCrashesOnce = false;
              throw new Error('worker died after posting');
            }
            return written;
          },
        },
      ],
      compensate: async ({ workflowId }) => {
        journal.push(`undo post (${await ledger.reverse(workflowId, 'reversal')})`);
      },
    }),
    ship: agent('ship', {
      alternatives: [
        {
          name: 'carrier',
          run: async () => {
            if (faults.shipFails) throw new PermanentError('address rejected');
            journal.push('do ship');
          },
        },
      ],
      compensate: undefined,
    }),
  },
  settingsFromEnvironment: () => undefined,
};

let backend: TestBackend;
let stepLog: StepLogStore;
let handedOff: Task[];
const runtime = (): SagaRuntime => ({
  site: backend.name === 'sqlite' ? edgeSite('edge-test') : REGION,
  stores: backend.stores,
  settings: undefined,
  deadline: { remainingMs: () => 10_000 },
  handOff: async (task) => {
    handedOff.push(task);
  },
  escalate: async () => {
    throw new Error('no escalation in this saga');
  },
});

const task = (workflowId: string, stageName: string): Task => ({
  taskId: stageTaskId(workflowId, stageName),
  workflow: workflow.name,
  workflowId,
  stage: stageName,
  group: 'g1',
  input: { amountMinor: 1_250 },
});

/** Runs the workflow stage by stage, as the agents would after each hand-off. */
async function runAll(workflowId: string) {
  const outcomes = [];
  for (const [index, { name }] of workflow.stages.entries()) {
    const outcome = await runStage(saga, index, task(workflowId, name), runtime());
    outcomes.push(outcome);
    if (outcome.status !== 'completed') break;
  }
  return outcomes;
}

beforeAll(async () => {
  const region = await regionTables('rt-saga');
  ledger = new Ledger(new DynamoDbLedger(region.documents, region.tables.ledger));
});

beforeEach(() => {
  journal = [];
  faults = {};
  handedOff = [];
});

describe.each(BACKENDS)('sagas on %s', (backendName) => {
  beforeAll(async () => {
    backend = await testBackend(backendName);
    stepLog = backend.stores.stepLog;
  });
  afterAll(() => backend.close());

  it('runs the steps in order, handing each task to the next stage', async () => {
    const workflowId = `w-${randomUUID()}`;
    const outcomes = await runAll(workflowId);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['completed', 'completed', 'completed']);
    expect(journal).toEqual(['do reserve', 'do post (written)', 'do ship']);
    expect(handedOff.map((next) => next.taskId)).toEqual([`${workflowId}:post`, `${workflowId}:ship`]);
    const { saga: record, steps } = await stepLog.load(workflowId);
    expect(record?.status).toBe('completed');
    expect(steps.map((step) => [step.step, step.status, step.attempts])).toEqual([
      ['reserve', 'completed', 1],
      ['post', 'completed', 1],
      ['ship', 'completed', 1],
    ]);
  });

  it('compensates the completed steps in reverse order when a step fails for good, and the ledger balances', async () => {
    faults.shipFails = 'permanent';
    const workflowId = `w-${randomUUID()}`;
    const outcomes = await runAll(workflowId);
    expect(outcomes.at(-1)).toEqual({ status: 'compensated', failedStep: 'ship', error: 'PermanentError: address rejected' });
    expect(journal).toEqual(['do reserve', 'do post (written)', 'undo post (written)', 'undo reserve']);
    const { saga: record, steps } = await stepLog.load(workflowId);
    expect(record?.status).toBe('compensated');
    expect(steps.map((step) => [step.step, step.status])).toEqual([
      ['reserve', 'compensated'],
      ['post', 'compensated'],
      ['ship', 'failed'],
    ]);
    expect((await ledger.getPosting(`${workflowId}:reversal`))?.entries.map((entry) => [entry.account, entry.side])).toEqual([
      ['customer:c1', 'credit'],
      ['merchant:m1', 'debit'],
    ]);
    expect((await ledger.trialBalance()).balanced).toBe(true);

    // Delivered again after compensating: nothing runs twice.
    journal = [];
    expect(await runStage(saga, 2, task(workflowId, 'ship'), runtime())).toMatchObject({ status: 'compensated' });
    expect(journal).toEqual([]);
  });

  it('resumes a crashed step from the step log without redoing the steps before it', async () => {
    faults.postCrashesOnce = true;
    const workflowId = `w-${randomUUID()}`;
    await runStage(saga, 0, task(workflowId, 'reserve'), runtime());
    await expect(runStage(saga, 1, task(workflowId, 'post'), runtime())).rejects.toThrow('worker died after posting');
    expect((await stepLog.load(workflowId)).steps.map((step) => [step.step, step.status])).toEqual([
      ['reserve', 'completed'],
      ['post', 'started'],
    ]);

    // The message comes back: the step runs again; its ledger posting is idempotent.
    expect(await runStage(saga, 1, task(workflowId, 'post'), runtime())).toEqual({ status: 'completed', answeredBy: 'ledger' });
    expect(journal).toEqual(['do reserve', 'do post (written)', 'do post (already-posted)']);
    const post = (await stepLog.load(workflowId)).steps[1]!;
    expect([post.status, post.attempts]).toEqual(['completed', 2]);

    // A completed step delivered again is not run; its outcome is handed on again.
    expect(await runStage(saga, 1, task(workflowId, 'post'), runtime())).toEqual({ status: 'completed', answeredBy: 'ledger' });
    expect(journal).toHaveLength(3);
    expect(handedOff.map((next) => next.stage)).toEqual(['post', 'ship', 'ship']);
  });

  it('carries on an interrupted compensation where it stopped', async () => {
    faults.shipFails = 'permanent';
    faults.reserveCompensationFailsOnce = true;
    const workflowId = `w-${randomUUID()}`;
    await runStage(saga, 0, task(workflowId, 'reserve'), runtime());
    await runStage(saga, 1, task(workflowId, 'post'), runtime());
    await expect(runStage(saga, 2, task(workflowId, 'ship'), runtime())).rejects.toThrow('crashed while compensating');
    expect((await stepLog.load(workflowId)).saga?.status).toBe('compensating');

    expect(await runStage(saga, 2, task(workflowId, 'ship'), runtime())).toMatchObject({ status: 'compensated', failedStep: 'ship' });
    expect(journal).toEqual(['do reserve', 'do post (written)', 'undo post (written)', 'undo reserve']);
    const reserve = (await stepLog.load(workflowId)).steps[0]!;
    expect([reserve.status, reserve.compensationAttempts]).toEqual(['compensated', 2]);
  });

  it('leaves a transient failure to the queue: nothing is compensated', async () => {
    const flaky: SagaDefinition<Input> = {
      ...saga,
      agents: { ...saga.agents, post: agent('post', { alternatives: [{ name: 'ledger', run: async () => { throw new TransientError('ledger throttled'); } }] }) },
    };
    const workflowId = `w-${randomUUID()}`;
    await runStage(flaky, 0, task(workflowId, 'reserve'), runtime());
    await expect(runStage(flaky, 1, task(workflowId, 'post'), runtime())).rejects.toThrow('ledger throttled');
    const { saga: record, steps } = await stepLog.load(workflowId);
    expect(record?.status).toBe('running');
    expect(steps.map((step) => step.status)).toEqual(['completed', 'started']);
    expect(journal).toEqual(['do reserve']);
  });
});
