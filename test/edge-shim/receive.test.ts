import { createHash } from 'node:crypto';
import {
  GetQueueAttributesCommand,
  type MessageAttributeValue,
  type QueueAttributeName,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../edge-shim/src/sqs/database.js';
import { DeduplicationStore } from '../../edge-shim/src/sqs/deduplication.js';
import { givenClock } from '../../edge-shim/src/sqs/engine-clock.js';
import { MessageStore, retentionCutoff } from '../../edge-shim/src/sqs/messages.js';
import { ReceiveAttemptStore } from '../../edge-shim/src/sqs/receive-attempts.js';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { counts, createQueue, receive } from '../helpers/sqs-queues.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// ReceiveMessage per the SQS API Reference: its parameters and their bounds, the system attributes
// (AttributeNames / MessageSystemAttributeNames) and message attributes it returns, the approximate
// counts, and the query plans that keep a receive as cheap on a queue of millions as on an empty one.

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t?.close());

const sendOne = (queue: string, body: string, extra: Record<string, unknown> = {}) =>
  t.sqs.send(new SendMessageCommand({ QueueUrl: queue, MessageBody: body, ...extra }));

describe('parameters', () => {
  it('rejects MaxNumberOfMessages, VisibilityTimeout and WaitTimeSeconds out of bounds', async () => {
    const queue = await createQueue(t.sqs, 'receive');
    for (const input of [
      { MaxNumberOfMessages: 0 },
      { MaxNumberOfMessages: 11 },
      { VisibilityTimeout: -1 },
      { VisibilityTimeout: 43_201 },
      { WaitTimeSeconds: 21 },
    ]) {
      await expectSqsError(t.sqs.send(new ReceiveMessageCommand({ QueueUrl: queue, ...input })), { name: 'InvalidParameterValue' });
    }
  });

  it('returns one message by default and never more than MaxNumberOfMessages', async () => {
    const queue = await createQueue(t.sqs, 'receive');
    const entries = Array.from({ length: 10 }, (_, index) => ({ Id: `m${index}`, MessageBody: `m${index}` }));
    await t.sqs.send(new SendMessageBatchCommand({ QueueUrl: queue, Entries: entries }));
    await t.sqs.send(new SendMessageBatchCommand({ QueueUrl: queue, Entries: entries.slice(0, 2) }));
    expect(await receive(t.sqs, queue)).toHaveLength(1);
    expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 3 })).toHaveLength(3);
    expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).toHaveLength(8);
    expect(await receive(t.sqs, queue, { MaxNumberOfMessages: 10 })).toEqual([]);
  });

  it('refuses an unknown attribute name and ignores queue attribute names', async () => {
    const queue = await createQueue(t.sqs, 'receive');
    await sendOne(queue, 'x');
    await expectSqsError(t.sqs.send(new ReceiveMessageCommand({ QueueUrl: queue, MessageSystemAttributeNames: ['NoSuchAttribute' as 'All'] })), {
      name: 'InvalidAttributeName',
    });
    const [message] = await receive(t.sqs, queue, { AttributeNames: ['ApproximateNumberOfMessages', 'SentTimestamp' as QueueAttributeName] });
    expect(Object.keys(message!.Attributes!)).toEqual(['SentTimestamp']);
  });
});

