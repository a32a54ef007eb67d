import { ChangeMessageVisibilityCommand, DeleteMessageCommand, DeleteQueueCommand, ReceiveMessageCommand, SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ReplayStore } from '../../edge-shim/src/hybrid/replay/store.js';
import { sqliteSite } from '../../edge-shim/src/hybrid/site/sqlite-site.js';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { createQueue, receive } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim, testEngine } from '../helpers/shim.js';

// Long polling (WaitTimeSeconds, or the queue's ReceiveMessageWaitTimeSeconds): a receive that finds
// nothing waits, and answers as soon as a message can be had, not at the end of its wait. The waits
// here are 20 s and each test is given far less, so a receive that only answered at its deadline
// fails by the test's timeout; none of them sleeps more than a second or so of real time. A send
// wakes one waiting receive per message, not every one: the tests count the tries receives make.
const LIVENESS_MS = 8_000;

let t: TestShim;
beforeAll(async () => {
  // No background sweeps nor status samples for the page's history: the tests count the transactions of long polls.
  t = await startTestShim({ sweepIntervalMs: 3_600_000, historyIntervalMs: 3_600_000 });
});
afterAll(() => t?.close());

/** Resolves once `count` receives are waiting in the shim (the long poll has really started). */
async function receivesWaiting(count: number): Promise<void> {
  while (t.shim.service.waitingReceives < count) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** Counts the tries receives make while `work` runs: each round of a long poll is one. */
async function countTries<T>(work: () => Promise<T>): Promise<{ result: T; tries: number }> {
  const before = t.shim.service.receiveTries;
  const result = await work();
  return { result, tries: t.shim.service.receiveTries - before };
}

/** Counts the transactions the shim runs while `work` runs. */
async function countTransactions<T>(work: () => Promise<T>): Promise<{ result: T; transactions: number }> {
  const service = t.shim.service;
  const original = service.transact.bind(service);
  let transactions = 0;
  service.transact = (baseUrl, run, holdForReplay) => {
    transactions += 1;
    return original(baseUrl, run, holdForReplay);
  };
  try {
    return { result: await work(), transactions };
  } finally {
    service.transact = original;
  }
}

const longPoll = (queueUrl: string, extra: Record<string, unknown> = {}) =>
  t.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 20, ...extra }));

it('answers at once when a message is there', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll');
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'ready' }));
  const { Messages } = await longPoll(queue);
  expect(Messages!.map((message) => message.Body)).toEqual(['ready']);
});

it('wakes as soon as a message is sent during the wait', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll');
  const polling = longPoll(queue);
  await receivesWaiting(1);
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'arrived' }));
  const { Messages } = await polling;
  expect(Messages!.map((message) => message.Body)).toEqual(['arrived']);
});

it('wakes one of the waiting receives of the queue for a message, and it gets the message', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll');
  const polls = [longPoll(queue, { WaitTimeSeconds: 1 }), longPoll(queue, { WaitTimeSeconds: 1 })];
  await receivesWaiting(2);
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'only one' }));
  const results = await Promise.all(polls);
  expect(results.flatMap((result) => result.Messages ?? []).map((message) => message.Body)).toEqual(['only one']);
});

it('uses the queue ReceiveMessageWaitTimeSeconds when the request has no WaitTimeSeconds', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll', { ReceiveMessageWaitTimeSeconds: '20' });
  const polling = t.sqs.send(new ReceiveMessageCommand({ QueueUrl: queue }));
  await receivesWaiting(1);
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'by default' }));
  expect((await polling).Messages!.map((message) => message.Body)).toEqual(['by default']);
  // WaitTimeSeconds 0 in the request overrides the queue's default: a short poll.
  expect(await receive(t.sqs, queue, { WaitTimeSeconds: 0 })).toEqual([]);
});

it('wakes when a delayed message becomes visible', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll');
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'delayed', DelaySeconds: 1 }));
  const { result, tries } = await countTries(() => longPoll(queue));
  expect(result.Messages!.map((message) => message.Body)).toEqual(['delayed']);
  // One round finds nothing and sleeps until the message shows, the next one gets it (a timer may
  // fire a millisecond early and cost one round more); a busy loop would run hundreds.
  expect(tries).toBeGreaterThanOrEqual(2);
  expect(tries).toBeLessThanOrEqual(3);
});

