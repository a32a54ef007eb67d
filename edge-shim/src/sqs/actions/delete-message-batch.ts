import { batchEntries, runEntries } from '../batch.js';
import type { SqsContext } from '../context.js';
import { type Input, requiredString } from '../input.js';
import { deleteOne } from './delete-message.js';

export function deleteMessageBatch(context: SqsContext, input: Input) {
  const queue = context.queues.byUrl(requiredString(input, 'QueueUrl'));
  return runEntries(batchEntries(input, 'Entries', 'DeleteMessageBatchRequestEntry'), (entry) => {
    deleteOne(context, queue, requiredString(entry, 'ReceiptHandle'));
    return { Id: entry.Id };
  });
}
