import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateQueueCommand, DeleteMessageBatchCommand, PurgeQueueCommand, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import pino from 'pino';
import { afterEach, describe, expect, it, onTestFailed } from 'vitest';
import { type ShimProcess, spawnShim } from '../../testkit/shim-process.js';
import { sqsClient, startTestShim } from '../helpers/shim.js';
import { counts, createQueue, receive } from '../helpers/sqs-queues.js';
import { eventually } from '../helpers/wait.js';

// A full disk without luck. The shim fills a small disk (a tmpfs of 24 MiB, so the reserve is its
// tenth, 2.4 MiB) through its own sends alone, from eight producers at once with 64 KiB messages,
// until it refuses them; then every receive and every delete that drains it succeeds at the first
// try, and the first send after the drain is taken. It fills the disk again, and a purge at the
// first try empties it; sends are taken again once the sweeper has reclaimed what was purged. The
// figures of each run are logged (the come from 20 runs in a row on a loaded machine).
// Then a group that runs out of space: its send is refused and the delete beside it goes through.

const DISK_BYTES = 24 * 2 ** 20;
const PRODUCERS = 8;
const BODY = 'x'.repeat(64 * 1024 - 32);

const mountReason = (() => {
  try {
    execFileSync('unshare', ['-rm', 'sh', '-c', 'mount -t tmpfs -o size=1m tmpfs /mnt'], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return `cannot mount a tmpfs in a mount namespace of its own (unshare -rm): ${String((error as { stderr?: unknown }).stderr ?? error).trim()}`;
  }
})();

/** Sends from every producer until each is refused; the bodies acknowledged. */
async function fillThroughTheShim(sqs: SQSClient, queueUrl: string): Promise<string[]> {
  const acknowledged: string[] = [];
  await Promise.all(
    Array.from({ length: PRODUCERS }, async (_, producer) => {
      for (let i = 0; ; i++) {
        const body = `${producer}-${i} ${BODY}`;
        try {
          await sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body }));
          acknowledged.push(body);
        } catch (error) {
          expect(error).toMatchObject({ name: 'ServiceUnavailable', message: expect.stringMatching(/disk is full/) });
          return;
        }
      }
    }),
  );
  return acknowledged;
}

/** Receives and deletes until the queue is empty, each call at its first try; the bodies received. */
async function drain(sqs: SQSClient, queueUrl: string): Promise<string[]> {
  const bodies: string[] = [];
  for (;;) {
    const { Messages } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 300 }));
    if (!Messages) return bodies;
    const Entries = Messages.map((message, index) => ({ Id: `m${index}`, ReceiptHandle: message.ReceiptHandle }));
    const { Failed } = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries }));
    expect(Failed ?? []).toEqual([]);
    bodies.push(...Messages.map((message) => message.Body!));
  }
}

async function health(url: string): Promise<{ status: number; body: { storage: { state: string; reserveHeld: boolean } } }> {
  const response = await fetch(`${url}/health`);
  return { status: response.status, body: (await response.json()) as never };
}

