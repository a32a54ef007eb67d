import { randomUUID } from 'node:crypto';
import { CreateQueueCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import type { StartOptions } from '../../edge-shim/src/shim.js';
import { eventually } from '../helpers/wait.js';
import { type HybridTest, drainRegion, startHybridTest } from '../helpers/hybrid.js';

// A backlog stored at the edge during an outage that outlasts its queue's MessageRetentionPeriod:
// kept and replayed by default (its retention starts again in the region), expired as SQS's clock
// would have it with --backlog-retention sqs, and then counted, logged and shown.

let t: HybridTest | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

const DAY = 24 * 60 * 60_000;

interface LogEntry {
  level: number;
  queue?: string;
  expired?: number;
}

/** A queue with a minute's retention, and five messages stored in it at the edge, a day ago by the edge's clock. */
async function backlogADayOld(options: StartOptions): Promise<{ name: string; bodies: string[]; log: LogEntry[] }> {
  const log: LogEntry[] = [];
  t = await startHybridTest({ ...options, logger: pino({ level: 'info' }, { write: (line: string) => log.push(JSON.parse(line) as LogEntry) }) });
  const name = `retention-${randomUUID().slice(0, 8)}`;
  const { QueueUrl } = await t.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { MessageRetentionPeriod: '60' } }));
  t.proxy.setMode('blackhole');
  await eventually(async () => (await t!.shim.status()).mode, (mode) => mode === 'offline');
  const bodies = ['a', 'b', 'c', 'd', 'e'];
  await t.sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries: bodies.map((body) => ({ Id: body, MessageBody: body })) }));
  t.clock.advance(DAY);
  await t.shim.service.sweep();
  return { name, bodies, log };
}

const queueOf = async (name: string) => (await t!.shim.status()).queues.find((queue) => queue.name === name)!;

it('keeps the backlog past its retention period by default, and replays it', async () => {
  const { name, bodies, log } = await backlogADayOld({});
  expect(await queueOf(name)).toMatchObject({ backlog: 5, local: { visible: 5 }, expired: 0 });
  t!.proxy.setMode('pass');
  await eventually(() => t!.shim.status(), (status) => status.mode === 'online' && status.backlog === 0);
  expect((await drainRegion(t!.region, name)).map((message) => message.Body).sort()).toEqual(bodies);
  expect(log.filter((entry) => entry.expired !== undefined)).toEqual([]);
});

it('expires the backlog past its retention period with --backlog-retention sqs, counting it and logging a warning', async () => {
  const { name, log } = await backlogADayOld({ backlogRetention: 'sqs' });
  expect(await queueOf(name)).toMatchObject({ backlog: 0, local: { visible: 0 }, expired: 5 });
  expect(log.filter((entry) => entry.expired !== undefined)).toEqual([expect.objectContaining({ level: 40, queue: name, expired: 5 })]);
  t!.proxy.setMode('pass');
  await eventually(async () => (await t!.shim.status()).mode, (mode) => mode === 'online');
  expect(await drainRegion(t!.region, name)).toEqual([]);
});
