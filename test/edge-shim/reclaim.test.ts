import { statSync } from 'node:fs';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type TestShim, startTestShim, testEngine } from '../helpers/shim.js';
import { eventually } from '../helpers/wait.js';

// "Expired, deleted and moved messages are reclaimed so the database file stops growing": many
// times more messages than the queue ever holds at once go through it, and the file levels off.
const CYCLES = 6;
const MESSAGES_PER_CYCLE = 600;
const BODY = 'x'.repeat(3000);
const RETENTION_SECONDS = 60;
const VISIBILITY_SECONDS = 30;

let t: TestShim;
let source: string;
let deadLetters: string;
beforeAll(async () => {
  t = await startTestShim({ sweepIntervalMs: 20 });
  const dlq = await t.sqs.send(new CreateQueueCommand({ QueueName: 'reclaim-dlq', Attributes: { MessageRetentionPeriod: String(RETENTION_SECONDS) } }));
  deadLetters = dlq.QueueUrl!;
  const { Attributes } = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl: deadLetters, AttributeNames: ['QueueArn'] }));
  const queue = await t.sqs.send(
    new CreateQueueCommand({
      QueueName: 'reclaim',
      Attributes: {
        MessageRetentionPeriod: String(RETENTION_SECONDS),
        VisibilityTimeout: String(VISIBILITY_SECONDS),
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: 1 }),
      },
    }),
  );
  source = queue.QueueUrl!;
});
afterAll(() => t?.close());

// 1,000 WAL frames of a 4 KiB page and its 24-byte header, after the WAL's 32-byte header.
const WAL_CHECKPOINT_BYTES = 32 + 1000 * (4096 + 24);

function walBytes(): number {
  try {
    return statSync(join(t.dir, 'shim.db-wal')).size;
  } catch {
    return 0;
  }
}

function databaseFileBytes(): number {
  return statSync(join(t.dir, 'shim.db')).size;
}

async function inParallel(count: number, work: (index: number) => Promise<unknown>): Promise<void> {
  const workers = 8;
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      for (let index = worker; index < count; index += workers) await work(index);
    }),
  );
}

async function receiveAll(queueUrl: string): Promise<Message[]> {
  const received: Message[] = [];
  for (;;) {
    const { Messages = [] } = await t.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
    if (Messages.length === 0) return received;
    received.push(...Messages);
  }
}

async function deleteAll(queueUrl: string, messages: Message[]): Promise<void> {
  await inParallel(Math.ceil(messages.length / 10), async (index) => {
    const entries = messages.slice(index * 10, index * 10 + 10).map(({ ReceiptHandle }, entry) => ({ Id: `d${entry}`, ReceiptHandle }));
    const { Failed = [] } = await t.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
    expect(Failed).toEqual([]);
  });
}

async function storedMessages(queueUrl: string): Promise<number> {
  const { Attributes = {} } = await t.sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'] }),
  );
  return Object.values(Attributes).reduce((sum, value) => sum + Number(value), 0);
}

/** Sends a cycle's messages; deletes a third, dead-letters a third, lets the rest and the dead letters expire. */
async function churn(): Promise<void> {
  await inParallel(MESSAGES_PER_CYCLE / 10, async () => {
    const entries = Array.from({ length: 10 }, (_, entry) => ({ Id: `m${entry}`, MessageBody: BODY }));
    const { Failed = [] } = await t.sqs.send(new SendMessageBatchCommand({ QueueUrl: source, Entries: entries }));
    expect(Failed).toEqual([]);
  });
  const received = await receiveAll(source);
  expect(received).toHaveLength(MESSAGES_PER_CYCLE);
  await deleteAll(source, received.slice(0, MESSAGES_PER_CYCLE / 3));
  // Two thirds were received once and not deleted: once visible again, a receive moves them
  // (maxReceiveCount 1) to the dead-letter queue.
  t.clock.advance(VISIBILITY_SECONDS * 1000);
  while ((await storedMessages(source)) > 0) expect(await receiveAll(source)).toEqual([]);
  expect(await storedMessages(deadLetters)).toBe(MESSAGES_PER_CYCLE - Math.floor(MESSAGES_PER_CYCLE / 3));
  // Half of the dead letters are deleted, the other half expire along with nothing else.
  await deleteAll(deadLetters, (await receiveAll(deadLetters)).slice(0, MESSAGES_PER_CYCLE / 3));
  t.clock.advance(RETENTION_SECONDS * 1000);
  // The sweeper reclaims the expired messages, and the checkpointer then empties a WAL of more than
  // 1,000 pages; each is waited for as a state (the test's timeout bounds them, not a clock here).
  await eventually(async () => (await storedMessages(source)) + (await storedMessages(deadLetters)), (stored) => stored === 0);
  await eventually(walBytes, (bytes) => bytes <= WAL_CHECKPOINT_BYTES);
}

// The database file's size is SQLite's: PostgreSQL reclaims space with its own VACUUM.
it.runIf(testEngine() === 'sqlite')('keeps the database file from growing as messages are deleted, dead-lettered and expire', { timeout: 60_000 }, async () => {
  const sizes: number[] = [];
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    await churn();
    sizes.push(databaseFileBytes());
  }
  const cycleBytes = MESSAGES_PER_CYCLE * BODY.length;
  // Without reclaiming, the file would hold every message churned: CYCLES cycles' worth, and growing.
  // Reclaimed, it never holds more than the two cycles' worth that free pages and the last cycle's
  // pages not yet vacuumed can add up to; the WAL beside it stays under 1,000 pages (see churn()).
  expect(Math.max(...sizes), `file sizes after each cycle: ${sizes.join(', ')}`).toBeLessThan(2 * cycleBytes);
});
