import type { SqsContext } from '../context.js';
import { SqsError } from '../errors.js';
import { batchEntries, runEntries } from '../batch.js';
import { type Input, requiredString } from '../input.js';
import { sendOne } from './send-message.js';

export function sendMessageBatch(context: SqsContext, input: Input) {
  const queue = context.queues.byUrl(requiredString(input, 'QueueUrl'));
  const entries = batchEntries(input, 'Entries');
  const payload = { bytes: 0 };
  const result = runEntries(entries, (entry) => ({ Id: entry.Id, ...sendOne(context, queue, entry, payload) }));
  // The whole batch, like one message, must fit in the queue's maximum message size; throwing here
  // rolls back the entries already stored.
  const maximum = Number(queue.attributes.MaximumMessageSize);
  if (payload.bytes > maximum) {
    throw new SqsError('BatchRequestTooLong', `Batch requests cannot be longer than ${maximum} bytes. You have sent ${payload.bytes} bytes.`);
  }
  return result;
}
