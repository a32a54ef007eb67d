import { isDeepStrictEqual } from 'node:util';
import { IdempotencyRecordStatus, PERSISTENCE_ATTRIBUTE_KEY_MAPPINGS as ATTRIBUTES } from '@aws-lambda-powertools/idempotency';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { TABLES } from '../../workflow-definition.js';
import type { IdempotencyRow } from './sqlite-idempotency.js';
import type { MergeOutcome } from './types.js';

/** An idempotency record as both backends hold it; `data` is the stored result. */
export interface IdempotencyItem {
  readonly id: string;
  readonly status: string;
  readonly expiration?: number;
  readonly inProgressExpiration?: number;
  readonly data?: unknown;
  readonly validation?: string;
}

export function idempotencyItemOf(row: IdempotencyRow): IdempotencyItem {
  return {
    id: row.id,
    status: row.status,
    ...(row.expiration !== null && { expiration: row.expiration }),
    ...(row.in_progress_expiration !== null && { inProgressExpiration: row.in_progress_expiration }),
    ...(row.data !== null && { data: JSON.parse(row.data) }),
    ...(row.validation !== null && { validation: row.validation }),
  };
}

/**
 * Completed idempotency records written into the region's idempotency table in the items
 * Powertools' DynamoDB layer reads, so that a region agent given a task an edge agent completed
 * answers with the edge's result instead of doing it again.
 */
export class DynamoDbIdempotencyRecords {
  private readonly keyAttribute = TABLES.idempotency.partitionKey;

  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /**
   * Writes a completed record under the condition Powertools writes its own (no record, an expired
   * one, or one in progress past its deadline); otherwise compares: the same status, payload hash
   * and result are identical, anything else (another result, or a run in progress in the region) a conflict.
   */
  async merge(edge: IdempotencyItem): Promise<MergeOutcome<IdempotencyItem>> {
    if (edge.status !== IdempotencyRecordStatus.COMPLETED) throw new Error(`only completed idempotency records are merged, not ${edge.status} (${edge.id})`);
    const now = Date.now();
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            [this.keyAttribute]: edge.id,
            [ATTRIBUTES.statusAttr]: edge.status,
            ...(edge.expiration !== undefined && { [ATTRIBUTES.expiryAttr]: edge.expiration }),
            ...(edge.data !== undefined && { [ATTRIBUTES.dataAttr]: edge.data }),
            ...(edge.validation !== undefined && { [ATTRIBUTES.validationKeyAttr]: edge.validation }),
          },
          ConditionExpression: 'attribute_not_exists(#id) OR #expiry < :now OR (#status = :inprogress AND attribute_exists(#inProgressExpiry) AND #inProgressExpiry < :nowMs)',
          ExpressionAttributeNames: {
            '#id': this.keyAttribute,
            '#expiry': ATTRIBUTES.expiryAttr,
            '#status': ATTRIBUTES.statusAttr,
            '#inProgressExpiry': ATTRIBUTES.inProgressExpiryAttr,
          },
          ExpressionAttributeValues: { ':now': now / 1000, ':nowMs': now, ':inprogress': IdempotencyRecordStatus.INPROGRESS },
        }),
      );
      return { outcome: 'written' };
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
    }
    const region = await this.get(edge.id);
    if (!region) throw new Error(`idempotency record ${edge.id} refused the edge's copy but is gone`);
    const same = region.status === edge.status && region.validation === edge.validation && isDeepStrictEqual(region.data, edge.data);
    return same ? { outcome: 'identical' } : { outcome: 'conflict', region };
  }

  async get(id: string): Promise<IdempotencyItem | undefined> {
    const { Item } = await this.client.send(new GetCommand({ TableName: this.tableName, Key: { [this.keyAttribute]: id }, ConsistentRead: true }));
    if (!Item) return undefined;
    return {
      id,
      status: Item[ATTRIBUTES.statusAttr],
      ...(Item[ATTRIBUTES.expiryAttr] !== undefined && { expiration: Item[ATTRIBUTES.expiryAttr] }),
      ...(Item[ATTRIBUTES.inProgressExpiryAttr] !== undefined && { inProgressExpiration: Item[ATTRIBUTES.inProgressExpiryAttr] }),
      ...(Item[ATTRIBUTES.dataAttr] !== undefined && { data: Item[ATTRIBUTES.dataAttr] }),
      ...(Item[ATTRIBUTES.validationKeyAttr] !== undefined && { validation: Item[ATTRIBUTES.validationKeyAttr] }),
    };
  }
}
