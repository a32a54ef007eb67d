import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../testkit/fault-modes.js';
import { type ShimProcess, spawnShim } from '../../testkit/shim-process.js';
import { eventually } from '../helpers/wait.js';
import { sqsClient } from '../helpers/shim.js';

// SIGKILL the real shim process under load from concurrent SDK clients, restart it on the same
// database, and check that every acknowledged send is still there and no acknowledged delete
// came back. The kill instants come from a seeded generator, so a failure can be replayed.
const SEED = 20_261_122;
const KILLS_PER_MODE = 3;
const SENDERS = 3;
const RECEIVERS = 2;
// Messages received but not deleted before a kill are visible again a second after it.
const QUEUES = [
  { name: 'crash-standard', attributes: { VisibilityTimeout: '1' } },
  { name: 'crash.fifo', attributes: { VisibilityTimeout: '1', FifoQueue: 'true' } },
] as const;

/** What the clients sent, and what they were told: acknowledged sends (MessageId → body) and deletes. */
interface Ledger {
  readonly attempted: Set<string>;
  readonly sent: Map<string, string>;
  /** Messages a delete was sent for: unanswered, it may have been stored or not. */
  readonly deleteAttempted: Set<string>;
  readonly deleted: Set<string>;
}

interface Load {
  readonly stopped: { value: boolean };
  readonly ledger: Ledger;
  readonly clients: SQSClient[];
  readonly done: Promise<unknown>;
}

async function sender(sqs: SQSClient, queueUrl: string, fifo: boolean, tag: string, load: Pick<Load, 'stopped' | 'ledger'>): Promise<void> {
  const message = (n: number) => {
    const body = `${tag}-${n}`;
    load.ledger.attempted.add(body);
    return { MessageBody: body, ...(fifo ? { MessageGroupId: `g${n % 4}`, MessageDeduplicationId: body } : {}) };
  };
  for (let n = 0; !load.stopped.value; ) {
    if (n % 2 === 0) {
      const entry = message(n++);
      const { MessageId } = await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, ...entry }));
      load.ledger.sent.set(MessageId!, entry.MessageBody);
    } else {
      const entries = Array.from({ length: 1 + (n % 10) }, (_, index) => ({ Id: `e${index}`, ...message(n++) }));
      const { Successful = [] } = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      for (const { Id, MessageId } of Successful) load.ledger.sent.set(MessageId!, entries.find((entry) => entry.Id === Id)!.MessageBody);
    }
  }
}

async function receiver(sqs: SQSClient, queueUrl: string, load: Pick<Load, 'stopped' | 'ledger'>): Promise<void> {
  for (let round = 0; !load.stopped.value; round++) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    if (Messages.length === 0) continue;
    for (const { MessageId } of Messages) load.ledger.deleteAttempted.add(MessageId!);
    if (round % 2 === 0) {
      for (const { MessageId, ReceiptHandle } of Messages) {
        await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle }));
        load.ledger.deleted.add(MessageId!);
      }
    } else {
      const entries = Messages.map(({ ReceiptHandle }, index) => ({ Id: `d${index}`, ReceiptHandle }));
      const { Successful = [] } = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      for (const { Id } of Successful) load.ledger.deleted.add(Messages[Number(Id!.slice(1))]!.MessageId!);
    }
  }
}

/** Senders and receivers on one queue until stopped or the shim goes away. */
function startLoad(url: string, queueUrl: string, fifo: boolean, round: number): Load {
  const ledger: Ledger = { attempted: new Set(), sent: new Map(), deleteAttempted: new Set(), deleted: new Set() };
  const load = { stopped: { value: false }, ledger };
  const clients: SQSClient[] = [];
  const workers: Array<Promise<void>> = [];
  for (let i = 0; i < SENDERS + RECEIVERS; i++) {
    const sqs = sqsClient(url);
    clients.push(sqs);
    workers.push(i < SENDERS ? sender(sqs, queueUrl, fifo, `r${round}s${i}`, load) : receiver(sqs, queueUrl, load));
  }
  // A worker ends with an error once the shim is killed; requests that fail are not acknowledged.
  return { ...load, clients, done: Promise.allSettled(workers) };
}