describe('a disk filled through the shim', () => {
  let dir: string | undefined;
  let shim: ShimProcess | undefined;
  let sqs: SQSClient | undefined;
  afterEach(async () => {
    sqs?.destroy();
    await shim?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.skipIf(mountReason !== undefined)('drains by receives and deletes, and by a purge, each at its first try, and takes sends again', { timeout: 300_000 }, async () => {
    dir = mkdtempSync(join(tmpdir(), 'holdfast-full-'));
    // The shim's log, removed at the end of the test: kept when it fails.
    const logFile = `${dir}.log`;
    onTestFailed(() => console.log(`the shim's log: ${logFile}`));
    shim = await spawnShim({
      dbFile: join(dir, 'shim.db'),
      wrapper: ['unshare', '-rm', 'sh', '-c', `mount -t tmpfs -o size=${DISK_BYTES} tmpfs "$0" && exec "$@"`, dir],
      logFile,
    });
    // One attempt per call: a request that fails is seen failing, not retried away by the SDK.
    sqs = sqsClient(shim.url);
    const drainedQueue = (await sqs.send(new CreateQueueCommand({ QueueName: 'drained' }))).QueueUrl!;
    const purgedQueue = (await sqs.send(new CreateQueueCommand({ QueueName: 'purged' }))).QueueUrl!;

    // The disk holds about 240 of them; sends refused while the WAL held room a checkpoint could
    // give back stopped each fill anywhere from 140 to 240.
    const stored = await fillThroughTheShim(sqs, drainedQueue);
    expect(stored.length, 'messages acknowledged before the disk was full').toBeGreaterThan(200);
    expect(await health(shim.url)).toMatchObject({ status: 503, body: { storage: { state: 'disk-full', reserveHeld: true } } });
    const drained = await drain(sqs, drainedQueue);
    const drainedAt = performance.now();
    expect(drained.length).toBe(stored.length);
    expect(drained.sort()).toEqual(stored.sort());
    expect(await counts(sqs, drainedQueue)).toEqual({ visible: 0, notVisible: 0, delayed: 0 });
    // The drain made room: the very next send is taken (the first of the fill for the purge).
    await sqs.send(new SendMessageCommand({ QueueUrl: purgedQueue, MessageBody: 'first after the drain' }));
    const resumedAfterDrainMs = performance.now() - drainedAt;

    const storedForPurge = 1 + (await fillThroughTheShim(sqs, purgedQueue)).length;
    expect(storedForPurge, 'messages acknowledged before the disk was full again').toBeGreaterThan(200);
    expect(await health(shim.url)).toMatchObject({ status: 503, body: { storage: { state: 'disk-full', reserveHeld: true } } });
    await sqs.send(new PurgeQueueCommand({ QueueUrl: purgedQueue }));
    const purgedAt = performance.now();
    expect(await receive(sqs, purgedQueue)).toEqual([]);
    // The sweeper deletes what the purge hid, in slices: sends come back once it has made room.
    await eventually(() => health(shim!.url), (answer) => answer.status === 200);
    await sqs.send(new SendMessageCommand({ QueueUrl: drainedQueue, MessageBody: 'first after the purge' }));
    const resumedAfterPurgeMs = performance.now() - purgedAt;
    expect(await counts(sqs, purgedQueue)).toEqual({ visible: 0, notVisible: 0, delayed: 0 });
    expect((await receive(sqs, drainedQueue)).map((message) => message.Body)).toEqual(['first after the purge']);

    console.log(
      `full disk: ${stored.length} stored, ${drained.length} drained, a send taken ${resumedAfterDrainMs.toFixed(0)} ms after the drain; ` +
        `${storedForPurge} stored, purged, a send taken ${resumedAfterPurgeMs.toFixed(0)} ms after the purge`,
    );
    rmSync(logFile);
  });
  if (mountReason) it.skip(mountReason, () => {});
});

describe('a group that runs out of space', () => {
  it('refuses its send, and runs the delete beside it again in the room the reserve gave up made', async () => {
    const logged: Array<{ msg: string }> = [];
    const t = await startTestShim({ logger: pino({ level: 'info' }, { write: (line: string) => logged.push(JSON.parse(line) as { msg: string }) }) });
    try {
      const queueUrl = await createQueue(t.sqs, 'squeezed');
      await t.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'to delete' }));
      const [message] = await receive(t.sqs, queueUrl);
      const call = (action: string, input: Record<string, unknown>) => t.shim.service.call(action, input, { baseUrl: t.shim.url });
      // SQLite may not grow the database any more: to it, as good as a full disk.
      await t.shim.sqlite!.transact('', function* (context) {
        context.db.pragma(`max_page_count = ${context.db.pragma('page_count', { simple: true }) as number}`);
      });
      // Called together, they run in one group, which the send's growth fails.
      const [send, deletion] = await Promise.allSettled([
        call('SendMessage', { QueueUrl: queueUrl, MessageBody: 'x'.repeat(200_000) }),
        call('DeleteMessage', { QueueUrl: queueUrl, ReceiptHandle: message!.ReceiptHandle }),
      ]);
      expect(send).toMatchObject({ status: 'rejected', reason: { code: 'ServiceUnavailable' } });
      expect(deletion).toMatchObject({ status: 'fulfilled' });
      expect(logged.map((line) => line.msg)).toContain('the disk is full: gave up the reserve file so that receives and deletes can go on; sends are refused');
      expect(t.shim.sqlite!.engine.storedMessages(new URL(queueUrl).pathname.split('/').pop()!)).toBe(0);
      await t.shim.sqlite!.transact('', function* (context) {
        context.db.pragma('max_page_count = 4294967294');
      });
    } finally {
      await t.close();
    }
  });
});
