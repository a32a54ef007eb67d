import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, TransactWriteCommand, paginateScan } from '@aws-sdk/lib-dynamodb';
import { PermanentError } from '../errors.js';
import type { LedgerEntry, LedgerStore, Posting, Side } from './types.js';

const POSTING_SK = 'posting';
const ACCOUNT_SK = 'account';
const entryKey = (entry: LedgerEntry) => `entry#${entry.postingId}#${entry.leg}`;

/**
 * Ledger in its table: a posting header (pk `posting#<id>`) and one item per entry under the account
 * it moves (pk `account#<account>`, sk `entry#<posting>#<leg>`), written in one transaction whose
 * conditions make a repeated posting a no-op and refuse closed accounts.
 */
export class DynamoDbLedger implements LedgerStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async writePosting(posting: Posting): Promise<'written' | 'already-posted'> {
    const accounts = [...new Set(posting.entries.map((entry) => entry.account))];
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.tableName,
                Item: { pk: `posting#${posting.id}`, sk: POSTING_SK, memo: posting.memo, entries: posting.entries, createdAt: new Date().toISOString() },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            ...accounts.map((account) => ({
              ConditionCheck: {
                TableName: this.tableName,
                Key: { pk: `account#${account}`, sk: ACCOUNT_SK },
                ConditionExpression: 'attribute_not_exists(#status) OR #status <> :closed',
                ExpressionAttributeNames: { '#status': 'status' },
                ExpressionAttributeValues: { ':closed': 'closed' },
              },
            })),
            ...posting.entries.map((entry) => ({
              Put: {
                TableName: this.tableName,
                Item: { pk: `account#${entry.account}`, sk: entryKey(entry), ...entry },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            })),
          ],
        }),
      );
      return 'written';
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = error.CancellationReasons ?? [];
      if (reasons[0]?.Code === 'ConditionalCheckFailed') return 'already-posted';
      const closed = accounts.filter((_, i) => reasons[i + 1]?.Code === 'ConditionalCheckFailed');
      if (closed.length > 0) throw new PermanentError(`ledger account closed: ${closed.join(', ')}`);
      throw error;
    }
  }

  async getPosting(id: string): Promise<Posting | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: { pk: `posting#${id}`, sk: POSTING_SK }, ConsistentRead: true }),
    );
    return Item && { id, memo: Item.memo, entries: Item.entries };
  }

  async closeAccount(account: string): Promise<void> {
    await this.client.send(new PutCommand({ TableName: this.tableName, Item: { pk: `account#${account}`, sk: ACCOUNT_SK, status: 'closed' } }));
  }

  async *entries(): AsyncIterable<LedgerEntry> {
    const pages = paginateScan(
      { client: this.client },
      {
        TableName: this.tableName,
        FilterExpression: 'begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':prefix': 'entry#' },
        ConsistentRead: true,
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) {
        yield {
          postingId: item.postingId,
          leg: item.leg,
          account: item.account,
          side: item.side as Side,
          amountMinor: item.amountMinor,
          currency: item.currency,
        };
      }
    }
  }
}
