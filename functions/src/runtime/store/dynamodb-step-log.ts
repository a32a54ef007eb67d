import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand, paginateQuery } from '@aws-sdk/lib-dynamodb';
import type { SiteMark } from '../site.js';
import { mergeSagaDecision, mergeStepDecision } from './merge-rules.js';
import type { MergeOutcome, SagaRecord, SagaStatus, StepLogStore, StepRecord, StepStatus, StepUpdate } from './types.js';

const SAGA_SK = 'saga';
const stepKey = (index: number) => `step#${String(index).padStart(4, '0')}`;

function toStep(item: Record<string, unknown>): StepRecord {
  return {
    step: item.step as string,
    index: item.stepIndex as number,
    status: item.status as StepStatus,
    attempts: (item.attempts as number | undefined) ?? 0,
    compensationAttempts: (item.compensationAttempts as number | undefined) ?? 0,
    ...(typeof item.resultJson === 'string' ? { result: JSON.parse(item.resultJson) } : {}),
    ...(typeof item.error === 'string' ? { error: item.error } : {}),
    ...(item.ranAt ? { ranAt: item.ranAt as SiteMark } : {}),
    ...(item.compensatedAt ? { compensatedAt: item.compensatedAt as SiteMark } : {}),
  };
}

function toSaga(item: Record<string, unknown>): SagaRecord {
  return {
    workflowId: item.workflowId as string,
    workflow: item.workflow as string,
    status: item.status as SagaStatus,
    input: JSON.parse(item.inputJson as string),
  };
}

/** Conditional writes that lose to a concurrent writer are decided again, this many times at most (the first on the guess that the record is new). */
const MERGE_ATTEMPTS = 4;

/** Step log in the workflow table (pk `saga#<workflow id>`, sk `saga` or `step#<index>`). */
export class DynamoDbStepLog implements StepLogStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async load(workflowId: string) {
    const items: Record<string, unknown>[] = [];
    const pages = paginateQuery(
      { client: this.client },
      { TableName: this.tableName, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': `saga#${workflowId}` }, ConsistentRead: true },
    );
    for await (const page of pages) items.push(...(page.Items ?? []));
    const sagaItem = items.find((item) => item.sk === SAGA_SK);
    const steps = items.filter((item) => item.sk !== SAGA_SK).map(toStep);
    return { saga: sagaItem && toSaga(sagaItem), steps: steps.sort((a, b) => a.index - b.index) };
  }

