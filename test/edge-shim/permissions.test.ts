import {
  AddPermissionCommand,
  CreateQueueCommand,
  GetQueueAttributesCommand,
  OverLimit,
  QueueDoesNotExist,
  RemovePermissionCommand,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejectionOf } from '../helpers/sqs-errors.js';
import { type TestShim, startTestShim } from '../helpers/shim.js';

// The shim serves one account and does not evaluate policies: these tests check what AddPermission
// and RemovePermission record and how the Policy attribute shows it, as SQS builds it.
let t: TestShim;
beforeAll(async () => {
  t = await startTestShim();
});
afterAll(() => t.close());

const ARN_PREFIX = 'arn:aws:sqs:us-east-1:000000000000:';

async function queue(name: string): Promise<string> {
  return (await t.sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
}

async function policyOf(QueueUrl: string): Promise<Record<string, unknown> | undefined> {
  const { Attributes } = await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['Policy'] }));
  return Attributes?.Policy === undefined ? undefined : (JSON.parse(Attributes.Policy) as Record<string, unknown>);
}

describe('AddPermission and RemovePermission', () => {
  it('builds the Policy document statement by statement and takes it away with the last one', async () => {
    const QueueUrl = await queue('perm-policy');
    expect(await policyOf(QueueUrl)).toBeUndefined();

    await t.sqs.send(new AddPermissionCommand({ QueueUrl, Label: 'one', AWSAccountIds: ['111111111111'], Actions: ['SendMessage'] }));
    await t.sqs.send(
      new AddPermissionCommand({
        QueueUrl,
        Label: 'Two_and-more',
        AWSAccountIds: ['111111111111', '222222222222'],
        Actions: ['ReceiveMessage', 'DeleteMessage'],
      }),
    );
    await t.sqs.send(new AddPermissionCommand({ QueueUrl, Label: 'all', AWSAccountIds: ['333333333333'], Actions: ['*'] }));
    const resource = `${ARN_PREFIX}perm-policy`;
    expect(await policyOf(QueueUrl)).toEqual({
      Version: '2012-10-17',
      Id: `${resource}/SQSDefaultPolicy`,
      Statement: [
        { Sid: 'one', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111111111111:root' }, Action: 'SQS:SendMessage', Resource: resource },
        {
          Sid: 'Two_and-more',
          Effect: 'Allow',
          Principal: { AWS: ['arn:aws:iam::111111111111:root', 'arn:aws:iam::222222222222:root'] },
          Action: ['SQS:ReceiveMessage', 'SQS:DeleteMessage'],
          Resource: resource,
        },
        { Sid: 'all', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::333333333333:root' }, Action: 'SQS:*', Resource: resource },
      ],
    });

    await t.sqs.send(new RemovePermissionCommand({ QueueUrl, Label: 'Two_and-more' }));
    const afterOne = await policyOf(QueueUrl);
    expect((afterOne!.Statement as Array<{ Sid: string }>).map((statement) => statement.Sid)).toEqual(['one', 'all']);

    await t.sqs.send(new RemovePermissionCommand({ QueueUrl, Label: 'one' }));
    await t.sqs.send(new RemovePermissionCommand({ QueueUrl, Label: 'all' }));
    expect(await policyOf(QueueUrl)).toBeUndefined();
  });

  it('refuses a label that already exists, and leaves the policy as it was', async () => {
    const QueueUrl = await queue('perm-duplicate');
    await t.sqs.send(new AddPermissionCommand({ QueueUrl, Label: 'x', AWSAccountIds: ['111111111111'], Actions: ['SendMessage'] }));
    const before = await policyOf(QueueUrl);
    const error = await rejectionOf(
      t.sqs.send(new AddPermissionCommand({ QueueUrl, Label: 'x', AWSAccountIds: ['222222222222'], Actions: ['ReceiveMessage'] })),
    );
    expect(error.name).toBe('InvalidParameterValue');
    expect(error.message).toBe('Value x for parameter Label is invalid. Reason: Already exists.');
    expect(await policyOf(QueueUrl)).toEqual(before);
  });

  it('refuses to remove a label that is not in the policy', async () => {
    const QueueUrl = await queue('perm-unknown');
    const error = await rejectionOf(t.sqs.send(new RemovePermissionCommand({ QueueUrl, Label: 'nope' })));
    expect(error.name).toBe('InvalidParameterValue');
    expect(error.message).toBe("Value nope for parameter Label is invalid. Reason: can't find label on existing policy.");
  });

  it('adds to a Policy set with SetQueueAttributes and can remove its statements by Sid', async () => {
    const QueueUrl = await queue('perm-custom');
    const resource = `${ARN_PREFIX}perm-custom`;
    const custom = {
      Version: '2012-10-17',
      Id: 'custom-policy',
      Statement: { Sid: 'FromSns', Effect: 'Allow', Principal: '*', Action: 'sqs:SendMessage', Resource: resource },
    };
    await t.sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: { Policy: JSON.stringify(custom) } }));
    const duplicate = await rejectionOf(
      t.sqs.send(new AddPermissionCommand({ QueueUrl, Label: 'FromSns', AWSAccountIds: ['111111111111'], Actions: ['SendMessage'] })),
    );
    expect(duplicate.name).toBe('InvalidParameterValue');

    await t.sqs.send(new AddPermissionCommand({ QueueUrl, Label: 'added', AWSAccountIds: ['111111111111'], Actions: ['GetQueueUrl'] }));
    const policy = await policyOf(QueueUrl);
    expect(policy!.Id).toBe('custom-policy');
    expect((policy!.Statement as Array<{ Sid: string }>).map((statement) => statement.Sid)).toEqual(['FromSns', 'added']);

    await t.sqs.send(new RemovePermissionCommand({ QueueUrl, Label: 'FromSns' }));
    expect((await policyOf(QueueUrl))!.Statement).toEqual([
      { Sid: 'added', Effect: 'Allow', Principal: { AWS: 'arn:aws:iam::111111111111:root' }, Action: 'SQS:GetQueueUrl', Resource: resource },
    ]);
  });

  it('refuses a Policy whose statements are not objects, so that AddPermission never meets one', async () => {
    const QueueUrl = await queue('perm-malformed');
    for (const Statement of [[null], [1, { Sid: 'a' }], 'text']) {
      const refused = await rejectionOf(t.sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: { Policy: JSON.stringify({ Statement }) } })));
      expect(refused.name).toBe('InvalidAttributeValue');
    }
    await t.sqs.send(new AddPermissionCommand({ QueueUrl, Label: 'a', AWSAccountIds: ['111111111111'], Actions: ['SendMessage'] }));
    expect((await policyOf(QueueUrl))!.Statement).toHaveLength(1);
  });

  it('keeps a policy within the SQS policy quotas: 20 statements and 8,192 bytes', async () => {
    const QueueUrl = await queue('perm-quotas');
    const grant = (Label: string) => t.sqs.send(new AddPermissionCommand({ QueueUrl, Label, AWSAccountIds: ['111111111111'], Actions: ['SendMessage'] }));
    for (let index = 1; index <= 20; index++) await grant(`label${index}`);
    expect(await rejectionOf(grant('label21'))).toBeInstanceOf(OverLimit);
    expect((await policyOf(QueueUrl))!.Statement).toHaveLength(20);

    const large = { Statement: [{ Sid: 'big', Effect: 'Allow', Principal: '*', Action: 'sqs:SendMessage', Resource: 'x'.repeat(8200) }] };
    const refused = await rejectionOf(t.sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: { Policy: JSON.stringify(large) } })));
    expect(refused.name).toBe('InvalidAttributeValue');
    const many = { Statement: Array.from({ length: 21 }, (_, index) => ({ Sid: `s${index}`, Effect: 'Allow', Principal: '*', Action: 'sqs:SendMessage' })) };
    const tooMany = await rejectionOf(t.sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: { Policy: JSON.stringify(many) } })));
    expect(tooMany.name).toBe('InvalidAttributeValue');
  });

  it('accepts a label of 80 characters and refuses longer ones or other characters', async () => {
    const QueueUrl = await queue('perm-labels');
    const grant = (Label: string) => t.sqs.send(new AddPermissionCommand({ QueueUrl, Label, AWSAccountIds: ['111111111111'], Actions: ['SendMessage'] }));
    await grant('L'.repeat(80));
    for (const Label of ['L'.repeat(81), 'has space', 'dot.ted', 'colon:x']) {
      expect((await rejectionOf(grant(Label))).name).toBe('InvalidParameterValue');
    }
    expect((await policyOf(QueueUrl))!.Statement).toHaveLength(1);
  });

  it('checks the actions: at most 7, shareable ones or *', async () => {
    const QueueUrl = await queue('perm-actions');
    const grant = (Actions: string[]) => t.sqs.send(new AddPermissionCommand({ QueueUrl, Label: 'a', AWSAccountIds: ['111111111111'], Actions }));
    const eight = [
      'ChangeMessageVisibility',
      'DeleteMessage',
      'GetQueueAttributes',
      'GetQueueUrl',
      'ListDeadLetterSourceQueues',
      'PurgeQueue',
      'ReceiveMessage',
      'SendMessage',
    ];
    const overLimit = await rejectionOf(grant(eight));
    expect(overLimit).toBeInstanceOf(OverLimit);
    expect(overLimit.message).toBe('8 Actions were found, maximum allowed is 7.');

    const ownerOnly = await rejectionOf(grant(['RemovePermission']));
    expect(ownerOnly.name).toBe('InvalidParameterValue');
    expect(ownerOnly.message).toBe('Value SQS:RemovePermission for parameter ActionName is invalid. Reason: Only the queue owner is allowed to invoke this action.');
    expect((await rejectionOf(grant(['Frobnicate']))).name).toBe('InvalidParameterValue');
    expect((await rejectionOf(grant([]))).name).toBe('MissingParameter');

    await grant(eight.slice(0, 7));
    expect(((await policyOf(QueueUrl))!.Statement as Array<{ Action: string[] }>)[0]!.Action).toHaveLength(7);
  });

  it('checks the account ids', async () => {
    const QueueUrl = await queue('perm-accounts');
    const grant = (AWSAccountIds: string[]) => t.sqs.send(new AddPermissionCommand({ QueueUrl, Label: 'a', AWSAccountIds, Actions: ['SendMessage'] }));
    const empty = await rejectionOf(grant([]));
    expect(empty.name).toBe('InvalidParameterValue');
    expect(empty.message).toBe('Value [] for parameter PrincipalId is invalid. Reason: Unable to verify.');
    expect((await rejectionOf(grant(['not-an-account']))).name).toBe('InvalidParameterValue');
    expect(await policyOf(QueueUrl)).toBeUndefined();
  });

  it('moves LastModifiedTimestamp', async () => {
    const QueueUrl = await queue('perm-modified');
    const modified = async () =>
      (await t.sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['LastModifiedTimestamp'] }))).Attributes!.LastModifiedTimestamp;
    const before = await modified();
    t.clock.advance(10_000);
    await t.sqs.send(new AddPermissionCommand({ QueueUrl, Label: 'a', AWSAccountIds: ['111111111111'], Actions: ['SendMessage'] }));
    expect(Number(await modified())).toBeGreaterThanOrEqual(Number(before) + 10);
  });

  it('answers QueueDoesNotExist for a queue that is not there', async () => {
    const QueueUrl = `${t.shim.url}/000000000000/no-such-queue`;
    await expect(
      t.sqs.send(new AddPermissionCommand({ QueueUrl, Label: 'a', AWSAccountIds: ['111111111111'], Actions: ['SendMessage'] })),
    ).rejects.toBeInstanceOf(QueueDoesNotExist);
    await expect(t.sqs.send(new RemovePermissionCommand({ QueueUrl, Label: 'a' }))).rejects.toBeInstanceOf(QueueDoesNotExist);
  });
});
