import { SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import pino from 'pino';
import { afterEach, expect, it } from 'vitest';
import { METRICS_PREFIX } from '../../edge-shim/src/observability/metrics.js';
import { parseExposition, sampleValue } from '../helpers/prometheus.js';
import { type TestShim, startTestShim, testEngine } from '../helpers/shim.js';
import { counts, createQueue, receive } from '../helpers/sqs-queues.js';
import { waitForState } from '../helpers/wait.js';

// The engine's own clock (no test clock given) over a wall clock that the test makes jump, as a
// site server's does when it boots with a wrong time and NTP sets it right. Elapsed time is real.

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

class WallClock {
  private offset = 0;
  readonly now = () => Date.now() + this.offset;
  move(ms: number): void {
    this.offset += ms;
  }
}

interface LogEntry {
  level: number;
  msg: string;
  jumpMs?: number;
}

const open: TestShim[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((shim) => shim.close()));
});

async function startOnWallClock(): Promise<{ t: TestShim; wall: WallClock; log: LogEntry[] }> {
  const wall = new WallClock();
  const log: LogEntry[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => log.push(JSON.parse(line) as LogEntry) });
  // No test clock: the engine's clock rules, following `wall`; sweeps run when the test says.
  const t = await startTestShim({ clock: undefined, wallClock: wall.now, logger, sweepIntervalMs: 3_600_000 });
  open.push(t);
  return { t, wall, log };
}

/** The wall clock moves on by steps too small to be jumps, the engine following it at each sweep. */
async function timePasses(t: TestShim, wall: WallClock, ms: number): Promise<void> {
  for (let moved = 0; moved < ms; moved += MINUTE) {
    wall.move(Math.min(MINUTE, ms - moved));
    await t.shim.service.sweep();
  }
}

async function expiredAtMetrics(t: TestShim, queue: string): Promise<number | undefined> {
  const families = parseExposition(await (await fetch(`${t.shim.adminUrl}/metrics`)).text());
  return sampleValue(families, `${METRICS_PREFIX}messages_expired_total`, { queue: queue.split('/').pop()! });
}

// The engine's own clock, which leaves out the jumps of the wall clock, is kept in SQLite; on
// PostgreSQL the engine's time is each node's wall clock.
const onSqlite = testEngine() === 'sqlite';

it.runIf(onSqlite)('expires nothing for a jump of the wall clock two days forward, logs it, and expires later sends on time', async () => {
  const { t, wall, log } = await startOnWallClock();
  const queue = await createQueue(t.sqs, 'jump', { MessageRetentionPeriod: '600' });
  await t.sqs.send(new SendMessageBatchCommand({ QueueUrl: queue, Entries: [{ Id: 'a', MessageBody: 'before a' }, { Id: 'b', MessageBody: 'before b' }] }));
  await timePasses(t, wall, 8 * MINUTE);

  wall.move(2 * DAY);
  await t.shim.service.sweep();
  expect(log.filter((entry) => entry.jumpMs !== undefined)).toEqual([expect.objectContaining({ level: 40, msg: expect.stringMatching(/jumped 28\d\d min forward/) })]);
  expect(await counts(t.sqs, queue)).toEqual({ visible: 2, notVisible: 0, delayed: 0 });
  expect(await expiredAtMetrics(t, queue)).toBeUndefined();

  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'after' }));
  // Ten minutes of real time for what was stored before the jump: past its retention.
  await timePasses(t, wall, 2 * MINUTE);
  expect(await counts(t.sqs, queue)).toEqual({ visible: 1, notVisible: 0, delayed: 0 });
  expect(await expiredAtMetrics(t, queue)).toBe(2);
  await timePasses(t, wall, 7 * MINUTE);
  expect(await counts(t.sqs, queue)).toEqual({ visible: 1, notVisible: 0, delayed: 0 });
  await timePasses(t, wall, MINUTE);
  expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).toEqual([]);
  expect(await expiredAtMetrics(t, queue)).toBe(3);
});

it.runIf(onSqlite)('keeps visibility timeouts their length when the wall clock goes back a day, and its times never go back', async () => {
  const { t, wall, log } = await startOnWallClock();
  const queue = await createQueue(t.sqs, 'jump-back');
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'x' }));
  const [taken] = await receive(t.sqs, queue, { VisibilityTimeout: 2, MessageSystemAttributeNames: ['SentTimestamp'] });
  expect(taken?.Body).toBe('x');

  wall.move(-DAY);
  await t.shim.service.sweep();
  expect(log.filter((entry) => entry.jumpMs !== undefined)).toEqual([expect.objectContaining({ level: 40, msg: expect.stringMatching(/went back 1440 min/) })]);
  // Visible again two seconds after the receive, not a day and two seconds.
  const again = await waitForState(async () => {
    const [message] = await receive(t.sqs, queue, { WaitTimeSeconds: 1 });
    if (!message) throw new Error('still invisible');
    return message;
  });
  expect(again.MessageId).toBe(taken!.MessageId);
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'later' }));
  const [later] = await receive(t.sqs, queue, { MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['SentTimestamp'] }).then((messages) => messages.filter((message) => message.Body === 'later'));
  expect(Number(later!.Attributes!.SentTimestamp)).toBeGreaterThanOrEqual(Number(taken!.Attributes!.SentTimestamp));
});
