import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  type SQSClient,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StartOptions } from '../../edge-shim/src/shim.js';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { counts, createQueue, receive } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';
import { eventually } from '../helpers/wait.js';

// Receipt handles carry a MAC under a key kept in the database: a handle anyone on the LAN makes
// up, or alters, or brings from another shim is refused as malformed and touches no message, in a
// standard queue, a FIFO queue, and the backlog of a hybrid edge waiting for its replay. A handle
// the store made, of a receive it no longer knows (a database restored from before it), deletes
// nothing either.

const base64url = (text: string) => Buffer.from(text).toString('base64url');

/** The parts of a handle of this shim: `hf1.<queue:row:nonce>.<MAC>`. */
function partsOf(handle: string): { queue: number; row: number; nonce: string; payload: string; mac: string } {
  const [, payload, mac] = handle.split('.');
  const [queue, row, nonce] = Buffer.from(payload!, 'base64url').toString().split(':');
  return { queue: Number(queue), row: Number(row), nonce: nonce!, payload: payload!, mac: mac! };
}

/**
 * Handles made up from a real one, each naming a message: the forgery of the issue (no MAC, as the
 * handles were), the real MAC on another nonce or another message's row, and a MAC altered.
 */
function forgeries(real: string, target: number): Record<string, string> {
  const { queue, row, nonce, payload, mac } = partsOf(real);
  const otherNonce = 'AAAAAAAAAAAAAAAA';
  return {
    'without a MAC': `hf1.${base64url(`${queue}:${target}:${otherNonce}`)}`,
    'a wrong nonce under the real MAC': `hf1.${base64url(`${queue}:${row}:${otherNonce}`)}.${mac}`,
    "another message's row under the real MAC": `hf1.${base64url(`${queue}:${target}:${nonce}`)}.${mac}`,
    'the MAC altered': `hf1.${payload}.${mac.startsWith('A') ? 'B' : 'A'}${mac.slice(1)}`,
  };
}

/** Every way a handle acts on a message, each of which must refuse it as malformed. */
async function expectRefusedEverywhere(sqs: SQSClient, queueUrl: string, handle: string): Promise<void> {
  await expectSqsError(sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: handle })), { name: 'ReceiptHandleIsInvalid' });
  await expectSqsError(sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: handle, VisibilityTimeout: 0 })), {
    name: 'ReceiptHandleIsInvalid',
  });
  const { Successful, Failed } = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: [{ Id: 'forged', ReceiptHandle: handle }] }));
  expect(Successful ?? []).toEqual([]);
  expect(Failed).toEqual([expect.objectContaining({ Id: 'forged', Code: 'ReceiptHandleIsInvalid', SenderFault: true })]);
}

describe.each([
  ['a standard queue', false],
  ['a FIFO queue', true],
] as const)('in %s', (_kind, fifo) => {
  let t: TestShim;
  beforeAll(async () => {
    t = await startTestShim();
  });
  afterAll(() => t.close());

  const send = (queueUrl: string, body: string) =>
    t.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body, ...(fifo ? { MessageGroupId: body, MessageDeduplicationId: body } : {}) }));

  it('a handle made up or altered is refused, and neither a message received nor one never received is touched', async () => {
    const queueUrl = await createQueue(t.sqs, 'forged', {}, fifo);
    await send(queueUrl, 'received');
    await send(queueUrl, 'never-received');
    const [received] = await receive(t.sqs, queueUrl, { VisibilityTimeout: 300 });
    expect(received!.Body).toBe('received');
    // Rows are given in order of sending: the message never received is the next one.
    const neverReceived = partsOf(received!.ReceiptHandle!).row + 1;
    for (const [how, handle] of Object.entries(forgeries(received!.ReceiptHandle!, neverReceived))) {
      await expectRefusedEverywhere(t.sqs, queueUrl, handle).catch((error: Error) => {
        throw new Error(`a handle with ${how}: ${error.message}`);
      });
    }
    expect(await counts(t.sqs, queueUrl)).toEqual({ visible: 1, notVisible: 1, delayed: 0 });
    // The real handle still does what it did.
    await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: received!.ReceiptHandle }));
    expect(await counts(t.sqs, queueUrl)).toEqual({ visible: 1, notVisible: 0, delayed: 0 });
  });

  it("another shim's handle, naming the same queue and message row, is refused: each database has its own key", async () => {
    const [ours, theirs] = await Promise.all([startTestShim(), startTestShim()]);
    try {
      // The same steps on two new databases give the same queue and message row, each received.
      const handles = await Promise.all(
        [ours, theirs].map(async (shim) => {
          const { QueueUrl } = await shim.sqs.send(new CreateQueueCommand({ QueueName: fifo ? 'twin.fifo' : 'twin', Attributes: fifo ? { FifoQueue: 'true' } : {} }));
          await shim.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'twin', ...(fifo ? { MessageGroupId: 'g', MessageDeduplicationId: 'twin' } : {}) }));
          const [message] = await receive(shim.sqs, QueueUrl!, { VisibilityTimeout: 300 });
          return { queueUrl: QueueUrl!, handle: message!.ReceiptHandle! };
        }),
      );
      const [mine, foreign] = handles as [{ queueUrl: string; handle: string }, { queueUrl: string; handle: string }];
      expect(partsOf(foreign.handle)).toMatchObject({ queue: partsOf(mine.handle).queue, row: partsOf(mine.handle).row });
      await expectRefusedEverywhere(ours.sqs, mine.queueUrl, foreign.handle);
      expect(await counts(ours.sqs, mine.queueUrl)).toEqual({ visible: 0, notVisible: 1, delayed: 0 });
    } finally {
      await Promise.all([ours.close(), theirs.close()]);
    }
  });
});

