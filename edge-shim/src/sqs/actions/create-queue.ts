import { type SqsContext, queueUrl } from '../context.js';
import { SqsError } from '../errors.js';
import { type Input, optionalStringMap, requiredString } from '../input.js';
import { validateAttributes, withDefaults } from '../queue-attributes.js';
import { checkQueueName } from '../queues.js';
import { validateRedrivePolicies } from '../redrive.js';
import { validateTags } from '../tags.js';

const RECENT_DELETION_MS = 60_000;

export function createQueue(context: SqsContext, input: Input) {
  const name = requiredString(input, 'QueueName');
  const requested = optionalStringMap(input, 'Attributes') ?? {};
  const tags = optionalStringMap(input, 'tags') ?? {};
  const fifo = requested.FifoQueue === 'true' || (requested.FifoQueue === undefined && name.endsWith('.fifo'));
  if (requested.FifoQueue === 'true' && !name.endsWith('.fifo')) {
    throw new SqsError('InvalidParameterValue', 'The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix and be 1 to 80 in length.');
  }
  if (requested.FifoQueue === 'false') delete requested.FifoQueue;
  checkQueueName(name, fifo);
  validateAttributes(requested, fifo, true);
  validateTags(tags);
  const attributes = withDefaults(requested, fifo);

  const existing = context.queues.byName(name);
  if (existing) {
    // Creating an existing queue is idempotent only when every attribute given matches.
    for (const [key, value] of Object.entries(requested)) {
      if (existing.attributes[key] !== value) {
        throw new SqsError('QueueNameExists', 'A queue already exists with the same name and a different value for attribute ' + key);
      }
    }
    return { QueueUrl: queueUrl(context, existing) };
  }
  const deletedAt = context.queues.deletedAt(name);
  if (deletedAt !== undefined && context.now - deletedAt < RECENT_DELETION_MS) {
    throw new SqsError('QueueDeletedRecently', 'You must wait 60 seconds after deleting a queue before you can create another with the same name.');
  }
  validateRedrivePolicies(context, name, fifo, attributes);
  const queue = context.queues.create(name, fifo, attributes, tags, context.now);
  return { QueueUrl: queueUrl(context, queue) };
}
