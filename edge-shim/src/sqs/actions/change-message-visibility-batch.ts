import { batchEntries, runEntries } from '../batch.js';
import type { SqsContext } from '../context.js';
import { type Input, requiredString } from '../input.js';
import { changeVisibilityOne, readVisibilityTimeout } from './change-message-visibility.js';

export function changeMessageVisibilityBatch(context: SqsContext, input: Input) {
  const queue = context.queues.byUrl(requiredString(input, 'QueueUrl'));
  return runEntries(batchEntries(input, 'Entries', 'ChangeMessageVisibilityBatchRequestEntry'), (entry) => {
    changeVisibilityOne(context, queue, requiredString(entry, 'ReceiptHandle'), readVisibilityTimeout(entry));
    return { Id: entry.Id };
  });
}