describe('a handle of a receive the store does not know', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  // The store made the handle (its MAC holds), but the message it names was never received as far
  // as the store knows: the database was restored from a copy taken before that receive.
  it.each([
    ['a standard queue: the delete succeeds, as SQS answers a handle not the latest, and deletes nothing', false],
    ['a FIFO queue: the delete is refused as an outdated handle', true],
  ] as const)('deletes nothing in %s', async (_what, fifo) => {
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-restored-'));
    dirs.push(dir);
    const dbFile = join(dir, 'shim.db');
    const start = (): Promise<TestShim> => startTestShim({ dbFile });
    let t = await start();
    const queueUrl = await createQueue(t.sqs, 'restored', {}, fifo);
    await t.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'kept', ...(fifo ? { MessageGroupId: 'g', MessageDeduplicationId: 'kept' } : {}) }));
    await t.close();
    // Closed cleanly, the database is whole in its one file.
    copyFileSync(dbFile, join(dir, 'backup.db'));
    t = await start();
    const [received] = await receive(t.sqs, queueUrl);
    await t.close();
    copyFileSync(join(dir, 'backup.db'), dbFile);
    t = await start();
    try {
      const deleting = t.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: received!.ReceiptHandle }));
      if (fifo) await expectSqsError(deleting, { name: 'InvalidParameterValue', message: /expired/ });
      else await deleting;
      expect((await receive(t.sqs, queueUrl)).map((message) => message.Body)).toEqual(['kept']);
    } finally {
      await t.close();
    }
  });
});

describe('in front of a region', () => {
  // The region is away (nothing listens there): the edge starts offline, and what is sent is the
  // backlog waiting for the replay. No emulator is needed for that.
  const OFFLINE: StartOptions = {
    upstream: 'http://127.0.0.1:9',
    upstreamRegion: 'us-east-1',
    upstreamCredentials: { accessKeyId: 'edge', secretAccessKey: 'edge' },
    upstreamTimeoutMs: 500,
    probeIntervalMs: 100,
    probeTimeoutMs: 200,
  };
  let t: TestShim;
  beforeAll(async () => {
    t = await startTestShim(OFFLINE);
  });
  afterAll(() => t.close());

  it.each([
    ['standard', false],
    ['FIFO', true],
  ] as const)('a forged handle does not touch the backlog of a %s queue', async (_kind, fifo) => {
    await eventually(() => t.shim.status(), (status) => status.mode === 'offline');
    const queueUrl = await createQueue(t.sqs, 'backlog', {}, fifo);
    const group = fifo ? { MessageGroupId: 'g' } : {};
    await t.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'first', ...group, ...(fifo ? { MessageDeduplicationId: 'first' } : {}) }));
    await t.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'waiting', ...group, ...(fifo ? { MessageDeduplicationId: 'waiting' } : {}) }));
    const [received] = await receive(t.sqs, queueUrl, { VisibilityTimeout: 300 });
    const waiting = partsOf(received!.ReceiptHandle!).row + 1;
    for (const handle of Object.values(forgeries(received!.ReceiptHandle!, waiting))) await expectRefusedEverywhere(t.sqs, queueUrl, handle);
    const name = new URL(queueUrl).pathname.split('/').pop()!;
    expect(t.shim.sqlite!.engine.storedMessages(name)).toBe(2);
  });
});