it('wakes when a message sent with a delay during the wait becomes visible', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll');
  const polling = longPoll(queue);
  await receivesWaiting(1);
  // The receive went to sleep with nothing invisible to wait for: the send must tell it when to look.
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'delayed later', DelaySeconds: 1 }));
  expect((await polling).Messages!.map((message) => message.Body)).toEqual(['delayed later']);
});

it('wakes when the visibility timeout of a message in flight runs out', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll');
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'retry me' }));
  await receive(t.sqs, queue, { VisibilityTimeout: 1 });
  const { Messages } = await longPoll(queue, { MessageSystemAttributeNames: ['ApproximateReceiveCount'] });
  expect(Messages!.map((message) => message.Attributes!.ApproximateReceiveCount)).toEqual(['2']);
});

it('wakes when ChangeMessageVisibility makes a message visible sooner', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll');
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'released' }));
  const [message] = await receive(t.sqs, queue, { VisibilityTimeout: 600 });
  const polling = longPoll(queue);
  await receivesWaiting(1);
  await t.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue, ReceiptHandle: message!.ReceiptHandle, VisibilityTimeout: 0 }));
  expect((await polling).Messages!.map((received) => received.Body)).toEqual(['released']);
});

it('wakes when deleting a message unlocks its FIFO group', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll', { ContentBasedDeduplication: 'true' }, true);
  for (const body of ['first', 'second']) await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageGroupId: 'g', MessageBody: body }));
  const [first] = await receive(t.sqs, queue);
  const polling = longPoll(queue);
  await receivesWaiting(1);
  await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: first!.ReceiptHandle }));
  expect((await polling).Messages!.map((message) => message.Body)).toEqual(['second']);
});

it('does not sleep through a message committed while its look at the queue was under way', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll');
  // Holds the receive's first read after it has looked (on PostgreSQL a read is a round trip, and a
  // send may commit and wake the queue's waiters meanwhile): the send below wakes no waiter, since the
  // receive is not waiting yet, so only the queue's count of wake-ups can tell the receive to look again.
  const engine = t.shim.service.engine;
  const read = engine.read;
  let release: (() => void) | undefined;
  engine.read = async function heldOnce(this: typeof engine, work) {
    engine.read = read;
    const value = await read.call(this, work);
    await new Promise<void>((resume) => (release = resume));
    return value;
  } as typeof read;
  try {
    const polling = longPoll(queue);
    while (!release) await new Promise((resolve) => setTimeout(resolve, 5));
    await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'during the look' }));
    release();
    expect((await polling).Messages!.map((message) => message.Body)).toEqual(['during the look']);
  } finally {
    engine.read = read;
  }
});

it('answers with no messages at the end of the wait, without polling in between', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll');
  // A message in flight for long and one delayed for long must not make the receive spin.
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'in flight' }));
  await receive(t.sqs, queue, { VisibilityTimeout: 3600 });
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'later', DelaySeconds: 900 }));
  const { result: answer, tries } = await countTries(() => countTransactions(() => longPoll(queue, { WaitTimeSeconds: 1 })));
  expect(answer.result.Messages ?? []).toEqual([]);
  expect(tries).toBeGreaterThanOrEqual(2);
  expect(tries).toBeLessThanOrEqual(3);
  // Nothing could be taken at any try: none of them needed a transaction.
  expect(answer.transactions).toBe(0);
});

it('wakes one waiting receive per message sent, however many wait', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll');
  // Fewer than the SDK's 50 sockets, so that the sends below find one.
  const waiting = 30;
  const polls = Array.from({ length: waiting }, () => longPoll(queue, { WaitTimeSeconds: 20 }));
  await receivesWaiting(waiting);
  const { tries } = await countTries(async () => {
    await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'one for fifty' }));
    await receivesWaiting(waiting - 1);
  });
  // The receive woken took the message; none of the others looked.
  expect(tries).toBe(1);
  const done = Promise.all(polls);
  for (let i = 1; i < waiting; i++) await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: `more ${i}` }));
  const bodies = (await done).flatMap((result) => result.Messages ?? []).map((message) => message.Body);
  expect(bodies).toHaveLength(waiting);
  expect(new Set(bodies).size).toBe(waiting);
});

