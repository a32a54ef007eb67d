import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CancelMessageMoveTaskCommand,
  CreateQueueCommand,
  ListMessageMoveTasksCommand,
  type ListMessageMoveTasksResultEntry,
  type Message,
  ReceiveMessageCommand,
  ResourceNotFoundException,
  type SQSClient,
  SendMessageCommand,
  StartMessageMoveTaskCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/wait.js';
import { rejectionOf } from '../helpers/sqs-errors.js';
import { counts } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t.close());

const arn = (name: string) => `arn:aws:sqs:us-east-1:000000000000:${name}`;

async function queue(sqs: SQSClient, name: string, Attributes: Record<string, string> = {}): Promise<string> {
  const fifo = name.endsWith('.fifo') ? { FifoQueue: 'true', ContentBasedDeduplication: 'true' } : {};
  return (await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { ...fifo, ...Attributes } }))).QueueUrl!;
}

async function receive(sqs: SQSClient, QueueUrl: string): Promise<Message[]> {
  const { Messages } = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 0, MessageSystemAttributeNames: ['All'] }),
  );
  return Messages ?? [];
}

async function count(sqs: SQSClient, QueueUrl: string): Promise<number> {
  const { visible, notVisible } = await counts(sqs, QueueUrl);
  return visible + notVisible;
}

/** A dead-letter queue with a source queue (maxReceiveCount 1) whose messages it already holds. */
async function deadLettered(sqs: SQSClient, dlqName: string, sourceName: string, bodies: string[], groupId?: string) {
  const dlq = await queue(sqs, dlqName);
  const source = await queue(sqs, sourceName, { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn(dlqName), maxReceiveCount: 1 }) });
  for (const MessageBody of bodies) await sqs.send(new SendMessageCommand({ QueueUrl: source, MessageBody, MessageGroupId: groupId }));
  for (let round = 0; round < bodies.length + 1 && (await count(sqs, dlq)) < bodies.length; round++) await receive(sqs, source);
  expect(await count(sqs, dlq)).toBe(bodies.length);
  return { dlq, source };
}

async function tasks(sqs: SQSClient, SourceArn: string, MaxResults?: number): Promise<ListMessageMoveTasksResultEntry[]> {
  return (await sqs.send(new ListMessageMoveTasksCommand({ SourceArn, MaxResults }))).Results ?? [];
}

/** The most recent task of a source queue once it is in one of these states. */
async function settled(sqs: SQSClient, SourceArn: string, statuses = ['COMPLETED', 'CANCELLED', 'FAILED']): Promise<ListMessageMoveTasksResultEntry> {
  const [task] = await eventually(() => tasks(sqs, SourceArn), ([latest]) => latest !== undefined && statuses.includes(latest.Status!));
  return task!;
}

