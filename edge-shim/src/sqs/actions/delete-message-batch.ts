import { batchEntries, runEntries } from '../batch.js';
import type { SqsContext } from '../context.js';
import { type Input, requiredString } from '../input.js';
import { deleteOne } from './delete-message.js';
import { queueByUrl } from '../queues.js';

export function* deleteMessageBatch(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'));
  return yield* runEntries(batchEntries(input, 'Entries', 'DeleteMessageBatchRequestEntry'), function* (entry) {
    yield* deleteOne(context, queue, requiredString(entry, 'ReceiptHandle'));
    return { Id: entry.Id };
  });
}
