import { SqsError, missingParameter } from '../errors.js';
import type { SqsContext } from '../context.js';
import { batchEntries, runEntries } from '../batch.js';
import { type Input, requiredString } from '../input.js';
import { sendOne } from './send-message.js';

// The sum of the sizes of a batch's messages, whatever the queue's MaximumMessageSize.
const MAX_BATCH_PAYLOAD = 1_048_576;

/** What an entry adds to the batch payload: its body and its attributes' names, types and values. */
function payloadSize(entry: Input): number {
  let size = typeof entry.MessageBody === 'string' ? Buffer.byteLength(entry.MessageBody) : 0;
  const attributes = entry.MessageAttributes;
  if (typeof attributes !== 'object' || attributes === null) return size;
  for (const [name, attribute] of Object.entries(attributes as Record<string, unknown>)) {
    const { DataType, StringValue, BinaryValue } = (attribute ?? {}) as Record<string, unknown>;
    size += Buffer.byteLength(name);
    if (typeof DataType === 'string') size += Buffer.byteLength(DataType);
    if (typeof StringValue === 'string') size += Buffer.byteLength(StringValue);
    if (typeof BinaryValue === 'string') size += Buffer.from(BinaryValue, 'base64').length;
  }
  return size;
}

export function sendMessageBatch(context: SqsContext, input: Input) {
  const queue = context.queues.byUrl(requiredString(input, 'QueueUrl'));
  const entries = batchEntries(input, 'Entries', 'SendMessageBatchRequestEntry');
  // On a FIFO queue a message without a group fails the action, not only its entry.
  const ungrouped = queue.fifo ? entries.findIndex((entry) => entry.MessageGroupId === undefined || entry.MessageGroupId === null) : -1;
  if (ungrouped >= 0) throw missingParameter(`SendMessageBatchRequestEntry.${ungrouped + 1}.MessageGroupId`);
  const total = entries.reduce((sum, entry) => sum + payloadSize(entry), 0);
  if (total > MAX_BATCH_PAYLOAD) {
    throw new SqsError('BatchRequestTooLong', `Batch requests cannot be longer than ${MAX_BATCH_PAYLOAD} bytes. You have sent ${total} bytes.`);
  }
  return runEntries(entries, (entry) => ({ Id: entry.Id, ...sendOne(context, queue, entry) }));
}
