import type { SqsContext } from '../context.js';
import { SqsError, invalidParameter, missingParameter } from '../errors.js';
import { type Input, optionalStringList, requiredString } from '../input.js';
import { MAX_POLICY_BYTES, MAX_POLICY_STATEMENTS } from '../queue-attributes.js';
import { queueByUrl } from '../queues.js';
import { type Step, call } from '../storage/step.js';
import type { Permission, Queue } from '../storage/records.js';

const LABEL = /^[A-Za-z0-9_-]{1,80}$/;
const MAX_ACTIONS = 7;
// Actions another account can be given; SendMessage, DeleteMessage and ChangeMessageVisibility
// also cover their batch versions, which may be named too.
const SHAREABLE_ACTIONS = new Set([
  '*',
  'ChangeMessageVisibility',
  'ChangeMessageVisibilityBatch',
  'DeleteMessage',
  'DeleteMessageBatch',
  'GetQueueAttributes',
  'GetQueueUrl',
  'ListDeadLetterSourceQueues',
  'PurgeQueue',
  'ReceiveMessage',
  'SendMessage',
  'SendMessageBatch',
]);
// "Cross-account permissions don't apply to" these (SQS Developer Guide, custom policy limitations).
const OWNER_ONLY_ACTIONS = new Set([
  'AddPermission',
  'CancelMessageMoveTask',
  'CreateQueue',
  'DeleteQueue',
  'ListMessageMoveTasks',
  'ListQueueTags',
  'ListQueues',
  'RemovePermission',
  'SetQueueAttributes',
  'StartMessageMoveTask',
  'TagQueue',
  'UntagQueue',
]);

export interface PolicyDocument {
  readonly Statement: ReadonlyArray<Record<string, unknown>>;
  readonly [key: string]: unknown;
}

/** The queue's Policy attribute as a document, or the empty one SQS starts from for AddPermission. */
export function queuePolicy(queue: Queue): PolicyDocument {
  const text = queue.attributes.Policy;
  if (text === undefined || text === '') return { Version: '2012-10-17', Id: `${queue.arn}/SQSDefaultPolicy`, Statement: [] };
  const parsed = JSON.parse(text) as Record<string, unknown>;
  const statement = parsed.Statement;
  const statements = Array.isArray(statement) ? statement : statement === undefined ? [] : [statement];
  return { ...parsed, Statement: statements as Array<Record<string, unknown>> };
}

/** Writes a queue's policy and keeps `permissions` to the labels still in it. */
export function* savePolicy(context: SqsContext, queue: Queue, policy: PolicyDocument, added?: Permission): Step<void> {
  const labels = new Set(policy.Statement.map((statement) => statement.Sid));
  const permissions = [...queue.permissions.filter((permission) => labels.has(permission.label)), ...(added ? [added] : [])];
  const attributes = { ...queue.attributes };
  if (policy.Statement.length > 0) attributes.Policy = JSON.stringify(policy);
  else delete attributes.Policy;
  yield* call(context.queues.update(queue, { attributes, permissions, modifiedAt: context.now }));
}

const oneOrMany = (values: string[]): string | string[] => (values.length === 1 ? values[0]! : values);

function readAccountIds(input: Input): string[] {
  const accountIds = optionalStringList(input, 'AWSAccountIds');
  if (accountIds === undefined) throw missingParameter('AWSAccountIds');
  const unverifiable = accountIds.length === 0 ? '[]' : accountIds.find((id) => !/^\d{12}$/.test(id));
  if (unverifiable !== undefined) throw invalidParameter(`Value ${unverifiable} for parameter PrincipalId is invalid. Reason: Unable to verify.`);
  return accountIds;
}

function readActions(input: Input): string[] {
  const actions = optionalStringList(input, 'Actions');
  if (actions === undefined || actions.length === 0) throw missingParameter('Actions');
  if (actions.length > MAX_ACTIONS) throw new SqsError('OverLimit', `${actions.length} Actions were found, maximum allowed is ${MAX_ACTIONS}.`);
  for (const action of actions) {
    if (OWNER_ONLY_ACTIONS.has(action)) {
      throw invalidParameter(`Value SQS:${action} for parameter ActionName is invalid. Reason: Only the queue owner is allowed to invoke this action.`);
    }
    if (!SHAREABLE_ACTIONS.has(action)) {
      throw invalidParameter(`Value SQS:${action} for parameter ActionName is invalid. Reason: Please refer to the appropriate WSDL for a list of valid actions.`);
    }
  }
  return actions;
}

/**
 * Grants accounts actions on a queue by adding a statement, named by its label, to the queue's
 * Policy. The shim serves one account and does not evaluate policies: the grant is recorded and
 * shown, not enforced.
 */
export function* addPermission(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'), 'change');
  const label = requiredString(input, 'Label');
  if (!LABEL.test(label)) {
    throw invalidParameter(
      `Value ${label} for parameter Label is invalid. Reason: Must be 1 to 80 alphanumeric characters, hyphens or underscores.`,
    );
  }
  const accountIds = readAccountIds(input);
  const actions = readActions(input);
  const policy = queuePolicy(queue);
  if (policy.Statement.some((statement) => statement.Sid === label)) {
    throw invalidParameter(`Value ${label} for parameter Label is invalid. Reason: Already exists.`);
  }
  const statement = {
    Sid: label,
    Effect: 'Allow',
    Principal: { AWS: oneOrMany(accountIds.map((id) => `arn:aws:iam::${id}:root`)) },
    Action: oneOrMany(actions.map((action) => `SQS:${action}`)),
    Resource: queue.arn,
  };
  const next = { ...policy, Statement: [...policy.Statement, statement] };
  if (next.Statement.length > MAX_POLICY_STATEMENTS || Buffer.byteLength(JSON.stringify(next)) > MAX_POLICY_BYTES) {
    throw new SqsError('OverLimit', `The queue policy would exceed its quota of ${MAX_POLICY_STATEMENTS} statements or ${MAX_POLICY_BYTES} bytes.`);
  }
  yield* savePolicy(context, queue, next, { label, accountIds, actions });
  return {};
}
