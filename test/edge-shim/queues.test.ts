import {
  CreateQueueCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectSqsError } from '../helpers/sqs-errors.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

const ACCOUNT = '000000000000';
let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t.close());

const create = (QueueName: string, Attributes?: Record<string, string>, tags?: Record<string, string>) =>
  t.sqs.send(new CreateQueueCommand({ QueueName, Attributes, tags }));

describe('CreateQueue names', () => {
  it('accepts 1 to 80 alphanumerics, hyphens and underscores and answers the queue URL', async () => {
    const name = `A-z_09${'x'.repeat(74)}`;
    expect(name).toHaveLength(80);
    const { QueueUrl } = await create(name);
    expect(QueueUrl).toBe(`${t.shim.url}/${ACCOUNT}/${name}`);
    expect((await create('q')).QueueUrl).toBe(`${t.shim.url}/${ACCOUNT}/q`);
  });

  it.each([['x'.repeat(81)], ['has space'], ['dot.ted'], ['slash/'], ['ünïcode'], ['plain.fifo'], ['']])(
    'rejects the standard queue name %j',
    async (name) => {
      await expectSqsError(create(name), {
        name: 'InvalidParameterValue',
        message: 'Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length',
      });
    },
  );

  it('makes a FIFO queue only from the FifoQueue attribute, with a name ending in .fifo of at most 80 characters', async () => {
    const name = `${'f'.repeat(75)}.fifo`;
    const { QueueUrl } = await create(name, { FifoQueue: 'true' });
    const { Attributes } = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['FifoQueue'] }));
    expect(Attributes).toEqual({ FifoQueue: 'true' });
    for (const bad of ['no-suffix', `${'f'.repeat(76)}.fifo`, '.fifo', 'a.b.fifo']) {
      await expectSqsError(create(bad, { FifoQueue: 'true' }), {
        name: 'InvalidParameterValue',
        message: /^The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with \.fifo suffix/,
      });
    }
  });

  it('creates a standard queue when FifoQueue is false, and rejects any other FifoQueue value', async () => {
    const { QueueUrl } = await create('explicit-standard', { FifoQueue: 'false' });
    const { Attributes } = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['All'] }));
    expect(Attributes?.FifoQueue).toBeUndefined();
    await expectSqsError(create('x.fifo', { FifoQueue: 'yes' }), {
      name: 'InvalidAttributeValue',
      message: 'Invalid value for the parameter FifoQueue.',
    });
  });
});

describe('CreateQueue of an existing name', () => {
  it('answers the existing URL when every given attribute matches, whatever attributes are left out', async () => {
    const first = await create('idem', { VisibilityTimeout: '45', DelaySeconds: '5' });
    expect((await create('idem', { VisibilityTimeout: '45', DelaySeconds: '5' })).QueueUrl).toBe(first.QueueUrl);
    expect((await create('idem', { DelaySeconds: '5' })).QueueUrl).toBe(first.QueueUrl);
    expect((await create('idem')).QueueUrl).toBe(first.QueueUrl);
    // Defaults count as the queue's values.
    expect((await create('idem', { MaximumMessageSize: '1048576' })).QueueUrl).toBe(first.QueueUrl);
  });

  it('fails with QueueNameExists when a given attribute differs, and leaves the queue as it was', async () => {
    const { QueueUrl } = await create('idem-differs', { VisibilityTimeout: '45' });
    await expectSqsError(create('idem-differs', { VisibilityTimeout: '46' }), { name: 'QueueNameExists', code: 'QueueAlreadyExists' });
    await expectSqsError(create('idem-differs', { MessageRetentionPeriod: '60' }), { name: 'QueueNameExists', code: 'QueueAlreadyExists' });
    const { Attributes } = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['VisibilityTimeout', 'MessageRetentionPeriod'] }));
    expect(Attributes).toEqual({ VisibilityTimeout: '45', MessageRetentionPeriod: '345600' });
  });

  it('compares policies as JSON documents', async () => {
    const policy = { Version: '2012-10-17', Statement: [] };
    const { QueueUrl } = await create('idem-policy', { Policy: JSON.stringify(policy) });
    expect((await create('idem-policy', { Policy: JSON.stringify(policy, null, 2) })).QueueUrl).toBe(QueueUrl);
    await expectSqsError(create('idem-policy', { Policy: JSON.stringify({ ...policy, Id: 'other' }) }), { name: 'QueueNameExists', code: 'QueueAlreadyExists' });
  });

  it('fails with QueueNameExists when tags are given that differ from the queue tags', async () => {
    const { QueueUrl } = await create('idem-tags', undefined, { team: 'a' });
    expect((await create('idem-tags', undefined, { team: 'a' })).QueueUrl).toBe(QueueUrl);
    expect((await create('idem-tags')).QueueUrl).toBe(QueueUrl);
    await expectSqsError(create('idem-tags', undefined, { team: 'b' }), { name: 'QueueNameExists', code: 'QueueAlreadyExists' });
    await expectSqsError(create('idem-untagged-later', undefined, undefined).then(() => create('idem-untagged-later', undefined, { any: 'tag' })), {
      name: 'QueueNameExists',
      code: 'QueueAlreadyExists',
    });
  });

  it('checks the name against the queue type before looking for the queue', async () => {
    await create('typed.fifo', { FifoQueue: 'true' });
    await expectSqsError(create('typed.fifo'), { name: 'InvalidParameterValue' });
  });
});

