import { type SqsContext, queueUrl } from '../context.js';
import { SqsError } from '../errors.js';
import { type Input, optionalString, requiredString } from '../input.js';
import { call } from '../storage/step.js';

export function* getQueueUrl(context: SqsContext, input: Input) {
  const name = requiredString(input, 'QueueName');
  const owner = optionalString(input, 'QueueOwnerAWSAccountId');
  const queue = owner === undefined || owner === context.queues.accountId ? yield* call(context.queues.byName(name)) : undefined;
  if (!queue) throw new SqsError('QueueDoesNotExist', 'The specified queue does not exist.');
  return { QueueUrl: queueUrl(context, queue) };
}
