import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, TransactWriteCommand, UpdateCommand, paginateQuery, paginateScan } from '@aws-sdk/lib-dynamodb';
import { checkIncrements } from './counter-increments.js';
import type { CounterIncrement, CounterOperation, CounterStore, IncrementOutcome, MergeOutcome, WriterCount } from './types.js';

const counterPk = (key: string) => `counter#${key}`;
const writerSk = (writer: string) => `writer#${writer}`;
const operationPk = (operationId: string) => `counter-op#${operationId}`;

/**
 * G-counters in the state table: one item per counter and writer (pk `counter#<key>`, sk
 * `writer#<writer>`) and one per applied operation (pk `counter-op#<id>`), written in one transaction
 * whose conditions make a repeated operation a no-op and keep each limit.
 */
export class DynamoDbCounters implements CounterStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async increment(operationId: string, writer: string, increments: readonly CounterIncrement[]): Promise<IncrementOutcome> {
    checkIncrements(operationId, increments);
    // A limit the delta alone passes can never be kept (the region never settles, so nothing is taken off).
    if (increments.some(({ delta, limit }) => limit !== undefined && delta > limit)) return 'over-limit';
    const at = new Date().toISOString();
    try {
      await this.client.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Put: {
                TableName: this.tableName,
                Item: { pk: operationPk(operationId), sk: 'op', writer, increments: increments.map(({ key, delta }) => ({ key, delta })), at },
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            ...increments.map(({ key, delta, limit }) => ({
              Update: {
                TableName: this.tableName,
                Key: { pk: counterPk(key), sk: writerSk(writer) },
                UpdateExpression: 'SET #key = :key, writer = :writer ADD #count :delta',
                ...(limit !== undefined && { ConditionExpression: 'attribute_not_exists(#count) OR #count <= :most' }),
                ExpressionAttributeNames: { '#key': 'key', '#count': 'count' },
                ExpressionAttributeValues: { ':key': key, ':writer': writer, ':delta': delta, ...(limit !== undefined && { ':most': limit - delta }) },
              },
            })),
          ],
        }),
      );
      return 'applied';
    } catch (error) {
      if (!(error instanceof TransactionCanceledException)) throw error;
      const reasons = error.CancellationReasons ?? [];
      if (reasons[0]?.Code === 'ConditionalCheckFailed') return 'already-applied';
      if (reasons.slice(1).some((reason) => reason.Code === 'ConditionalCheckFailed')) return 'over-limit';
      throw error;
    }
  }

  async read(key: string): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    const pages = paginateQuery(
      { client: this.client },
      { TableName: this.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': counterPk(key) }, ConsistentRead: true },
    );
    for await (const page of pages) for (const item of page.Items ?? []) counts[item.writer as string] = item.count as number;
    return counts;
  }

  /** Every writer's count of every counter. */
  async *writerCounts(): AsyncIterable<WriterCount> {
    const pages = paginateScan(
      { client: this.client },
      { TableName: this.tableName, FilterExpression: 'begins_with(pk, :prefix)', ExpressionAttributeValues: { ':prefix': 'counter#' }, ConsistentRead: true },
    );
    for await (const page of pages) for (const item of page.Items ?? []) yield { key: item.key, writer: item.writer, count: item.count };
  }

  /** Merges another copy's count of a writer: keeps the larger (`identical` when the table's is not smaller). */
  async mergeWriterCount({ key, writer, count }: WriterCount): Promise<'written' | 'identical'> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: counterPk(key), sk: writerSk(writer) },
          UpdateExpression: 'SET #key = :key, writer = :writer, #count = :count',
          ConditionExpression: 'attribute_not_exists(#count) OR #count < :count',
          ExpressionAttributeNames: { '#key': 'key', '#count': 'count' },
          ExpressionAttributeValues: { ':key': key, ':writer': writer, ':count': count },
        }),
      );
      return 'written';
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return 'identical';
      throw error;
    }
  }

  /**
   * Records an operation applied elsewhere, so that the region does not apply it again. The same
   * operation applied by another writer is a conflict: its increments were counted twice.
   */
  async recordOperation(operation: CounterOperation): Promise<MergeOutcome<CounterOperation>> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: operationPk(operation.operationId), sk: 'op', writer: operation.writer, increments: operation.increments, at: operation.at },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return { outcome: 'written' };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: { pk: operationPk(operation.operationId), sk: 'op' }, ConsistentRead: true }));
    if (Item?.writer === operation.writer) return { outcome: 'identical' };
    return { outcome: 'conflict', region: { operationId: operation.operationId, writer: Item?.writer, increments: Item?.increments ?? [], at: Item?.at } };
  }
}