it('shares a batch out among waiting receives: each that takes a full batch hands the wake-up on', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll');
  const polls = Array.from({ length: 5 }, () => longPoll(queue, { MaxNumberOfMessages: 2 }));
  await receivesWaiting(5);
  const Entries = Array.from({ length: 10 }, (_, index) => ({ Id: `m${index}`, MessageBody: `m${index}` }));
  await t.sqs.send(new SendMessageBatchCommand({ QueueUrl: queue, Entries }));
  const taken = (await Promise.all(polls)).map((result) => result.Messages?.length ?? 0);
  expect(taken).toEqual([2, 2, 2, 2, 2]);
});

it('keeps long polls on a locked FIFO group asleep, and a delete wakes one of them', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll', { ContentBasedDeduplication: 'true' }, true);
  for (const body of ['held', 'next', 'after']) await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageGroupId: 'only', MessageBody: body }));
  const [held] = await receive(t.sqs, queue, { VisibilityTimeout: 600 });
  // Receives that find the only group locked answer from one read, without a transaction.
  const shortPolls = await countTransactions(async () => {
    for (let i = 0; i < 20; i++) expect(await receive(t.sqs, queue)).toEqual([]);
  });
  expect(shortPolls.transactions).toBe(0);
  const polls = Array.from({ length: 8 }, () => longPoll(queue));
  const answers = polls.map((poll, index) => poll.then((result) => ({ index, messages: result.Messages ?? [] })));
  await receivesWaiting(8);
  const { tries } = await countTries(async () => {
    await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: held!.ReceiptHandle }));
    await receivesWaiting(7);
  });
  expect(tries).toBe(1);
  const first = await Promise.race(answers);
  expect(first.messages.map((message) => message.Body)).toEqual(['next']);
  await t.sqs.send(new DeleteMessageCommand({ QueueUrl: queue, ReceiptHandle: first.messages[0]!.ReceiptHandle }));
  await receivesWaiting(6);
  // The poll woken leaves the waiting ones before its receive has run: wait for its answer, or the
  // queue's deletion below may reach that receive first.
  const second = await Promise.race(answers.filter((_answer, index) => index !== first.index));
  expect(second.messages.map((message) => message.Body)).toEqual(['after']);
  // Deleting the queue ends the six polls still waiting, with the error of a queue that is gone.
  await t.sqs.send(new DeleteQueueCommand({ QueueUrl: queue }));
  const results = await Promise.allSettled(polls);
  // In the order of the polls, not of their answers: 'next' was answered first (above).
  const bodies = results.flatMap((result) => (result.status === 'fulfilled' ? (result.value.Messages ?? []) : [])).map((message) => message.Body);
  expect(bodies.sort()).toEqual(['after', 'next']);
  expect(results.filter((result) => result.status === 'rejected').map((result) => (result.reason as Error).name)).toEqual(Array(6).fill('QueueDoesNotExist'));
});

it('stops waiting when the client goes away', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'poll');
  const controller = new AbortController();
  const polling = t.sqs.send(new ReceiveMessageCommand({ QueueUrl: queue, WaitTimeSeconds: 20 }), { abortSignal: controller.signal });
  await receivesWaiting(1);
  controller.abort();
  await expect(polling).rejects.toThrow();
  while (t.shim.service.waitingReceives > 0) await new Promise((resolve) => setTimeout(resolve, 5));
  // The message sent afterwards is not taken by the abandoned receive.
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'still here' }));
  expect((await receive(t.sqs, queue)).map((message) => message.Body)).toEqual(['still here']);
});

it('rejects a WaitTimeSeconds outside 0 to 20', async () => {
  const queue = await createQueue(t.sqs, 'poll');
  for (const seconds of [-1, 21]) {
    await expectSqsError(t.sqs.send(new ReceiveMessageCommand({ QueueUrl: queue, WaitTimeSeconds: seconds })), { name: 'InvalidParameterValue' });
  }
});

