import type { SqsContext } from '../context.js';
import { invalidParameter, missingParameter } from '../errors.js';
import { type Input, optionalStringList, requiredString } from '../input.js';
import { validateTagKey } from '../tags.js';
import { queueByUrl } from '../queues.js';
import { call } from '../storage/step.js';

/** Removes tags from a queue by key; keys the queue does not have are ignored. */
export function* untagQueue(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'), 'change');
  const keys = optionalStringList(input, 'TagKeys');
  if (!keys) throw missingParameter('TagKeys');
  if (keys.length === 0) throw invalidParameter('Tag keys must be between 1 and 128 characters in length.');
  keys.forEach(validateTagKey);
  const tags = Object.fromEntries(Object.entries(queue.tags).filter(([key]) => !keys.includes(key)));
  yield* call(context.queues.update(queue, { tags }));
  return {};
}