/**
 * Receives and deletes everything left in a queue, the messages in flight when the shim was killed
 * included: long polls wait for their visibility timeout to run out, until the queue counts none at
 * all. MessageId → body.
 */
async function drain(sqs: SQSClient, queueUrl: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  const left = async () => {
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'] }),
    );
    return Object.values(Attributes!).reduce((sum, value) => sum + Number(value), 0);
  };
  for (;;) {
    const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60, WaitTimeSeconds: 1 }));
    if (Messages.length === 0) {
      if ((await left()) === 0) break;
      continue;
    }
    for (const { MessageId, Body } of Messages) {
      expect(found.has(MessageId!), `${MessageId} received twice while draining`).toBe(false);
      found.set(MessageId!, Body!);
    }
    const entries = Messages.map(({ ReceiptHandle }, index) => ({ Id: `d${index}`, ReceiptHandle }));
    const { Failed = [] } = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
    expect(Failed).toEqual([]);
  }
  return found;
}

function checkSurvived(ledger: Ledger, found: Map<string, string>): void {
  for (const [messageId, body] of ledger.sent) {
    if (ledger.deleted.has(messageId)) continue;
    if (ledger.deleteAttempted.has(messageId) && !found.has(messageId)) continue;
    expect(found.get(messageId), `acknowledged message ${messageId} (${body}) lost`).toBe(body);
  }
  for (const messageId of ledger.deleted) expect(found.has(messageId), `deleted message ${messageId} came back`).toBe(false);
  // Sends answered by nobody may or may not have been stored, but nothing else may appear.
  for (const body of found.values()) expect(ledger.attempted.has(body), `unexpected message ${body}`).toBe(true);
}

const dirs: string[] = [];
const processes: ShimProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((shim) => shim.stop('SIGKILL')));
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

async function start(dbFile: string, durability: 'process' | 'power'): Promise<ShimProcess> {
  const shim = await spawnShim({ dbFile, durability });
  processes.push(shim);
  return shim;
}

describe.each(['process', 'power'] as const)('with --durability %s', (durability) => {
  it(`keeps every acknowledged write through ${KILLS_PER_MODE} SIGKILLs under load`, { timeout: 180_000 }, async () => {
    const random = seededRandom(SEED + (durability === 'power' ? 1 : 0));
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-crash-'));
    dirs.push(dir);
    const dbFile = join(dir, 'shim.db');
    let shim = await start(dbFile, durability);
    const setup = sqsClient(shim.url);
    for (const queue of QUEUES) await setup.send(new CreateQueueCommand({ QueueName: queue.name, Attributes: queue.attributes }));
    setup.destroy();

    for (let round = 0; round < KILLS_PER_MODE; round++) {
      const admin = sqsClient(shim.url);
      const loads = await Promise.all(
        QUEUES.map(async (queue) => {
          const { QueueUrl } = await admin.send(new GetQueueUrlCommand({ QueueName: queue.name }));
          return startLoad(shim.url, QueueUrl!, queue.name.endsWith('.fifo'), round);
        }),
      );
      // Kill only once both sends and deletes are being acknowledged, then at a random instant.
      await eventually(() => loads, (all) => all.every(({ ledger }) => ledger.sent.size >= 20 && ledger.deleted.size >= 5), 10);
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 400)));
      await shim.stop('SIGKILL');
      for (const load of loads) load.stopped.value = true;
      await Promise.all(loads.map((load) => load.done));
      for (const client of [admin, ...loads.flatMap((load) => load.clients)]) client.destroy();

      shim = await start(dbFile, durability);
      const checker = sqsClient(shim.url);
      for (const [index, queue] of QUEUES.entries()) {
        const { QueueUrl } = await checker.send(new GetQueueUrlCommand({ QueueName: queue.name }));
        checkSurvived(loads[index]!.ledger, await drain(checker, QueueUrl!));
      }
      checker.destroy();
    }
    await shim.stop('SIGTERM');
  });
});