describe('system attributes', () => {
  it('returns every one with All, and ApproximateFirstReceiveTimestamp stays that of the first receive', async () => {
    const queue = await createQueue(t.sqs, 'receive');
    const sentAt = t.clock.now();
    await sendOne(queue, 'x');
    t.clock.advance(5_000);
    const [first] = await receive(t.sqs, queue, { VisibilityTimeout: 0, MessageSystemAttributeNames: ['All'] });
    const attributes = first!.Attributes!;
    expect(Object.keys(attributes).sort()).toEqual(['ApproximateFirstReceiveTimestamp', 'ApproximateReceiveCount', 'SenderId', 'SentTimestamp']);
    expect(Number(attributes.SentTimestamp)).toBeGreaterThanOrEqual(sentAt);
    expect(Number(attributes.ApproximateFirstReceiveTimestamp) - Number(attributes.SentTimestamp)).toBeGreaterThanOrEqual(5_000);
    expect(attributes.ApproximateReceiveCount).toBe('1');
    expect(attributes.SenderId).toMatch(/\S/);
    t.clock.advance(5_000);
    const [second] = await receive(t.sqs, queue, { AttributeNames: ['All'] });
    expect(second!.Attributes!.ApproximateReceiveCount).toBe('2');
    expect(second!.Attributes!.ApproximateFirstReceiveTimestamp).toBe(attributes.ApproximateFirstReceiveTimestamp);
  });

  it('returns only the attributes asked for, through either parameter', async () => {
    const queue = await createQueue(t.sqs, 'receive');
    await sendOne(queue, 'x');
    const [message] = await receive(t.sqs, queue, {
      VisibilityTimeout: 0,
      // The older parameter, typed by the SDK as queue attribute names, takes the same names.
      AttributeNames: ['SentTimestamp' as QueueAttributeName],
      MessageSystemAttributeNames: ['ApproximateReceiveCount'],
    });
    expect(Object.keys(message!.Attributes!).sort()).toEqual(['ApproximateReceiveCount', 'SentTimestamp']);
    const [bare] = await receive(t.sqs, queue);
    expect(bare!.Attributes).toBeUndefined();
  });

  it('returns the FIFO attributes and the trace header', async () => {
    const queue = await createQueue(t.sqs, 'receive', {}, true);
    const sent = await sendOne(queue, 'x', {
      MessageGroupId: 'group-1',
      MessageDeduplicationId: 'dedup-1',
      MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: 'Root=1-5759e988-bd862e3fe1be46a994272793' } },
    });
    const [message] = await receive(t.sqs, queue, { MessageSystemAttributeNames: ['All'] });
    expect(message!.Attributes).toMatchObject({
      SequenceNumber: sent.SequenceNumber,
      MessageGroupId: 'group-1',
      MessageDeduplicationId: 'dedup-1',
      AWSTraceHeader: 'Root=1-5759e988-bd862e3fe1be46a994272793',
    });
  });

  it.each([
    'SenderId',
    'SentTimestamp',
    'ApproximateReceiveCount',
    'ApproximateFirstReceiveTimestamp',
    'SequenceNumber',
    'MessageDeduplicationId',
    'MessageGroupId',
    'AWSTraceHeader',
  ] as const)('returns %s alone when only it is asked for', async (name) => {
    const queue = await createQueue(t.sqs, 'receive', {}, true);
    await sendOne(queue, 'x', {
      MessageGroupId: 'g',
      MessageDeduplicationId: 'd',
      MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: 'Root=1-5759e988-bd862e3fe1be46a994272793' } },
    });
    const [message] = await receive(t.sqs, queue, { MessageSystemAttributeNames: [name] });
    expect(Object.keys(message!.Attributes!)).toEqual([name]);
  });

  it('returns DeadLetterQueueSourceArn for a message moved to a dead-letter queue', async () => {
    const deadLetters = await createQueue(t.sqs, 'receive-dlq');
    const { Attributes } = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl: deadLetters, AttributeNames: ['QueueArn'] }));
    const source = await createQueue(t.sqs, 'receive-source', {
      RedrivePolicy: JSON.stringify({ deadLetterTargetArn: Attributes!.QueueArn, maxReceiveCount: 1 }),
    });
    const { Attributes: sourceAttributes } = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl: source, AttributeNames: ['QueueArn'] }));
    await sendOne(source, 'poison');
    expect(await receive(t.sqs, source, { VisibilityTimeout: 0 })).toHaveLength(1);
    expect(await receive(t.sqs, source)).toEqual([]);
    const [moved] = await receive(t.sqs, deadLetters, { MessageSystemAttributeNames: ['DeadLetterQueueSourceArn'] });
    expect(moved!.Attributes!.DeadLetterQueueSourceArn).toBe(sourceAttributes!.QueueArn);
  });
});

describe('message attributes', () => {
  // The digest as the Developer Guide describes it, computed here independently of the shim.
  function md5OfAttributes(attributes: Record<string, MessageAttributeValue>): string {
    const hash = createHash('md5');
    const field = (bytes: Buffer) => {
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      hash.update(length).update(bytes);
    };
    for (const name of Object.keys(attributes).sort()) {
      const { DataType, StringValue, BinaryValue } = attributes[name]!;
      field(Buffer.from(name));
      field(Buffer.from(DataType!));
      hash.update(Buffer.from([BinaryValue ? 2 : 1]));
      field(BinaryValue ? Buffer.from(BinaryValue) : Buffer.from(StringValue!));
    }
    return hash.digest('hex');
  }

  const ATTRIBUTES: Record<string, MessageAttributeValue> = {
    'order.id': { DataType: 'String', StringValue: '42' },
    'order.total': { DataType: 'Number', StringValue: '9.5' },
    trace: { DataType: 'Binary', BinaryValue: Buffer.from([1, 2, 3]) },
  };

  it.each([
    [['All'], ['order.id', 'order.total', 'trace']],
    [['.*'], ['order.id', 'order.total', 'trace']],
    [['order.*'], ['order.id', 'order.total']],
    [['trace', 'missing'], ['trace']],
    [['order.id', 'trace.*'], ['order.id', 'trace']],
    // "All message attributes starting with a prefix": the prefix need not end in a dot.
    [['ord.*'], ['order.id', 'order.total']],
    [['tr.*', 'orders.*', 'order.total'], ['order.total', 'trace']],
    [[...Array.from({ length: 3 }, (_, i) => `name${i}.*`), 'trace', 'order.*'], ['order.id', 'order.total', 'trace']],
  ])('selects %j and digests only what it returns', async (names, expected) => {
    const queue = await createQueue(t.sqs, 'receive');
    await sendOne(queue, 'x', { MessageAttributes: ATTRIBUTES });
    const [message] = await receive(t.sqs, queue, { MessageAttributeNames: names });
    expect(Object.keys(message!.MessageAttributes!).sort()).toEqual(expected);
    const selected = Object.fromEntries(expected.map((name) => [name, ATTRIBUTES[name]!]));
    expect(message!.MD5OfMessageAttributes).toBe(md5OfAttributes(selected));
  });

  it('returns no attributes and no digest when none is asked for', async () => {
    const queue = await createQueue(t.sqs, 'receive');
    await sendOne(queue, 'x', { MessageAttributes: ATTRIBUTES });
    const [message] = await receive(t.sqs, queue);
    expect(message!.MessageAttributes).toBeUndefined();
    expect(message!.MD5OfMessageAttributes).toBeUndefined();
  });
});