  async startSaga(workflowId: string, workflow: string, input: unknown): Promise<SagaRecord> {
    try {
      const item = { pk: `saga#${workflowId}`, sk: SAGA_SK, workflowId, workflow, status: 'running', inputJson: JSON.stringify(input), createdAt: new Date().toISOString() };
      await this.client.send(new PutCommand({ TableName: this.tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
      return toSaga(item);
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      const { Item } = await this.client.send(
        new GetCommand({ TableName: this.tableName, Key: { pk: `saga#${workflowId}`, sk: SAGA_SK }, ConsistentRead: true }),
      );
      return toSaga(Item!);
    }
  }

  async setSagaStatus(workflowId: string, from: readonly SagaStatus[], next: SagaStatus): Promise<boolean> {
    const values = Object.fromEntries(from.map((status, i) => [`:from${i}`, status]));
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: `saga#${workflowId}`, sk: SAGA_SK },
          UpdateExpression: 'SET #status = :next, updatedAt = :now',
          ConditionExpression: `#status IN (${Object.keys(values).join(', ')})`,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ...values, ':next': next, ':now': new Date().toISOString() },
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }

  async transitionStep(
    workflowId: string,
    step: { name: string; index: number },
    from: readonly (StepStatus | 'absent')[],
    update: StepUpdate,
  ): Promise<StepRecord | undefined> {
    const states = from.filter((state): state is StepStatus => state !== 'absent');
    const values: Record<string, unknown> = Object.fromEntries(states.map((status, i) => [`:from${i}`, status]));
    const conditions = [
      ...(from.includes('absent') ? ['attribute_not_exists(pk)'] : []),
      ...(states.length > 0 ? [`#status IN (${Object.keys(values).join(', ')})`] : []),
    ];
    const sets = ['#status = :next', 'step = :name', 'stepIndex = :index', 'updatedAt = :now'];
    Object.assign(values, { ':next': update.status, ':name': step.name, ':index': step.index, ':now': new Date().toISOString() });
    if (update.status === 'started') sets.push('attempts = if_not_exists(attempts, :zero) + :one');
    if (update.status === 'compensating') sets.push('compensationAttempts = if_not_exists(compensationAttempts, :zero) + :one');
    if (update.status === 'started' || update.status === 'compensating') Object.assign(values, { ':zero': 0, ':one': 1 });
    if (update.result !== undefined) {
      sets.push('resultJson = :result');
      values[':result'] = JSON.stringify(update.result);
    }
    if (update.error !== undefined) {
      sets.push('#error = :error');
      values[':error'] = update.error;
    }
    if (update.ranAt !== undefined) {
      sets.push('ranAt = :ranAt');
      values[':ranAt'] = update.ranAt;
    }
    if (update.compensatedAt !== undefined) {
      sets.push('compensatedAt = :compensatedAt');
      values[':compensatedAt'] = update.compensatedAt;
    }
    try {
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { pk: `saga#${workflowId}`, sk: stepKey(step.index) },
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: conditions.join(' OR '),
          ExpressionAttributeNames: { '#status': 'status', ...(update.error !== undefined ? { '#error': 'error' } : {}) },
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return toStep(Attributes!);
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return undefined;
      throw error;
    }
  }

  /**
   * Merges an edge site's copy of a saga record (merge-rules.ts): written when absent here or behind
   * the edge's, with a condition on what was read; a conflict leaves this one as it is.
   */
  async mergeSaga(edge: SagaRecord): Promise<MergeOutcome<SagaRecord>> {
    const key = { pk: `saga#${edge.workflowId}`, sk: SAGA_SK };
    for (let attempt = 1; ; attempt++) {
      const Item = await this.readForMerge(key, attempt);
      const region = Item && toSaga(Item);
      const decision = mergeSagaDecision(region, edge);
      if (decision === 'identical') return { outcome: 'identical' };
      if (decision === 'conflict') return { outcome: 'conflict', region: region! };
      const now = new Date().toISOString();
      const item = { ...key, workflowId: edge.workflowId, workflow: edge.workflow, status: edge.status, inputJson: Item?.inputJson ?? JSON.stringify(edge.input), createdAt: Item?.createdAt ?? now, updatedAt: now };
      if (await this.putIfUnchanged(item, Item, ['status', 'workflow', 'inputJson'])) return { outcome: 'written' };
      if (attempt === MERGE_ATTEMPTS) throw new Error(`saga ${edge.workflowId} kept changing in the region while an edge copy was merged`);
    }
  }

  /** Merges an edge site's copy of a step record, as mergeSaga does. */
  async mergeStep(workflowId: string, edge: StepRecord): Promise<MergeOutcome<StepRecord>> {
    const key = { pk: `saga#${workflowId}`, sk: stepKey(edge.index) };
    for (let attempt = 1; ; attempt++) {
      const Item = await this.readForMerge(key, attempt);
      const region = Item && toStep(Item);
      const decision = mergeStepDecision(region, edge);
      if (decision === 'identical') return { outcome: 'identical' };
      if (decision === 'conflict') return { outcome: 'conflict', region: region! };
      const item = {
        ...key,
        step: edge.step,
        stepIndex: edge.index,
        status: edge.status,
        attempts: Math.max(edge.attempts, region?.attempts ?? 0),
        compensationAttempts: Math.max(edge.compensationAttempts, region?.compensationAttempts ?? 0),
        ...(edge.result !== undefined ? { resultJson: JSON.stringify(edge.result) } : Item?.resultJson !== undefined ? { resultJson: Item.resultJson } : {}),
        ...(edge.error !== undefined && { error: edge.error }),
        ...(edge.ranAt && { ranAt: edge.ranAt }),
        ...(edge.compensatedAt && { compensatedAt: edge.compensatedAt }),
        updatedAt: new Date().toISOString(),
      };
      if (await this.putIfUnchanged(item, Item, ['status', 'step', 'resultJson'])) return { outcome: 'written' };
      if (attempt === MERGE_ATTEMPTS) throw new Error(`step ${edge.step} of ${workflowId} kept changing in the region while an edge copy was merged`);
    }
  }

  /**
   * What the region holds of a record being merged. The first attempt takes it to be absent without
   * reading (a record the edge made during an outage is new to the region, the common case): its
   * write is conditional on that, and only when the condition fails is the record read.
   */
  private async readForMerge(key: Record<string, string>, attempt: number): Promise<Record<string, unknown> | undefined> {
    if (attempt === 1) return undefined;
    return (await this.client.send(new GetCommand({ TableName: this.tableName, Key: key, ConsistentRead: true }))).Item;
  }

  /**
   * Puts an item if it is still absent (`read` undefined), or still holds the values of `read`'s
   * attributes that the merge decision looked at.
   */
  private async putIfUnchanged(item: Record<string, unknown>, read: Record<string, unknown> | undefined, decidedOn: readonly string[]): Promise<boolean> {
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    const conditions = read
      ? decidedOn.map((attribute, i) => {
          names[`#a${i}`] = attribute;
          if (read[attribute] === undefined) return `attribute_not_exists(#a${i})`;
          values[`:v${i}`] = read[attribute];
          return `#a${i} = :v${i}`;
        })
      : ['attribute_not_exists(pk)'];
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: item,
          ConditionExpression: conditions.join(' AND '),
          ...(Object.keys(names).length > 0 && { ExpressionAttributeNames: names }),
          ...(Object.keys(values).length > 0 && { ExpressionAttributeValues: values }),
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}
