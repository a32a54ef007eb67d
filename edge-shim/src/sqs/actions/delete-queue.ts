import type { SqsContext } from '../context.js';
import { type Input, requiredString } from '../input.js';

export function deleteQueue(context: SqsContext, input: Input) {
  const queue = context.queues.byUrl(requiredString(input, 'QueueUrl'));
  context.queues.remove(queue, context.now);
  context.messagesAvailable(queue, Infinity); // ends the long polls on it
  return {};
}
