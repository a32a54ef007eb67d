import type { SqsContext } from '../context.js';
import { missingParameter } from '../errors.js';
import { type Input, optionalStringMap, requiredString } from '../input.js';
import { applyAttributes, validateAttributes } from '../queue-attributes.js';
import { validateRedrivePolicies } from '../redrive.js';

export function setQueueAttributes(context: SqsContext, input: Input) {
  const queue = context.queues.byUrl(requiredString(input, 'QueueUrl'));
  const given = optionalStringMap(input, 'Attributes');
  if (given === undefined) throw missingParameter('Attributes');
  const attributes = applyAttributes(queue.attributes, validateAttributes(given, queue.fifo, false));
  validateRedrivePolicies(context, queue.name, queue.fifo, attributes);
  const updated = context.queues.update(queue, { attributes, modifiedAt: context.now });
  if (updated.attributes.DelaySeconds !== queue.attributes.DelaySeconds) context.messages.applyQueueDelay(updated);
  context.messagesAvailable(updated); // a shorter delay or longer retention can make messages receivable
  return {};
}
