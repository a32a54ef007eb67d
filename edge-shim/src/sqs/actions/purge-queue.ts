import type { SqsContext } from '../context.js';
import { SqsError } from '../errors.js';
import { type Input, requiredString } from '../input.js';
import { queueByUrl } from '../queues.js';
import { call } from '../storage/step.js';

const PURGE_INTERVAL_MS = 60_000;

/**
 * Hides every message sent before the purge at once, in flight or not; the sweeper deletes them in
 * the background, so purging a queue of millions answers about as fast as purging an empty one.
 * Messages sent after the purge are kept. SQS allows one purge of a queue every 60 seconds.
 */
export function* purgeQueue(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'), 'change');
  if (queue.purgedAt !== 0 && context.now - queue.purgedAt < PURGE_INTERVAL_MS) {
    throw new SqsError('PurgeQueueInProgress', `Only one PurgeQueue operation on ${queue.name} is allowed every 60 seconds.`);
  }
  // Every message stored so far is of an older epoch from now on (see the schema).
  yield* call(context.queues.update(queue, { purgedAt: context.now, purgedThrough: yield* call(context.messages.lastId()) }));
  return {};
}
