import type { SqsContext } from '../context.js';
import { invalidParameter } from '../errors.js';
import { type Input, requiredString } from '../input.js';
import { queuePolicy, savePolicy } from './add-permission.js';
import { queueByUrl } from '../queues.js';

/** Removes the statement with this label from the queue's Policy; the last one takes the Policy away. */
export function* removePermission(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'), 'change');
  const label = requiredString(input, 'Label');
  const policy = queuePolicy(queue);
  const remaining = policy.Statement.filter((statement) => statement.Sid !== label);
  if (remaining.length === policy.Statement.length) {
    throw invalidParameter(`Value ${label} for parameter Label is invalid. Reason: can't find label on existing policy.`);
  }
  yield* savePolicy(context, queue, { ...policy, Statement: remaining });
  return {};
}
