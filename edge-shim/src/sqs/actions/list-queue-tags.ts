import type { SqsContext } from '../context.js';
import { type Input, requiredString } from '../input.js';
import { queueByUrl } from '../queues.js';

/** A queue's tags; SQS leaves `Tags` out when the queue has none. */
export function* listQueueTags(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'));
  return Object.keys(queue.tags).length > 0 ? { Tags: { ...queue.tags } } : {};
}