describe('DeleteQueue', () => {
  it('deletes the queue and its messages; the name can be created again only after 60 seconds', async () => {
    const { QueueUrl } = await create('short-lived', { VisibilityTimeout: '10' });
    await t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'gone with the queue' }));
    await t.sqs.send(new DeleteQueueCommand({ QueueUrl }));

    const missing = { name: 'QueueDoesNotExist', code: 'AWS.SimpleQueueService.NonExistentQueue' };
    await expectSqsError(t.sqs.send(new GetQueueUrlCommand({ QueueName: 'short-lived' })), missing);
    await expectSqsError(t.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'x' })), missing);
    await expectSqsError(t.sqs.send(new DeleteQueueCommand({ QueueUrl })), missing);

    await expectSqsError(create('short-lived'), { name: 'QueueDeletedRecently', code: 'AWS.SimpleQueueService.QueueDeletedRecently' });
    t.clock.advance(59_000);
    await expectSqsError(create('short-lived'), { name: 'QueueDeletedRecently', code: 'AWS.SimpleQueueService.QueueDeletedRecently' });
    t.clock.advance(1_000);
    const again = await create('short-lived');
    expect(again.QueueUrl).toBe(QueueUrl);
    const { Attributes } = await t.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['VisibilityTimeout', 'ApproximateNumberOfMessages'] }),
    );
    expect(Attributes).toEqual({ VisibilityTimeout: '30', ApproximateNumberOfMessages: '0' });
  });
});

describe('DeleteQueue of a large queue', () => {
  it('answers at once and leaves the messages to the sweeper, which deletes them in slices', async () => {
    const own = await startTestShim({ sweepIntervalMs: 3_600_000 });
    try {
      const messageRows = () => own.storedRows('messages');
      const fill = async (QueueUrl: string, count: number) => {
        for (let sent = 0; sent < count; sent += 10) {
          const Entries = Array.from({ length: 10 }, (_, index) => ({ Id: `m${index}`, MessageBody: `message ${sent + index}` }));
          await own.sqs.send(new SendMessageBatchCommand({ QueueUrl, Entries }));
        }
      };
      const doomed = (await own.sqs.send(new CreateQueueCommand({ QueueName: 'doomed', Attributes: { FifoQueue: 'false' } }))).QueueUrl!;
      const kept = (await own.sqs.send(new CreateQueueCommand({ QueueName: 'kept' }))).QueueUrl!;
      const doomedFifo = (
        await own.sqs.send(new CreateQueueCommand({ QueueName: 'doomed.fifo', Attributes: { FifoQueue: 'true', ContentBasedDeduplication: 'true' } }))
      ).QueueUrl!;
      await fill(doomed, 600);
      await fill(kept, 20);
      for (let group = 0; group < 30; group += 1) {
        await own.sqs.send(new SendMessageCommand({ QueueUrl: doomedFifo, MessageBody: `fifo ${group}`, MessageGroupId: `g${group}` }));
      }
      const groupRows = () => own.storedRows('fifo_groups');
      expect(await groupRows()).toBe(30);
      await own.sqs.send(new DeleteQueueCommand({ QueueUrl: doomed }));
      await own.sqs.send(new DeleteQueueCommand({ QueueUrl: doomedFifo }));
      expect(await messageRows()).toBe(650);

      await own.shim.service.sweep();
      expect(await messageRows()).toBe(20);
      expect(await groupRows()).toBe(0);
      const { Attributes } = await own.sqs.send(new GetQueueAttributesCommand({ QueueUrl: kept, AttributeNames: ['ApproximateNumberOfMessages'] }));
      expect(Attributes?.ApproximateNumberOfMessages).toBe('20');
    } finally {
      await own.close();
    }
  });
});

