import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  type Message,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ShimProcess, spawnShim } from '../../testkit/shim-process.js';
import { sqsClient } from '../helpers/shim.js';
import { eventually } from '../helpers/wait.js';

// A full disk, for real: the shim runs on a small tmpfs mounted in a mount namespace of its own
// (unshare -rm, so no privileges are needed), fills it with messages, and another "program" (the
// test, writing through /proc/<pid>/root) fills what is left. Sends are refused with a retryable
// error, everything that shrinks the data goes on, every time, /health says why, and the shim takes
// sends again by itself once there is room. Every acknowledged send is received in the end. Each
// test has a shim and a disk of its own. (test/security/full-disk.test.ts fills a smaller disk
// through the shim alone, from several producers at once, and drains it by deletes and a purge.)

const DISK_BYTES = 64 * 2 ** 20;
// Room for what the WAL may hold when the disk fills (a few MiB) and the deletes after it.
const RESERVE = '16MiB';
const BODY = 'x'.repeat(60 * 1024);

const canMountTmpfs = (() => {
  try {
    execFileSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs /mnt'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

let dir: string;
let shim: ShimProcess;
let sqs: SQSClient;
/** The shim's directory as other programs see it: through the shim's own mount namespace. */
let seenFromOutside: string;

async function health(): Promise<{ status: number; body: { status: string; reason?: string; storage: { state: string; reserveHeld: boolean } } }> {
  const response = await fetch(`${shim.url}/health`);
  return { status: response.status, body: (await response.json()) as never };
}

/** Sends until the shim refuses; the bodies it acknowledged. */
async function sendUntilRefused(queueUrl: string, prefix: string): Promise<{ acknowledged: string[]; refusal: Error }> {
  const acknowledged: string[] = [];
  for (let i = 0; ; i++) {
    const body = `${prefix}-${i} ${BODY}`;
    try {
      await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
      acknowledged.push(body);
    } catch (error) {
      return { acknowledged, refusal: error as Error };
    }
  }
}

/** Receives and deletes everything in the queue; the bodies received. */
async function drain(queueUrl: string): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 60 }));
    if (!Messages) return bodies;
    bodies.push(...Messages.map((message) => message.Body!));
    const Entries = Messages.map((message, index) => ({ Id: `d${index}`, ReceiptHandle: message.ReceiptHandle }));
    const { Failed } = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries }));
    expect(Failed ?? []).toEqual([]);
  }
}

/** Writes zeros at the end of a file until the disk refuses; returns the file. */
function fillDisk(file: string): string {
  const fd = openSync(file, 'a');
  const chunk = Buffer.alloc(256 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
  return file;
}

describe.skipIf(!canMountTmpfs)('a full disk (needs unshare -rm and tmpfs)', () => {
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'holdfast-disk-'));
    shim = await spawnShim({
      dbFile: join(dir, 'shim.db'),
      wrapper: ['unshare', '-rm', 'sh', '-c', `mount -t tmpfs -o size=${DISK_BYTES} tmpfs "$0" && exec "$@"`, dir],
      args: ['--disk-reserve', RESERVE],
    });
    seenFromOutside = `/proc/${shim.pid}/root${dir}`;
    // One attempt per call, so that the test sees each refusal; retries are the producer's choice.
    sqs = sqsClient(shim.url);
  });
  afterEach(async () => {
    sqs?.destroy();
    await shim?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // Filling 64 MiB one send at a time takes 20 to 40 s on a busy machine.
  it('refuses sends, serves receives, visibility changes, deletes and purges, and recovers once drained', { timeout: 120_000 }, async () => {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'filled' }));
    expect((await health()).body.storage.reserveHeld).toBe(true);
    const { acknowledged, refusal } = await sendUntilRefused(QueueUrl!, 'first');
    expect(acknowledged.length).toBeGreaterThan(100);
    expect(refusal).toMatchObject({ name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } });
    expect(refusal.message).toMatch(/disk is full/);
    expect(await health()).toMatchObject({ status: 503, body: { status: 'unavailable', storage: { state: 'disk-full' } } });

    const [held] = (await sqs.send(new ReceiveMessageCommand({ QueueUrl, VisibilityTimeout: 60 }))).Messages!;
    await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl, ReceiptHandle: held!.ReceiptHandle, VisibilityTimeout: 0 }));
    const received = await drain(QueueUrl!);
    expect(received.sort()).toEqual([...acknowledged].sort());

    const back = await eventually(health, (answer) => answer.status === 200);
    expect(back.body).toMatchObject({ status: 'ok', storage: { state: 'ok', reserveHeld: true } });
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'after recovery' }));
    await sqs.send(new PurgeQueueCommand({ QueueUrl }));
  });

  it('drains a disk another program filled, and takes sends again once the disk has room', async () => {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'crowded' }));
    const acknowledged: string[] = [];
    for (let i = 0; i < 50; i++) {
      const body = `kept-${i} ${BODY}`;
      await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: body }));
      acknowledged.push(body);
    }
    // The other program fills the disk once; the shim finds out by itself, at its next look at the
    // disk or when a write of its own fails, which makes it give up its reserve. (Filling again and
    // again would also take the reserve: no store can drain a disk that another program keeps full.)
    const filler = fillDisk(join(seenFromOutside, 'filler'));
    const { acknowledged: beforeRefusal, refusal } = await sendUntilRefused(QueueUrl!, 'squeezed');
    acknowledged.push(...beforeRefusal);
    expect(refusal).toMatchObject({ name: 'ServiceUnavailable' });
    expect(await health()).toMatchObject({ status: 503, body: { storage: { state: 'disk-full' } } });

    const received: Message[] = [];
    while (received.length < acknowledged.length) {
      const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 120 }));
      for (const message of Messages ?? []) {
        const { Failed } = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl, Entries: [{ Id: 'one', ReceiptHandle: message.ReceiptHandle }] }));
        expect(Failed ?? []).toEqual([]);
        received.push(message);
      }
    }
    expect(received.map((message) => message.Body).sort()).toEqual([...acknowledged].sort());
    expect((await health()).body).toMatchObject({ status: 'unavailable', storage: { state: 'disk-full' } });

    unlinkSync(filler);
    expect(await eventually(health, (answer) => answer.status === 200)).toMatchObject({ body: { storage: { state: 'ok', reserveHeld: true } } });
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'room again' }));
  });

  it('drains a disk it filled and another program topped up, and takes sends again by handing the drained pages back to the disk', { timeout: 240_000 }, async () => {
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'topped-up' }));
    const { acknowledged, refusal } = await sendUntilRefused(QueueUrl!, 'own');
    expect(refusal).toMatchObject({ name: 'ServiceUnavailable' });
    fillDisk(join(seenFromOutside, 'filler'));
    const received = await drain(QueueUrl!);
    expect(received.sort()).toEqual([...acknowledged].sort());
    // The filler stays: only the pages the drain freed inside the database can make room, and the
    // sweeper hands them back to the disk, slowly on a disk this short, until the reserve is whole.
    expect(await eventually(health, (answer) => answer.status === 200, 200)).toMatchObject({ body: { storage: { state: 'ok', reserveHeld: true } } });
    await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'room again' }));
  });
});