describe('approximate counts', () => {
  it('tells visible, in-flight and delayed messages apart, and forgets deleted ones', async () => {
    const queue = await createQueue(t.sqs, 'receive');
    for (const body of ['a', 'b', 'c']) await sendOne(queue, body);
    await sendOne(queue, 'later', { DelaySeconds: 30 });
    await receive(t.sqs, queue, { MaxNumberOfMessages: 2, VisibilityTimeout: 10 });
    expect(await counts(t.sqs, queue)).toEqual({ visible: 1, notVisible: 2, delayed: 1 });
    t.clock.advance(10_000);
    expect(await counts(t.sqs, queue)).toEqual({ visible: 3, notVisible: 0, delayed: 1 });
    t.clock.advance(20_000);
    expect(await counts(t.sqs, queue)).toEqual({ visible: 4, notVisible: 0, delayed: 0 });
  });
});

describe('query plans', () => {
  // Every statement a request runs must start from an index at the rows it wants: a full scan
  // ("SCAN") or a sort of the candidates ("TEMP B-TREE") would make a receive from a queue of a
  // million messages, or from a FIFO queue with a million groups or one huge group, cost in
  // proportion to them; so would counting a backlog for GetQueueAttributes, which reads a running
  // total and sums tallies of the seconds to come. The scans allowed are of SQLite's
  // sqlite_sequence, which holds one row per AUTOINCREMENT table, and the replay's look for any
  // message held for it, which stops at the first row; rebuilding a queue's tallies sorts what it
  // groups, but runs only when a FIFO queue's DelaySeconds changes.
  it('drives every query of the message, deduplication and receive-attempt stores by an index', () => {
    const db = openDatabase(':memory:', 'process');
    try {
      const plans = {
        ...new MessageStore(db, retentionCutoff(true, givenClock(Date.now))).queryPlans(),
        ...new DeduplicationStore(db).queryPlans(),
        ...new ReceiveAttemptStore(db).queryPlans(),
      };
      expect(plans.lastId).toEqual(['SCAN sqlite_sequence']);
      expect(plans.anyHold).toEqual(['SCAN replay_holds']);
      const offending = Object.entries(plans).filter(([name, steps]) => !['lastId', 'anyHold', 'rebuildTallies'].includes(name) && steps.some((step) => /\bSCAN\b|TEMP B-TREE/.test(step)));
      expect(offending).toEqual([]);
      // The hot paths of a receive, each through its own index, within the queue's current epoch.
      expect(plans.visible).toEqual([expect.stringMatching(/USING INDEX messages_by_visibility \(queue_id=\? AND epoch=\? AND visible_at<\?\)/)]);
      expect(plans.availableGroups).toEqual([
        expect.stringMatching(/USING COVERING INDEX fifo_groups_by_availability \(queue_id=\? AND epoch=\? AND \(available_at,group_id\)>\(\?,\?\) AND available_at<\?\)/),
      ]);
      expect(plans.groupMessages).toEqual([expect.stringMatching(/USING INDEX messages_by_group \(queue_id=\? AND group_id=\? AND epoch=\? AND id>\?\)/)]);
      expect(plans.nextVisibleAt).toEqual([expect.stringMatching(/USING COVERING INDEX messages_by_visibility \(queue_id=\? AND epoch=\? AND visible_at>\?\)/)]);
      expect(plans.nextGroupAvailableAt).toEqual([expect.stringMatching(/USING COVERING INDEX fifo_groups_by_availability \(queue_id=\? AND epoch=\? AND available_at>\?\)/)]);
      expect(plans.total).toEqual([expect.stringMatching(/USING PRIMARY KEY \(queue_id=\? AND epoch=\?\)/)]);
      expect(plans.tallied).toEqual([expect.stringMatching(/USING PRIMARY KEY \(queue_id=\? AND epoch=\? AND second>\?\)/)]);
      expect(plans.invisibleThisSecond).toEqual([expect.stringMatching(/USING COVERING INDEX messages_by_visibility \(queue_id=\? AND epoch=\? AND visible_at>\? AND visible_at<\?\)/)]);
      expect(plans.expiredStates).toEqual([expect.stringMatching(/USING INDEX messages_by_age \(queue_id=\? AND enqueued_at<\?\)/)]);
      expect(plans.purged).toEqual([expect.stringMatching(/USING INDEX messages_by_visibility \(queue_id=\? AND epoch<\?\)/)]);
      expect(plans.expired).toEqual([expect.stringMatching(/USING INDEX messages_by_age \(queue_id=\? AND enqueued_at<\?\)/)]);
    } finally {
      db.close();
    }
  });
});
