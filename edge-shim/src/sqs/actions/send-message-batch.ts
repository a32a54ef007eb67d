import { SqsError, missingParameter } from '../errors.js';
import type { SqsContext } from '../context.js';
import { batchEntries, runEntries } from '../batch.js';
import { type Input, requiredString } from '../input.js';
import { payloadSize } from '../message-attributes.js';
import { sendOne } from './send-message.js';
import { queueByUrl } from '../queues.js';

// The sum of the sizes of a batch's messages, whatever the queue's MaximumMessageSize.
const MAX_BATCH_PAYLOAD = 1_048_576;

export function* sendMessageBatch(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'));
  const entries = batchEntries(input, 'Entries', 'SendMessageBatchRequestEntry');
  // On a FIFO queue a message without a group fails the action, not only its entry.
  const ungrouped = queue.fifo ? entries.findIndex((entry) => entry.MessageGroupId === undefined || entry.MessageGroupId === null) : -1;
  if (ungrouped >= 0) throw missingParameter(`SendMessageBatchRequestEntry.${ungrouped + 1}.MessageGroupId`);
  const total = entries.reduce((sum, entry) => sum + payloadSize(entry.MessageBody, entry.MessageAttributes), 0);
  if (total > MAX_BATCH_PAYLOAD) {
    throw new SqsError('BatchRequestTooLong', `Batch requests cannot be longer than ${MAX_BATCH_PAYLOAD} bytes. You have sent ${total} bytes.`);
  }
  return yield* runEntries(entries, function* (entry) {
    return { Id: entry.Id, ...(yield* sendOne(context, queue, entry)) };
  });
}
