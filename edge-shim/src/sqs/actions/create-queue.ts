import { isDeepStrictEqual } from 'node:util';
import { type SqsContext, queueUrl } from '../context.js';
import { SqsError } from '../errors.js';
import { type Input, optionalStringMap, requiredString } from '../input.js';
import { type QueueAttributes, applyAttributes, defaultAttributes, validateAttributes } from '../queue-attributes.js';
import { checkQueueName } from '../queues.js';
import { validateRedrivePolicies } from '../redrive.js';
import { validateTags } from '../tags.js';
import { call } from '../storage/step.js';
import type { Queue } from '../storage/records.js';

const RECENT_DELETION_MS = 60_000;
const JSON_ATTRIBUTES = new Set(['Policy', 'RedrivePolicy', 'RedriveAllowPolicy']);

function sameValue(name: string, requested: string, existing: string | undefined): boolean {
  if (existing === undefined || !JSON_ATTRIBUTES.has(name) || requested === '') return requested === existing;
  return isDeepStrictEqual(JSON.parse(requested), JSON.parse(existing));
}

/**
 * Creating a queue that exists answers its URL only when every attribute the request gives has the
 * queue's value (attributes it leaves out are not compared), and the tags it gives, if any, are the
 * queue's tags.
 */
function checkSameQueue(existing: Queue, requested: QueueAttributes, tags: Record<string, string>): void {
  for (const [name, value] of Object.entries(requested)) {
    if (name === 'FifoQueue' && value === 'false' && !existing.fifo) continue;
    if (!sameValue(name, value, existing.attributes[name])) {
      throw new SqsError('QueueNameExists', `A queue already exists with the same name and a different value for attribute ${name}`);
    }
  }
  if (Object.keys(tags).length > 0 && !isDeepStrictEqual(tags, existing.tags)) {
    throw new SqsError('QueueNameExists', 'A queue already exists with the same name and different tags');
  }
}

export function* createQueue(context: SqsContext, input: Input) {
  const name = requiredString(input, 'QueueName');
  const given = optionalStringMap(input, 'Attributes') ?? {};
  const tags = optionalStringMap(input, 'tags') ?? {};
  // Only the FifoQueue attribute makes a FIFO queue; the name must then end in .fifo (and a
  // standard queue's name cannot contain the dot).
  const fifo = given.FifoQueue === 'true';
  const requested = validateAttributes(given, fifo, true);
  checkQueueName(name, fifo);
  validateTags(tags);

  const existing = yield* call(context.queues.byName(name));
  if (existing) {
    checkSameQueue(existing, requested, tags);
    return { QueueUrl: queueUrl(context, existing) };
  }
  const deletedAt = yield* call(context.queues.deletedAt(name));
  if (deletedAt !== undefined && context.now - deletedAt < RECENT_DELETION_MS) {
    throw new SqsError('QueueDeletedRecently', 'You must wait 60 seconds after deleting a queue before you can create another with the same name.');
  }
  const attributes = applyAttributes(defaultAttributes(fifo), requested);
  yield* validateRedrivePolicies(context, name, fifo, attributes);
  const queue = yield* call(context.queues.create(name, fifo, attributes, tags, context.now));
  return { QueueUrl: queueUrl(context, queue) };
}
