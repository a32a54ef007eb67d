import { randomUUID } from 'node:crypto';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { createWorkflowResources } from '../../functions/src/local-pipeline/resources.js';
import { PermanentError } from '../../functions/src/runtime/errors.js';
import { Ledger } from '../../functions/src/runtime/ledger.js';
import { DynamoDbLedger } from '../../functions/src/runtime/store/dynamodb-ledger.js';
import type { WorkflowDefinition } from '../../functions/src/workflow-definition.js';
import { emulator } from '../helpers/emulator.js';
import { documentClient } from './support/runtime.js';

const workflow: WorkflowDefinition = { name: 'state', stages: [] };
let tables: { ledger: string };
let ledger: Ledger;
let store: DynamoDbLedger;

beforeAll(async () => {
  ({ tables } = await createWorkflowResources(emulator(), workflow, { namePrefix: `rt-state-${randomUUID().slice(0, 8)}-` }));
  store = new DynamoDbLedger(documentClient(), tables.ledger);
  ledger = new Ledger(store);
});

const euros = (amountMinor: number) => ({ amountMinor, currency: 'EUR' });

describe('double-entry ledger', () => {
  it('posts balanced entries once, however often the same posting is repeated', async () => {
    const id = `p-${randomUUID()}`;
    expect(await ledger.post(id, { from: 'customer:c1', to: 'merchant:m1', money: euros(1_999), memo: 'order 1' })).toBe('written');
    expect(await ledger.post(id, { from: 'customer:c1', to: 'merchant:m1', money: euros(1_999), memo: 'order 1' })).toBe('already-posted');
    const posting = await ledger.getPosting(id);
    expect(posting?.entries.map((entry) => [entry.account, entry.side, entry.amountMinor])).toEqual([
      ['customer:c1', 'debit', 1_999],
      ['merchant:m1', 'credit', 1_999],
    ]);
    const balance = await ledger.trialBalance();
    expect(balance.balanced).toBe(true);
    expect(balance.byCurrency.EUR!.debitsMinor).toBe(balance.byCurrency.EUR!.creditsMinor);
  });

  it('rejects amounts that are not positive integers of minor units', async () => {
    for (const amountMinor of [12.5, 0, -100, Number.MAX_SAFE_INTEGER + 2]) {
      await expect(ledger.post(`p-${randomUUID()}`, { from: 'a', to: 'b', money: euros(amountMinor), memo: 'bad' })).rejects.toBeInstanceOf(PermanentError);
    }
    await expect(ledger.post(`p-${randomUUID()}`, { from: 'a', to: 'b', money: { amountMinor: 100, currency: 'euro' }, memo: 'bad' })).rejects.toBeInstanceOf(PermanentError);
  });

  it('refuses to post to a closed account and writes nothing', async () => {
    const id = `p-${randomUUID()}`;
    await store.closeAccount('merchant:closed');
    const before = await ledger.trialBalance();
    await expect(ledger.post(id, { from: 'customer:c2', to: 'merchant:closed', money: euros(500), memo: 'x' })).rejects.toThrow('ledger account closed: merchant:closed');
    expect(await ledger.getPosting(id)).toBeUndefined();
    expect((await ledger.trialBalance()).entries).toBe(before.entries);
  });

  it('reverses a posting once with the sides swapped', async () => {
    const id = `p-${randomUUID()}`;
    await ledger.post(id, { from: 'customer:c3', to: 'merchant:m3', money: euros(4_200), memo: 'order 3' });
    expect(await ledger.reverse(id, 'refund')).toBe('written');
    expect(await ledger.reverse(id, 'refund')).toBe('already-posted');
    expect(await ledger.reverse(`p-${randomUUID()}`, 'refund')).toBe('nothing-to-reverse');
    const reversal = await ledger.getPosting(`${id}:reversal`);
    expect(reversal?.entries.map((entry) => [entry.account, entry.side, entry.amountMinor])).toEqual([
      ['customer:c3', 'credit', 4_200],
      ['merchant:m3', 'debit', 4_200],
    ]);
    expect((await ledger.trialBalance()).balanced).toBe(true);
  });

  it('detects an unbalanced ledger', async () => {
    const id = `p-${randomUUID()}`;
    await ledger.post(id, { from: 'customer:c4', to: 'merchant:m4', money: euros(1_000), memo: 'order 4' });
    // Tamper with one entry behind the ledger's back.
    await documentClient().send(
      new UpdateCommand({ TableName: tables.ledger, Key: { pk: 'account#merchant:m4', sk: `entry#${id}#1` }, UpdateExpression: 'SET amountMinor = :a', ExpressionAttributeValues: { ':a': 999 } }),
    );
    const balance = await ledger.trialBalance();
    expect(balance.balanced).toBe(false);
    await documentClient().send(
      new UpdateCommand({ TableName: tables.ledger, Key: { pk: 'account#merchant:m4', sk: `entry#${id}#1` }, UpdateExpression: 'SET amountMinor = :a', ExpressionAttributeValues: { ':a': 1_000 } }),
    );
    expect((await ledger.trialBalance()).balanced).toBe(true);
  });
});
