import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ActivityCounter, type ActivitySummary } from '../../edge-shim/src/activity.js';
import { type TestShim, sqsClient, startTestShim } from '../helpers/shim.js';

// The once-a-minute activity line: what an operator sees at the default log level.

interface LogLine {
  readonly msg: string;
  readonly activity?: ActivitySummary;
}

/** A logger at info that keeps its lines and tells when one arrives. */
function capturingLogger() {
  const lines: LogLine[] = [];
  const events = new EventEmitter();
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as LogLine);
      events.emit('line');
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines, events };
}

/** Sums the counts of several activity lines. */
function total(lines: readonly LogLine[]) {
  const sum = { requests: {} as Record<string, number>, errors: {} as Record<string, number>, messages: { sent: 0, received: 0, deleted: 0 } };
  for (const { activity } of lines) {
    if (!activity) continue;
    for (const [name, count] of Object.entries(activity.requests)) sum.requests[name] = (sum.requests[name] ?? 0) + count;
    for (const [code, count] of Object.entries(activity.errors)) sum.errors[code] = (sum.errors[code] ?? 0) + count;
    sum.messages.sent += activity.messages.sent;
    sum.messages.received += activity.messages.received;
    sum.messages.deleted += activity.messages.deleted;
  }
  return sum;
}

/** A known mix of requests: 12 answered, 2 errors (one before its action was read), 5 messages through. */
async function workload(test: TestShim): Promise<void> {
  const { sqs } = test;
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'activity' }));
  for (let n = 0; n < 3; n++) await sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: `single ${n}` }));
  await sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries: [{ Id: 'a', MessageBody: 'batch a' }, { Id: 'b', MessageBody: 'batch b' }] }));
  const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  const [first, ...rest] = Messages;
  await sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: first!.ReceiptHandle }));
  await sqs.send(new DeleteMessageBatchCommand({ QueueUrl, Entries: rest.map((message, index) => ({ Id: `d${index}`, ReceiptHandle: message.ReceiptHandle })) }));
  await sqs.send(new GetQueueUrlCommand({ QueueName: 'no-such-queue' })).catch(() => {});
  const stranger = sqsClient(test.shim.url, { accessKeyId: 'AKIDSTRANGER', secretAccessKey: 'wrong' });
  await stranger.send(new GetQueueUrlCommand({ QueueName: 'activity' })).catch(() => {});
  stranger.destroy();
  expect(Messages).toHaveLength(5);
}

const EXPECTED = {
  requests: { CreateQueue: 1, SendMessage: 3, SendMessageBatch: 1, ReceiveMessage: 1, DeleteMessage: 1, DeleteMessageBatch: 1, GetQueueUrl: 1, unknown: 1 },
  errors: { QueueDoesNotExist: 1, InvalidClientTokenId: 1 },
  messages: { sent: 5, received: 5, deleted: 5 },
};

let test: TestShim | undefined;
afterEach(async () => {
  await test?.close();
  test = undefined;
});

describe('the activity line', () => {
  it('is logged each interval while the shim is used, and the lines add up to what was done', async () => {
    const log = capturingLogger();
    test = await startTestShim({ logger: log.logger, activityIntervalMs: 100 });
    await workload(test);
    const activityLines = () => log.lines.filter((line) => line.activity);
    // The work may straddle intervals: wait until the lines account for all 10 requests.
    const requestsLogged = () => Object.values(total(activityLines()).requests).reduce((sum, count) => sum + count, 0);
    await new Promise<void>((resolve) => {
      const check = () => requestsLogged() >= 10 && resolve();
      log.events.on('line', check);
      check();
    });
    expect(total(activityLines())).toEqual(EXPECTED);
    expect(activityLines()[0]!.msg).toMatch(/^activity: \d+ requests, \d+ errors; messages \d+ sent, \d+ received, \d+ deleted$/);
  });

  it('reports what is left when the shim stops, at the default interval of a minute', async () => {
    const log = capturingLogger();
    test = await startTestShim({ logger: log.logger });
    await workload(test);
    expect(log.lines.filter((line) => line.activity)).toEqual([]);
    await test.close();
    test = undefined;
    const activityLines = log.lines.filter((line) => line.activity);
    expect(activityLines).toHaveLength(1);
    expect(activityLines[0]!.activity).toEqual(EXPECTED);
    expect(activityLines[0]!.msg).toBe('activity: 10 requests, 2 errors; messages 5 sent, 5 received, 5 deleted');
    expect(log.lines.at(-1)!.msg).toBe('edge shim stopped');
  });
});

describe('ActivityCounter', () => {
  it('has nothing to report when nothing was asked, and starts again after each report', () => {
    const counter = new ActivityCounter();
    expect(counter.take()).toBeUndefined();
    counter.answered('ListQueues', {}, {});
    expect(counter.take()).toEqual({ requests: { ListQueues: 1 }, errors: {}, messages: { sent: 0, received: 0, deleted: 0 } });
    expect(counter.take()).toBeUndefined();
  });
});
