import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ListQueueTagsCommand,
  QueueDoesNotExist,
  TagQueueCommand,
  UntagQueueCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejectionOf } from '../helpers/sqs-errors.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t.close());

async function queue(name: string, tags?: Record<string, string>): Promise<string> {
  return (await t.sqs.send(new CreateQueueCommand({ QueueName: name, tags }))).QueueUrl!;
}

const tagsOf = async (QueueUrl: string) => (await t.sqs.send(new ListQueueTagsCommand({ QueueUrl }))).Tags;

describe('TagQueue, UntagQueue and ListQueueTags', () => {
  it('lists no Tags for an untagged queue and the tags given at creation otherwise', async () => {
    expect(await tagsOf(await queue('tags-none'))).toBeUndefined();
    expect(await tagsOf(await queue('tags-created', { team: 'core' }))).toEqual({ team: 'core' });
  });

  it('adds, overwrites and removes tags; unknown keys are ignored on removal', async () => {
    const QueueUrl = await queue('tags-lifecycle', { team: 'core', env: 'dev' });
    await t.sqs.send(new TagQueueCommand({ QueueUrl, Tags: { env: 'prod', 'cost center': 'a/b=c+d@e.f:g_h-i' } }));
    expect(await tagsOf(QueueUrl)).toEqual({ team: 'core', env: 'prod', 'cost center': 'a/b=c+d@e.f:g_h-i' });

    await t.sqs.send(new UntagQueueCommand({ QueueUrl, TagKeys: ['team', 'never-set'] }));
    expect(await tagsOf(QueueUrl)).toEqual({ env: 'prod', 'cost center': 'a/b=c+d@e.f:g_h-i' });

    await t.sqs.send(new UntagQueueCommand({ QueueUrl, TagKeys: ['env', 'cost center'] }));
    expect(await tagsOf(QueueUrl)).toBeUndefined();
  });

  it('keeps tags case-sensitive and accepts an empty value and Unicode', async () => {
    const QueueUrl = await queue('tags-case');
    await t.sqs.send(new TagQueueCommand({ QueueUrl, Tags: { Env: 'A', env: 'a', ключ: '', 'é': 'ü' } }));
    expect(await tagsOf(QueueUrl)).toEqual({ Env: 'A', env: 'a', ключ: '', 'é': 'ü' });
  });

  it('allows 50 tags and refuses the 51st without changing the queue', async () => {
    const QueueUrl = await queue('tags-limit');
    const fifty = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`key-${i}`, `value-${i}`]));
    await t.sqs.send(new TagQueueCommand({ QueueUrl, Tags: fifty }));
    await t.sqs.send(new TagQueueCommand({ QueueUrl, Tags: { 'key-0': 'overwritten' } }));
    const error = await rejectionOf(t.sqs.send(new TagQueueCommand({ QueueUrl, Tags: { 'key-50': 'one too many' } })));
    expect(error.name).toBe('InvalidParameterValue');
    const tags = await tagsOf(QueueUrl);
    expect(Object.keys(tags!)).toHaveLength(50);
    expect(tags!['key-0']).toBe('overwritten');

    const created = await rejectionOf(
      t.sqs.send(new CreateQueueCommand({ QueueName: 'tags-limit-create', tags: { ...fifty, extra: 'x' } })),
    );
    expect(created.name).toBe('InvalidParameterValue');
  });

  it.each([
    ['an empty key', { '': 'v' }],
    ['a key over 128 characters', { ['k'.repeat(129)]: 'v' }],
    ['a value over 256 characters', { k: 'v'.repeat(257) }],
    ['the reserved aws: prefix', { 'aws:owner': 'me' }],
    ['a character outside the allowed set', { 'semi;colon': 'v' }],
  ])('refuses %s', async (_, Tags) => {
    const QueueUrl = await queue('tags-invalid');
    const error = await rejectionOf(t.sqs.send(new TagQueueCommand({ QueueUrl, Tags })));
    expect(error.name).toBe('InvalidParameterValue');
    expect(await tagsOf(QueueUrl)).toBeUndefined();
  });

  it('accepts keys of exactly 128 and values of exactly 256 characters', async () => {
    const QueueUrl = await queue('tags-bounds');
    await t.sqs.send(new TagQueueCommand({ QueueUrl, Tags: { ['k'.repeat(128)]: 'v'.repeat(256) } }));
    expect(await tagsOf(QueueUrl)).toEqual({ ['k'.repeat(128)]: 'v'.repeat(256) });
  });

  it('requires Tags and TagKeys', async () => {
    const QueueUrl = await queue('tags-required');
    expect((await rejectionOf(t.sqs.send(new TagQueueCommand({ QueueUrl, Tags: {} })))).name).toBe('MissingParameter');
    expect((await rejectionOf(t.sqs.send(new UntagQueueCommand({ QueueUrl, TagKeys: [] })))).name).toBe('InvalidParameterValue');
  });

  it('answers QueueDoesNotExist for a queue that is not there', async () => {
    const QueueUrl = `${t.shim.url}/000000000000/no-such-queue`;
    await expect(t.sqs.send(new ListQueueTagsCommand({ QueueUrl }))).rejects.toBeInstanceOf(QueueDoesNotExist);
    await expect(t.sqs.send(new TagQueueCommand({ QueueUrl, Tags: { a: 'b' } }))).rejects.toBeInstanceOf(QueueDoesNotExist);
    await expect(t.sqs.send(new UntagQueueCommand({ QueueUrl, TagKeys: ['a'] }))).rejects.toBeInstanceOf(QueueDoesNotExist);
  });

  it('does not count tagging as a change of the queue attributes', async () => {
    const QueueUrl = await queue('tags-modified');
    const before = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['LastModifiedTimestamp'] }));
    t.clock.advance(5000);
    await t.sqs.send(new TagQueueCommand({ QueueUrl, Tags: { a: 'b' } }));
    const after = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['LastModifiedTimestamp'] }));
    expect(after.Attributes).toEqual(before.Attributes);
  });
});