describe('StartMessageMoveTask', () => {
  it('moves each message back to the queue it was dead-lettered from, as a new message', async () => {
    const { dlq, source: sourceA } = await deadLettered(t.sqs, 'back-dlq', 'back-a', ['a1', 'a2']);
    const sourceB = await queue(t.sqs, 'back-b', { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn('back-dlq'), maxReceiveCount: 1 }) });
    await t.sqs.send(new SendMessageCommand({ QueueUrl: sourceB, MessageBody: 'b1' }));
    await receive(t.sqs, sourceB);
    await receive(t.sqs, sourceB);
    const deadIds = (await receive(t.sqs, dlq)).map((message) => message.MessageId);
    expect(deadIds).toHaveLength(3);

    const { TaskHandle } = await t.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arn('back-dlq'), MaxNumberOfMessagesPerSecond: 500 }));
    expect(TaskHandle).toBeTruthy();
    const task = await settled(t.sqs, arn('back-dlq'));
    expect(task).toEqual({
      Status: 'COMPLETED',
      SourceArn: arn('back-dlq'),
      MaxNumberOfMessagesPerSecond: 500,
      ApproximateNumberOfMessagesMoved: 3,
      ApproximateNumberOfMessagesToMove: 3,
      StartedTimestamp: expect.any(Number),
    });

    expect(await count(t.sqs, dlq)).toBe(0);
    const backInA = await receive(t.sqs, sourceA);
    const backInB = await receive(t.sqs, sourceB);
    expect(backInA.map((message) => message.Body).sort()).toEqual(['a1', 'a2']);
    expect(backInB.map((message) => message.Body)).toEqual(['b1']);
    for (const message of [...backInA, ...backInB]) {
      expect(deadIds).not.toContain(message.MessageId);
      expect(message.Attributes!.ApproximateReceiveCount).toBe('1');
      expect(message.Attributes!.DeadLetterQueueSourceArn).toBeUndefined();
    }
  });

  it('moves to DestinationArn and keeps FIFO message groups and their order', async () => {
    const { dlq } = await deadLettered(t.sqs, 'dest-dlq.fifo', 'dest-source.fifo', ['g1', 'g2', 'g3'], 'group-1');
    const destination = await queue(t.sqs, 'dest-target.fifo');
    await t.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arn('dest-dlq.fifo'), DestinationArn: arn('dest-target.fifo') }));
    const task = await settled(t.sqs, arn('dest-dlq.fifo'));
    expect(task.Status).toBe('COMPLETED');
    expect(task.DestinationArn).toBe(arn('dest-target.fifo'));
    expect(task.MaxNumberOfMessagesPerSecond).toBeUndefined();
    expect(await count(t.sqs, dlq)).toBe(0);
    const moved = await receive(t.sqs, destination);
    expect(moved.map((message) => [message.Body, message.Attributes!.MessageGroupId])).toEqual([
      ['g1', 'group-1'],
      ['g2', 'group-1'],
      ['g3', 'group-1'],
    ]);
  });

  it('wakes a long poll waiting on the destination', async () => {
    await deadLettered(t.sqs, 'wake-dlq', 'wake-source', ['wake up']);
    const destination = await queue(t.sqs, 'wake-target');
    const waiting = t.sqs.send(new ReceiveMessageCommand({ QueueUrl: destination, WaitTimeSeconds: 20 }));
    await eventually(() => t.shim.service.waitingReceives, (count) => count >= 1);
    await t.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arn('wake-dlq'), DestinationArn: arn('wake-target') }));
    expect(((await waiting).Messages ?? []).map((message) => message.Body)).toEqual(['wake up']);
  });

  it('keeps to MaxNumberOfMessagesPerSecond', async () => {
    await deadLettered(t.sqs, 'rate-dlq', 'rate-source', ['r1', 'r2', 'r3', 'r4']);
    const rate = 2;
    await t.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arn('rate-dlq'), MaxNumberOfMessagesPerSecond: rate }));
    await eventually(
      () => tasks(t.sqs, arn('rate-dlq')),
      ([task]) => {
        // In any second of the task, at most `rate` messages: so never more than this by now.
        const seconds = Math.floor((t.clock.now() - task!.StartedTimestamp!) / 1000) + 1;
        expect(task!.ApproximateNumberOfMessagesMoved).toBeLessThanOrEqual(rate * seconds);
        return task!.Status === 'COMPLETED';
      },
    );
    const [done] = await tasks(t.sqs, arn('rate-dlq'));
    expect(done).toMatchObject({ Status: 'COMPLETED', ApproximateNumberOfMessagesMoved: 4 });
  });

  it('fails a task when a message has no source queue to go back to', async () => {
    const dlq = await queue(t.sqs, 'orphan-dlq');
    await queue(t.sqs, 'orphan-source', { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn('orphan-dlq'), maxReceiveCount: 1 }) });
    await t.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: 'sent straight to the dead-letter queue' }));
    await t.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arn('orphan-dlq') }));
    const task = await settled(t.sqs, arn('orphan-dlq'));
    expect(task).toMatchObject({ Status: 'FAILED', FailureReason: 'CouldNotDetermineMessageSource', ApproximateNumberOfMessagesMoved: 0 });
    expect(await count(t.sqs, dlq)).toBe(1);
  });

  it('checks its parameters', async () => {
    await deadLettered(t.sqs, 'check-dlq', 'check-source', []);
    await queue(t.sqs, 'check-fifo.fifo');
    const start = (input: ConstructorParameters<typeof StartMessageMoveTaskCommand>[0]) => rejectionOf(t.sqs.send(new StartMessageMoveTaskCommand(input)));

    expect(await start({ SourceArn: arn('check-nowhere') })).toBeInstanceOf(ResourceNotFoundException);
    const notDlq = await start({ SourceArn: arn('check-source') });
    expect(notDlq.name).toBe('InvalidParameterValue');
    expect(notDlq.message).toBe('Source queue must be configured as a Dead Letter Queue.');
    expect(await start({ SourceArn: arn('check-dlq'), DestinationArn: arn('check-nowhere') })).toBeInstanceOf(ResourceNotFoundException);
    expect((await start({ SourceArn: arn('check-dlq'), DestinationArn: arn('check-fifo.fifo') })).name).toBe('InvalidParameterValue');
    for (const rate of [0, 501]) {
      expect((await start({ SourceArn: arn('check-dlq'), MaxNumberOfMessagesPerSecond: rate })).name).toBe('InvalidParameterValue');
    }
    expect(await tasks(t.sqs, arn('check-dlq'))).toEqual([]);
  });
});

