import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateQueueCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../testkit/fault-proxy.js';
import { type ShimProcess, spawnShim } from '../../testkit/shim-process.js';
import { emulator } from '../helpers/emulator.js';
import { eventually } from '../helpers/wait.js';
import { FAST_HYBRID, type HybridTest, drainRegion, startHybridTest } from '../helpers/hybrid.js';
import { sqsClient } from '../helpers/shim.js';

// A replay interrupted: by a restart of the shim during an outage, by a SIGKILL in the middle of a
// replay, and by a new outage in the middle of one. Every time the region ends up with every
// message once, each FIFO group in order.

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((item) => item.close()));
});

const unique = (prefix: string) => `${prefix}-${randomUUID().slice(0, 8)}`;


/** Sends `count` messages of one group in batches of 10: `m0`, `m1`, ... */
async function sendInOrder(sqs: SQSClient, QueueUrl: string, count: number): Promise<string[]> {
  const bodies = Array.from({ length: count }, (_, index) => `m${index}`);
  for (let start = 0; start < count; start += 10) {
    const Entries = bodies.slice(start, start + 10).map((MessageBody, index) => ({ Id: `e${index}`, MessageBody, MessageGroupId: 'only' }));
    await sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries }));
  }
  return bodies;
}

const fifo = { FifoQueue: 'true', ContentBasedDeduplication: 'true' };

// Each of these goes through two outages and two recoveries against moto, 200 messages replayed at
// 100 a second: 20-30 s on a loaded 2-core machine, so they are given longer than the default 30 s.
describe('a replay interrupted', { timeout: 120_000 }, () => {
  it('keeps the backlog through a restart of the shim during an outage', async () => {
    let t: HybridTest = await startHybridTest();
    open.push({ close: () => t.close() });
    const name = `${unique('restarted')}.fifo`;
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: fifo }));
    t.proxy.setMode('blackhole');
    await eventually(async () => (await t.shim.status()).mode, (mode) => mode === 'offline');
    const sent = await sendInOrder(t.sqs, QueueUrl!, 30);
    t = await t.restart();
    expect(await t.shim.status()).toMatchObject({ mode: 'offline', backlog: 30 });
    t.proxy.setMode('pass');
    await eventually(() => t.shim.status(), (status) => status.mode === 'online' && status.backlog === 0);
    expect((await drainRegion(t.region, name)).map((message) => message.Body)).toEqual(sent);
  });

  it('goes back offline when the region fails again during a replay, and finishes it later without doubling', async () => {
    const t = await startHybridTest({ replayRate: 100 });
    open.push(t);
    const name = `${unique('cut-again')}.fifo`;
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: fifo }));
    t.proxy.setMode('blackhole');
    await eventually(async () => (await t.shim.status()).mode, (mode) => mode === 'offline');
    const sent = await sendInOrder(t.sqs, QueueUrl!, 200);
    t.proxy.setMode('pass');
    await eventually(() => t.shim.status(), (status) => status.mode === 'replaying' && status.replay!.replayed >= 20);
    // Answers lost on the way back: batches the region took are sent again after the outage.
    t.proxy.setMode({ kind: 'lost-answers', then: 'reset' });
    await eventually(async () => (await t.shim.status()).mode, (mode) => mode === 'offline');
    expect((await t.shim.status()).backlog).toBeGreaterThan(0);
    t.proxy.setMode('pass');
    await eventually(() => t.shim.status(), (status) => status.mode === 'online' && status.backlog === 0);
    expect((await drainRegion(t.region, name)).map((message) => message.Body)).toEqual(sent);
  });
  it('hands back at once what it had taken ahead when the region fails during a replay of many groups, and keeps each group in order', async () => {
    const t = await startHybridTest({ replayRate: 100 });
    open.push(t);
    const name = `${unique('many-groups')}.fifo`;
    const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: fifo }));
    t.proxy.setMode('blackhole');
    await eventually(async () => (await t.shim.status()).mode, (mode) => mode === 'offline');
    // 8 groups of 25, interleaved: every batch holds messages of several groups.
    const bodies = Array.from({ length: 200 }, (_, index) => ({ group: `g${index % 8}`, body: `m${index}` }));
    for (let start = 0; start < bodies.length; start += 10) {
      const Entries = bodies.slice(start, start + 10).map(({ group, body }, index) => ({ Id: `e${index}`, MessageBody: body, MessageGroupId: group }));
      await t.sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries }));
    }
    t.proxy.setMode('pass');
    await eventually(() => t.shim.status(), (status) => status.mode === 'replaying' && status.replay!.replayed >= 20);
    t.proxy.setMode({ kind: 'lost-answers', then: 'reset' });
    await eventually(async () => (await t.shim.status()).mode, (mode) => mode === 'offline');
    t.proxy.setMode('pass');
    // Messages taken ahead and left invisible would hold their groups for a minute, past the test's timeout.
    await eventually(() => t.shim.status(), (status) => status.mode === 'online' && status.backlog === 0);
    const received = await drainRegion(t.region, name);
    const byGroup = (messages: Array<{ group: string | undefined; body: string | undefined }>) => {
      const groups = new Map<string, string[]>();
      for (const { group, body } of messages) groups.set(group!, [...(groups.get(group!) ?? []), body!]);
      return groups;
    };
    expect(byGroup(received.map((message) => ({ group: message.Attributes?.MessageGroupId, body: message.Body })))).toEqual(byGroup(bodies));
  });
});

