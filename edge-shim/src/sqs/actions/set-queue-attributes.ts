import type { SqsContext } from '../context.js';
import { type Input, optionalStringMap, requiredString } from '../input.js';
import { validateAttributes } from '../queue-attributes.js';
import { validateRedrivePolicies } from '../redrive.js';

export function setQueueAttributes(context: SqsContext, input: Input) {
  const queue = context.queues.byUrl(requiredString(input, 'QueueUrl'));
  const changes = optionalStringMap(input, 'Attributes') ?? {};
  validateAttributes(changes, queue.fifo, false);
  const attributes = { ...queue.attributes, ...changes };
  // An empty string removes a policy attribute.
  for (const name of ['Policy', 'RedrivePolicy', 'RedriveAllowPolicy', 'KmsMasterKeyId']) {
    if (attributes[name] === '') delete attributes[name];
  }
  validateRedrivePolicies(context, queue.name, queue.fifo, attributes);
  const updated = context.queues.update(queue, { attributes, modifiedAt: context.now });
  context.messagesAvailable(updated); // a shorter delay or longer retention can make messages receivable
  return {};
}