describe('CancelMessageMoveTask', () => {
  it('stops a running task; only one task runs per source queue at a time', async () => {
    const { dlq, source } = await deadLettered(t.sqs, 'cancel-dlq', 'cancel-source', ['c1', 'c2', 'c3', 'c4']);
    const { TaskHandle } = await t.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arn('cancel-dlq'), MaxNumberOfMessagesPerSecond: 1 }));
    const running = await settled(t.sqs, arn('cancel-dlq'), ['RUNNING']);
    expect(running.TaskHandle).toBe(TaskHandle);
    expect(running.ApproximateNumberOfMessagesToMove).toBe(4);

    const second = await rejectionOf(t.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arn('cancel-dlq') })));
    expect(second.name).toBe('InvalidParameterValue');

    const cancelled = await t.sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle }));
    const task = await settled(t.sqs, arn('cancel-dlq'), ['CANCELLED']);
    expect(task.TaskHandle).toBeUndefined();
    expect(task.ApproximateNumberOfMessagesMoved).toBeGreaterThanOrEqual(cancelled.ApproximateNumberOfMessagesMoved!);
    expect(task.ApproximateNumberOfMessagesMoved).toBeLessThan(4);
    // What moved is in the source queue, the rest still in the dead-letter queue.
    expect(await count(t.sqs, source)).toBe(task.ApproximateNumberOfMessagesMoved);
    expect(await count(t.sqs, dlq)).toBe(4 - task.ApproximateNumberOfMessagesMoved!);

    const again = await rejectionOf(t.sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle })));
    expect(again).toBeInstanceOf(ResourceNotFoundException);
    // With the first one over, a new task may start.
    await t.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arn('cancel-dlq'), MaxNumberOfMessagesPerSecond: 500 }));
    expect((await settled(t.sqs, arn('cancel-dlq'))).Status).toBe('COMPLETED');
    expect(await count(t.sqs, dlq)).toBe(0);
    expect(await count(t.sqs, source)).toBe(4);
  });

  it('refuses a handle that is not one', async () => {
    const error = await rejectionOf(t.sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle: 'not-a-handle' })));
    expect(error.name).toBe('InvalidParameterValue');
  });
});

describe('ListMessageMoveTasks', () => {
  it('lists the most recent tasks first, one by default, of the last 14 days', async () => {
    await deadLettered(t.sqs, 'history-dlq', 'history-source', []);
    for (const rate of [1, 2, 3]) {
      await t.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arn('history-dlq'), MaxNumberOfMessagesPerSecond: rate }));
      await settled(t.sqs, arn('history-dlq'));
      t.clock.advance(1000);
    }
    expect((await tasks(t.sqs, arn('history-dlq'))).map((task) => task.MaxNumberOfMessagesPerSecond)).toEqual([3]);
    const all = await tasks(t.sqs, arn('history-dlq'), 10);
    expect(all.map((task) => task.MaxNumberOfMessagesPerSecond)).toEqual([3, 2, 1]);
    expect(all.every((task) => task.Status === 'COMPLETED' && task.ApproximateNumberOfMessagesToMove === 0)).toBe(true);

    t.clock.advance(14 * 24 * 3600_000);
    expect(await tasks(t.sqs, arn('history-dlq'), 10)).toEqual([]);
  });

  it('checks its parameters', async () => {
    await deadLettered(t.sqs, 'list-check-dlq', 'list-check-source', []);
    for (const MaxResults of [0, 11]) {
      expect((await rejectionOf(tasks(t.sqs, arn('list-check-dlq'), MaxResults))).name).toBe('InvalidParameterValue');
    }
    expect(await rejectionOf(tasks(t.sqs, arn('list-check-nowhere')))).toBeInstanceOf(ResourceNotFoundException);
  });
});

describe('a task across a restart', () => {
  it('resumes a task that was RUNNING when the server stopped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-move-restart-'));
    const dbFile = join(dir, 'shim.db');
    try {
      const first = await startTestShim({ dbFile });
      const { dlq, source } = await deadLettered(first.sqs, 'restart-dlq', 'restart-source', ['x1', 'x2']);
      await first.sqs.send(new StartMessageMoveTaskCommand({ SourceArn: arn('restart-dlq'), MaxNumberOfMessagesPerSecond: 1 }));
      // One message a second: after the first, the task waits, still RUNNING, when the server stops.
      await eventually(() => tasks(first.sqs, arn('restart-dlq')), ([task]) => task!.ApproximateNumberOfMessagesMoved! >= 1);
      const [before] = await tasks(first.sqs, arn('restart-dlq'));
      expect(before).toMatchObject({ Status: 'RUNNING', ApproximateNumberOfMessagesMoved: 1 });
      await first.close();

      const second = await startTestShim({ dbFile });
      try {
        const task = await settled(second.sqs, arn('restart-dlq'));
        expect(task).toMatchObject({ Status: 'COMPLETED', ApproximateNumberOfMessagesMoved: 2, ApproximateNumberOfMessagesToMove: 2 });
        expect(await count(second.sqs, dlq.replace(first.shim.url, second.shim.url))).toBe(0);
        expect((await receive(second.sqs, source.replace(first.shim.url, second.shim.url))).map((m) => m.Body).sort()).toEqual(['x1', 'x2']);
      } finally {
        await second.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
