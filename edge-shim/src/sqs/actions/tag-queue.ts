import type { SqsContext } from '../context.js';
import { missingParameter } from '../errors.js';
import { type Input, optionalStringMap, requiredString } from '../input.js';
import { validateTags } from '../tags.js';
import { queueByUrl } from '../queues.js';
import { call } from '../storage/step.js';

/** Adds tags to a queue; a key it already has gets the new value. */
export function* tagQueue(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'), 'change');
  const tags = optionalStringMap(input, 'Tags');
  if (!tags || Object.keys(tags).length === 0) throw missingParameter('Tags');
  validateTags(tags, queue.tags);
  yield* call(context.queues.update(queue, { tags: { ...queue.tags, ...tags } }));
  return {};
}