// The hybrid edge stores a send the region may have taken (its answer never came) held for the
// replay: no receive at the edge may take it, or anything after it in its FIFO group; the replay's
// take alone does, and what it gives back is held again.
// The replay's store is checked here on SQLite's (its PostgreSQL tables are the hybrid edge's,
// which test/hybrid runs on both engines); sends held for the replay on both.
const onSqlite = testEngine() === 'sqlite';
const sendHeld = (queueUrl: string, body: string, extra: Record<string, unknown> = {}) =>
  t.shim.service.sendHeldForReplay('SendMessage', { QueueUrl: queueUrl, MessageBody: body, ...extra }, { baseUrl: new URL(queueUrl).origin });
const replayStore = () => {
  const site = sqliteSite(t.shim.sqlite!.engine, 'test', Date.now);
  return new ReplayStore(t.shim.sqlite!, (context) => site.ledger(context));
};
const queueName = (queueUrl: string) => decodeURIComponent(queueUrl.split('/').pop()!);
const takeForReplay = (queueUrl: string) => replayStore().take(queueName(queueUrl), 10, 60);

it.runIf(onSqlite)('never hands out a message held for the replay but to the replay, and a long poll sleeps through it', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'held');
  await sendHeld(queue, 'held');
  const { result, tries } = await countTries(() => longPoll(queue, { WaitTimeSeconds: 1 }));
  expect(result.Messages ?? []).toEqual([]);
  // A few tries, as for any empty wait (see above), not hundreds: a held message sets no timer that fires at once.
  expect(tries).toBeLessThanOrEqual(3);
  const [taken] = await takeForReplay(queue);
  expect(taken!.body).toBe('held');
  // The replay could not hand it over and gives it back: held again, not visible at the edge.
  await t.sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queue, ReceiptHandle: taken!.receipt, VisibilityTimeout: 0 }));
  expect(await receive(t.sqs, queue)).toEqual([]);
  expect((await takeForReplay(queue)).map((message) => message.body)).toEqual(['held']);
});

it.runIf(onSqlite)('holds for the replay a message whose replay got no answer: given back, no receive at the edge takes it, the replay does', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'unanswered');
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'maybe in the region' }));
  const store = replayStore();
  const taken = await store.take(queueName(queue), 10, 60);
  // The batch got no answer: the region may run it already, and a fallback agent must not run it too.
  await store.unanswered(taken);
  await store.giveBack(queueName(queue), taken);
  expect(await receive(t.sqs, queue)).toEqual([]);
  expect((await takeForReplay(queue)).map((message) => message.body)).toEqual(['maybe in the region']);
});

it.runIf(onSqlite)('keeps a FIFO group behind a message held for the replay, and only that group', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'held', { ContentBasedDeduplication: 'true' }, true);
  await sendHeld(queue, 'held first', { MessageGroupId: 'g' });
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'then this', MessageGroupId: 'g' }));
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'other group', MessageGroupId: 'k' }));
  expect((await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).map((message) => message.Body)).toEqual(['other group']);
  expect((await takeForReplay(queue)).map((message) => message.body)).toEqual(['held first', 'then this']);
});

it('releases a queue\'s messages in flight at once when their consumers are gone, and wakes a waiting receive; delayed and held messages stay', { timeout: LIVENESS_MS }, async () => {
  const queue = await createQueue(t.sqs, 'orphaned');
  await t.sqs.send(new SendMessageBatchCommand({ QueueUrl: queue, Entries: ['a', 'b'].map((body) => ({ Id: body, MessageBody: body })) }));
  expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10, VisibilityTimeout: 3600 })).toHaveLength(2);
  await t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: 'later', DelaySeconds: 900 }));
  await sendHeld(queue, 'held');
  const polling = longPoll(queue, { MaxNumberOfMessages: 10 });
  await receivesWaiting(1);
  expect(await t.shim.service.releaseInFlight(decodeURIComponent(queue.split('/').pop()!))).toBe(2);
  expect((await polling).Messages!.map((message) => message.Body).sort()).toEqual(['a', 'b']);
});