describe('GetQueueUrl', () => {
  it('finds a queue by its case-sensitive name, in this account only', async () => {
    const { QueueUrl } = await create('Lookup');
    expect((await t.sqs.send(new GetQueueUrlCommand({ QueueName: 'Lookup' }))).QueueUrl).toBe(QueueUrl);
    expect((await t.sqs.send(new GetQueueUrlCommand({ QueueName: 'Lookup', QueueOwnerAWSAccountId: ACCOUNT }))).QueueUrl).toBe(QueueUrl);
    const missing = { name: 'QueueDoesNotExist', code: 'AWS.SimpleQueueService.NonExistentQueue' };
    await expectSqsError(t.sqs.send(new GetQueueUrlCommand({ QueueName: 'lookup' })), missing);
    await expectSqsError(t.sqs.send(new GetQueueUrlCommand({ QueueName: 'Lookup', QueueOwnerAWSAccountId: '111122223333' })), missing);
  });
});

describe('ListQueues', () => {
  it('lists queues by case-sensitive name prefix, paging with MaxResults and NextToken', async () => {
    const names = ['list-a', 'list-b', 'list-c', 'list-d', 'list-e'];
    for (const name of names) await create(name);
    await create('List-upper');
    const all = await t.sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'list-' }));
    expect(all.QueueUrls).toEqual(names.map((name) => `${t.shim.url}/${ACCOUNT}/${name}`));
    expect(all.NextToken).toBeUndefined();

    const seen: string[] = [];
    let NextToken: string | undefined;
    do {
      const page = await t.sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'list-', MaxResults: 2, NextToken }));
      expect(page.QueueUrls!.length).toBeLessThanOrEqual(2);
      seen.push(...page.QueueUrls!);
      NextToken = page.NextToken;
    } while (NextToken);
    expect(seen).toEqual(all.QueueUrls);

    const none = await t.sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'no-such-prefix' }));
    expect(none.QueueUrls ?? []).toEqual([]);
  });

  it('rejects MaxResults outside 1 to 1000, a NextToken without MaxResults and a forged token', async () => {
    for (const MaxResults of [0, 1001]) {
      await expectSqsError(t.sqs.send(new ListQueuesCommand({ MaxResults })), { name: 'InvalidParameterValue' });
    }
    const page = await t.sqs.send(new ListQueuesCommand({ MaxResults: 1 }));
    expect(page.NextToken).toBeDefined();
    await expectSqsError(t.sqs.send(new ListQueuesCommand({ NextToken: page.NextToken })), { name: 'InvalidParameterValue' });
    await expectSqsError(t.sqs.send(new ListQueuesCommand({ MaxResults: 5, NextToken: 'not-a-token' })), { name: 'InvalidParameterValue' });
  });

  it('returns at most 1000 queues without MaxResults, and pages past 1000 with it', async () => {
    const names = Array.from({ length: 1005 }, (_, index) => `many-${String(index).padStart(4, '0')}`);
    for (let start = 0; start < names.length; start += 100) {
      await Promise.all(names.slice(start, start + 100).map((name) => create(name)));
    }
    const unpaged = await t.sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'many-' }));
    expect(unpaged.QueueUrls).toHaveLength(1000);
    expect(unpaged.NextToken).toBeUndefined();

    const first = await t.sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'many-', MaxResults: 1000 }));
    expect(first.QueueUrls).toHaveLength(1000);
    const second = await t.sqs.send(new ListQueuesCommand({ QueueNamePrefix: 'many-', MaxResults: 1000, NextToken: first.NextToken }));
    expect(second.NextToken).toBeUndefined();
    expect(new Set([...first.QueueUrls!, ...second.QueueUrls!]).size).toBe(1005);
  });
});