describe('a shim killed during a replay', () => {
  let dir: string;
  let shim: ShimProcess | undefined;
  let proxy: FaultProxy;
  afterEach(async () => {
    await shim?.stop('SIGKILL');
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('resumes the replay where it stopped after a SIGKILL and a restart, without loss or duplicates', async () => {
    const aws = emulator();
    dir = mkdtempSync(join(tmpdir(), 'holdfast-replay-kill-'));
    proxy = await FaultProxy.start({ target: new URL(aws.endpoint).host });
    const start = () =>
      spawnShim({
        dbFile: join(dir, 'edge.db'),
        args: [
          ['--upstream', `http://${proxy.address}`],
          ['--upstream-region', aws.region],
          ['--upstream-timeout', `${FAST_HYBRID.upstreamTimeoutMs}ms`],
          ['--probe-interval', `${FAST_HYBRID.probeIntervalMs}ms`],
          ['--probe-timeout', `${FAST_HYBRID.probeTimeoutMs}ms`],
          ['--breaker-failures', String(FAST_HYBRID.breakerFailures)],
          ['--recovery-probes', String(FAST_HYBRID.recoveryProbes)],
          ['--recovery-time', `${FAST_HYBRID.recoveryMs}ms`],
          ['--replay-rate', '50'],
          ['--disk-reserve', '1MiB'],
        ].flat(),
        env: { AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey },
      });
    const status = async () => (await (await fetch(`${shim!.adminUrl}/status`)).json()) as { mode: string; backlog: number; replay: { replayed: number } };
    shim = await start();
    const sqs = sqsClient(shim.url);
    const name = `${unique('killed')}.fifo`;
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: fifo }));
    proxy.setMode('blackhole');
    await eventually(status, (current) => current.mode === 'offline');
    const sent = await sendInOrder(sqs, QueueUrl!, 150);
    sqs.destroy();
    proxy.setMode('pass');
    await eventually(status, (current) => current.replay.replayed >= 10);
    await shim.stop('SIGKILL');
    shim = await start();
    await eventually(status, (current) => current.mode === 'online' && current.backlog === 0);
    const region = new (await import('@aws-sdk/client-sqs')).SQSClient(aws);
    try {
      expect((await drainRegion(region, name)).map((message) => message.Body)).toEqual(sent);
    } finally {
      region.destroy();
    }
  });
});
