import type { SqsContext } from '../context.js';
import { type Input, requiredString } from '../input.js';
import { queueByUrl } from '../queues.js';
import { call } from '../storage/step.js';

export function* deleteQueue(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'));
  yield* call(context.queues.remove(queue, context.now));
  context.messagesAvailable(queue, Infinity); // ends the long polls on it
  return {};
}
