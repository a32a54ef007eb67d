import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, PutCommand, paginateQuery } from '@aws-sdk/lib-dynamodb';
import { type CheckpointStore, type Snapshot, VersionConflictError } from './types.js';

const versionKey = (version: number) => `v#${String(version).padStart(12, '0')}`;

/** Checkpoints in the state table (pk `checkpoint#<key>`, sk `v#<version>`). */
export class DynamoDbCheckpoints implements CheckpointStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async put(key: string, snapshot: Snapshot): Promise<void> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { pk: `checkpoint#${key}`, sk: versionKey(snapshot.version), ...snapshot },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        throw new VersionConflictError(`checkpoint ${key} already has version ${snapshot.version}`);
      }
      throw error;
    }
  }

  async list(key: string): Promise<Snapshot[]> {
    const snapshots: Snapshot[] = [];
    const pages = paginateQuery(
      { client: this.client },
      {
        TableName: this.tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': `checkpoint#${key}`, ':prefix': 'v#' },
        ScanIndexForward: false,
        ConsistentRead: true,
      },
    );
    for await (const page of pages) {
      for (const item of page.Items ?? []) {
        snapshots.push({
          version: item.version,
          state: item.state,
          sha256: item.sha256,
          createdAt: item.createdAt,
          writer: item.writer,
          baseVersion: item.baseVersion,
        });
      }
    }
    return snapshots;
  }
}
