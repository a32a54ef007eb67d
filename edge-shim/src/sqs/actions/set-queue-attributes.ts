import type { SqsContext } from '../context.js';
import { missingParameter } from '../errors.js';
import { type Input, optionalStringMap, requiredString } from '../input.js';
import { applyAttributes, validateAttributes } from '../queue-attributes.js';
import { validateRedrivePolicies } from '../redrive.js';
import { queueByUrl } from '../queues.js';
import { call } from '../storage/step.js';

export function* setQueueAttributes(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'), 'change');
  const given = optionalStringMap(input, 'Attributes');
  if (given === undefined) throw missingParameter('Attributes');
  const attributes = applyAttributes(queue.attributes, validateAttributes(given, queue.fifo, false));
  // Only the policies this request changes are checked: a queue whose dead-letter queue is gone
  // must still accept changes to its other attributes.
  const changed = Object.fromEntries(Object.entries(attributes).filter(([name]) => Object.hasOwn(given, name)));
  yield* validateRedrivePolicies(context, queue.name, queue.fifo, changed);
  const updated = yield* call(context.queues.update(queue, { attributes, modifiedAt: context.now }));
  if (updated.attributes.DelaySeconds !== queue.attributes.DelaySeconds) yield* call(context.messages.applyQueueDelay(updated, context.now));
  context.messagesAvailable(updated, Infinity); // a shorter delay or longer retention can make messages receivable
  return {};
}
