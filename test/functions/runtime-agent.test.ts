import { randomUUID } from 'node:crypto';
import { DeleteMessageCommand, GetQueueAttributesCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { type WorkflowResources, createWorkflowResources, resourceEnvironment } from '../../functions/src/local-pipeline/resources.js';
import { createAgent } from '../../functions/src/runtime/agent.js';
import type { SagaDefinition } from '../../functions/src/runtime/saga.js';
import { type Task, stageTaskId } from '../../functions/src/runtime/task.js';
import { ENV, type WorkflowDefinition } from '../../functions/src/workflow-definition.js';
import { emulator } from '../helpers/emulator.js';
import { waitForState } from '../helpers/wait.js';
import { invocationContext, receiveEvent, useEmulatorInProcess } from './support/runtime.js';

const stage = (name: string) => ({ name, entry: 'unused', maxReceiveCount: 3, timeoutSeconds: 10, memoryMb: 128, batchSize: 10, maxConcurrency: 2, runsAtEdge: false });
const workflow: WorkflowDefinition = { name: 'agents', stages: [stage('charge'), stage('receipt')] };
const policy = { timeoutMs: 1_000, retry: { attempts: 2, initialDelayMs: 1, maxDelayMs: 5 }, breaker: { consecutiveFailures: 50, halfOpenAfterMs: 1_000 } };

interface Input {
  readonly amountMinor: number;
  readonly failWith?: 'bug';
}

let charges: string[];

/** Holds a charge inside the card call until opened. */
function openGate() {
  let enter!: () => void;
  let open!: () => void;
  const entered = new Promise<void>((resolve) => (enter = resolve));
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { enter, entered, open, opened };
}
let gate: ReturnType<typeof openGate> | undefined;
const saga: SagaDefinition<Input> = {
  workflow,
  parseInput: (input) => input as Input,
  agents: {
    charge: {
      policy,
      escalateToHumanReview: false,
      alternatives: [
        {
          name: 'card',
          run: async ({ workflowId, input }) => {
            if (input.failWith === 'bug') throw new TypeError('cannot read properties of undefined');
            if (gate) {
              gate.enter();
              await gate.opened;
            }
            charges.push(workflowId);
            return { charged: input.amountMinor };
          },
        },
      ],
    },
    receipt: { policy, escalateToHumanReview: false, alternatives: [{ name: 'printer', run: async () => 'printed' }] },
  },
  settingsFromEnvironment: () => undefined,
};
const handler = createAgent(saga, 'charge');

let sqs: SQSClient;
let resources: WorkflowResources;
const chargeQueue = () => resources.queues.charge!.queueUrl;

const task = (workflowId: string, group: string, input: Input): Task => ({
  taskId: stageTaskId(workflowId, 'charge'),
  workflow: workflow.name,
  workflowId,
  stage: 'charge',
  group,
  input,
});

async function send(body: unknown, group: string): Promise<void> {
  await sqs.send(
    new SendMessageCommand({ QueueUrl: chargeQueue(), MessageBody: typeof body === 'string' ? body : JSON.stringify(body), MessageGroupId: group, MessageDeduplicationId: randomUUID() }),
  );
}

async function invoke(expectedMessages: number) {
  const { event } = await receiveEvent(sqs, chargeQueue());
  expect(event.Records).toHaveLength(expectedMessages);
  // The agent logs errors as JSON (on the global console, with POWERTOOLS_DEV): capture them.
  const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
  let log = '';
  const response = await handler(event, invocationContext('agents-charge', 10)).finally(() => {
    log = errors.mock.calls.map((args) => args.join(' ')).join('\n');
    errors.mockRestore();
  });
  const failed = new Set(response.batchItemFailures.map((failure) => failure.itemIdentifier));
  // Done with them: drop every received message so that none comes back into the next test.
  await deleteAll(event);
  return { event, failed, log, bodies: (ids: Set<string>) => event.Records.filter((record) => ids.has(record.messageId)).map((record) => record.body) };
}

async function deleteAll(event: SQSEvent): Promise<void> {
  for (const record of event.Records) await sqs.send(new DeleteMessageCommand({ QueueUrl: chargeQueue(), ReceiptHandle: record.receiptHandle }));
}

async function visibleOnQueue(queueUrl: string): Promise<number> {
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Number(Attributes?.ApproximateNumberOfMessages);
}

beforeAll(async () => {
  resources = await createWorkflowResources(emulator(), workflow, { namePrefix: `rt-agent-${randomUUID().slice(0, 8)}-`, visibilityTimeoutSeconds: 1 });
  useEmulatorInProcess({ ...resourceEnvironment(resources), [ENV.nextQueueUrl]: resources.queues.receipt!.queueUrl, POWERTOOLS_LOG_LEVEL: 'ERROR', POWERTOOLS_DEV: 'true' });
  sqs = new SQSClient(emulator());
});

afterAll(() => sqs.destroy());

beforeEach(() => {
  charges = [];
  gate = undefined;
});

describe('agents', () => {
  it('runs a task delivered twice once, answering the repeat with the stored result', async () => {
    const workflowId = `w-${randomUUID()}`;
    await send(task(workflowId, 'acct-1', { amountMinor: 500 }), 'acct-1');
    await send(task(workflowId, 'acct-1', { amountMinor: 500 }), 'acct-1');
    const first = await invoke(2);
    expect(first.failed.size).toBe(0);
    expect(charges).toEqual([workflowId]);
    expect(await visibleOnQueue(resources.queues.receipt!.queueUrl)).toBe(1);
  });

  it('refuses the same task id with a different payload, with a clear error', async () => {
    const workflowId = `w-${randomUUID()}`;
    await send(task(workflowId, 'acct-2', { amountMinor: 700 }), 'acct-2');
    expect((await invoke(1)).failed.size).toBe(0);

    await send(task(workflowId, 'acct-2', { amountMinor: 9_999 }), 'acct-2');
    const second = await invoke(1);
    expect(second.failed.size).toBe(1);
    expect(second.log).toContain(`task ${stageTaskId(workflowId, 'charge')} was already received with a different payload`);
    expect(charges).toEqual([workflowId]);
  });

  it('returns only the failed records, and the rest of their FIFO group, while other groups carry on', async () => {
    const broken = `w-${randomUUID()}`;
    const behindBroken = `w-${randomUUID()}`;
    const otherGroup = `w-${randomUUID()}`;
    await send(task(broken, 'acct-a', { amountMinor: 100, failWith: 'bug' }), 'acct-a');
    await send(task(behindBroken, 'acct-a', { amountMinor: 200 }), 'acct-a');
    await send(task(otherGroup, 'acct-b', { amountMinor: 300 }), 'acct-b');
    const batch = await invoke(3);
    expect(batch.bodies(batch.failed).map((body) => (JSON.parse(body) as Task).workflowId)).toEqual([broken, behindBroken]);
    expect(charges).toEqual([otherGroup]);
  });

  it("logs every line with its invocation's request id and cold start, in the edge's schema, and counts each task's outcome in CloudWatch metrics (EMF)", async () => {
    // A handler of its own, prepared (Logger, Metrics) with metrics on and info lines kept.
    const variables = { POWERTOOLS_LOG_LEVEL: 'INFO', POWERTOOLS_METRICS_DISABLED: 'false', AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand' };
    const saved = Object.fromEntries(Object.keys(variables).map((name) => [name, process.env[name]]));
    Object.assign(process.env, variables);
    const fresh = createAgent(saga, 'charge');
    // With POWERTOOLS_DEV, the Logger and Metrics write JSON on the global console.
    const written: string[] = [];
    const spies = (['log', 'info', 'error', 'warn'] as const).map((method) => vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void written.push(args.join(' '))));
    try {
      const done = `w-${randomUUID()}`;
      await send(task(done, 'acct-m', { amountMinor: 700 }), 'acct-m');
      await send(task(`w-${randomUUID()}`, 'acct-n', { amountMinor: 1, failWith: 'bug' }), 'acct-n');
      const { event } = await receiveEvent(sqs, chargeQueue());
      expect(event.Records).toHaveLength(2);
      const context = invocationContext('agents-charge', 10);
      expect((await fresh(event, context)).batchItemFailures).toHaveLength(1);
      await deleteAll(event);
    } finally {
      spies.forEach((spy) => spy.mockRestore());
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    const entries = written.map((text) => JSON.parse(text) as Record<string, unknown>);
    const lines = entries.filter((entry) => entry.msg !== undefined);
    expect(lines.map((line) => [line.level, line.msg])).toEqual([
      ['info', 'task done'],
      ['error', 'task failed; the message returns to its queue'],
    ]);
    for (const line of lines) {
      expect(line).toMatchObject({ name: 'agents', stage: 'charge', function_name: 'agents-charge', function_request_id: expect.stringMatching(/^[0-9a-f-]{36}$/), cold_start: true, pid: process.pid });
    }
    const metrics = entries.filter((entry) => entry._aws !== undefined) as Array<Record<string, unknown> & { _aws: { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][] }> } }>;
    const outcomes = metrics.find((entry) => entry.TasksCompleted !== undefined)!;
    expect(outcomes).toMatchObject({ TasksCompleted: 1, TasksFailed: 1, service: 'agents', stage: 'charge' });
    expect(outcomes._aws.CloudWatchMetrics[0]!.Namespace).toBe('Holdfast');
    expect(metrics.find((entry) => entry.ColdStart !== undefined)).toMatchObject({ ColdStart: 1, function_name: 'agents-charge', service: 'agents' });
  });

  it('fails a malformed message without running anything', async () => {
    await send('{"taskId": 42', 'acct-c');
    const batch = await invoke(1);
    expect(batch.failed.size).toBe(1);
    expect(charges).toEqual([]);
  });

  it('does not start a task its batch reaches after the deadline, and leaves nothing that blocks the next delivery', async () => {
    const workflowId = `w-${randomUUID()}`;
    // A task that started would wait here for good, as on a worker that died.
    gate = openGate();
    await send(task(workflowId, 'acct-e', { amountMinor: 100 }), 'acct-e');
    const { event } = await receiveEvent(sqs, chargeQueue());
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {});
    const late = handler(event, invocationContext('agents-charge', 0)).finally(() => quiet.mockRestore());
    const first = await Promise.race([late, gate.entered.then(() => 'started' as const)]);
    expect(first).toEqual({ batchItemFailures: [{ itemIdentifier: event.Records[0]!.messageId }] });
    gate = undefined;

    // Delivered again with time to run: nothing stands in its way.
    expect((await handler(event, invocationContext('agents-charge', 10))).batchItemFailures).toEqual([]);
    expect(charges).toEqual([workflowId]);
    await deleteAll(event);
  });

  it('turns away a redelivery of a task that is still in progress, then answers it once done', async () => {
    const workflowId = `w-${randomUUID()}`;
    gate = openGate();
    await send(task(workflowId, 'acct-d', { amountMinor: 100 }), 'acct-d');
    const { event } = await receiveEvent(sqs, chargeQueue());
    const firstInvocation = handler(event, invocationContext('agents-charge', 10));
    await gate.entered;

    // The first invocation outlives the message's visibility timeout (1 s): SQS delivers it again.
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {});
    const again = await waitForState(async () => {
      const redelivered = await receiveEvent(sqs, chargeQueue());
      expect(redelivered.event.Records).toHaveLength(1);
      return redelivered.event;
    });
    expect(again.Records[0]!.attributes.ApproximateReceiveCount).toBe('2');
    const second = await handler(again, invocationContext('agents-charge', 10)).finally(() => quiet.mockRestore());
    expect(second.batchItemFailures).toHaveLength(1);
    expect(second.batchItemFailures.map((failure) => failure.itemIdentifier)).toEqual([again.Records[0]!.messageId]);

    gate.open();
    expect((await firstInvocation).batchItemFailures).toEqual([]);
    expect(charges).toEqual([workflowId]);
    const third = await handler(again, invocationContext('agents-charge', 10));
    expect(third.batchItemFailures).toEqual([]);
    expect(charges).toEqual([workflowId]);
    await deleteAll(again);
  });
});
