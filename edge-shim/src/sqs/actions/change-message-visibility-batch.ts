import { batchEntries, runEntries } from '../batch.js';
import type { SqsContext } from '../context.js';
import { type Input, requiredString } from '../input.js';
import { changeVisibilityOne, readVisibilityTimeout } from './change-message-visibility.js';
import { queueByUrl } from '../queues.js';

export function* changeMessageVisibilityBatch(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'));
  return yield* runEntries(batchEntries(input, 'Entries', 'ChangeMessageVisibilityBatchRequestEntry'), function* (entry) {
    yield* changeVisibilityOne(context, queue, requiredString(entry, 'ReceiptHandle'), readVisibilityTimeout(entry));
    return { Id: entry.Id };
  });
}
