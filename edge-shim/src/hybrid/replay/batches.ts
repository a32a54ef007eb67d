import type { ReplayMessage } from './store.js';

// SendMessageBatch: at most 10 entries and 1 MiB of bodies and attributes.
export const BATCH_ENTRIES = 10;
const BATCH_BYTES = 1_048_576;

/**
 * Splits taken messages into batches, in order: at most 10 and `maxBytes` each (within SQS's
 * 1 MiB); a message larger than `maxBytes` goes alone.
 */
export function bySize(messages: readonly ReplayMessage[], maxBytes = BATCH_BYTES): ReplayMessage[][] {
  const limit = Math.min(maxBytes, BATCH_BYTES);
  const batches: ReplayMessage[][] = [];
  let current: ReplayMessage[] = [];
  let bytes = 0;
  for (const message of messages) {
    if (current.length > 0 && (current.length === BATCH_ENTRIES || bytes + message.size > limit)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(message);
    bytes += message.size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** The SendMessageBatch entry that sends a message to the region as it was sent to the edge. */
export function replayEntry(message: ReplayMessage, id: string): Record<string, unknown> {
  return {
    Id: id,
    MessageBody: message.body,
    ...(message.attributes ? { MessageAttributes: message.attributes } : {}),
    ...(message.traceHeader ? { MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: message.traceHeader } } } : {}),
    ...(message.groupId ? { MessageGroupId: message.groupId } : {}),
    ...(message.deduplicationId ? { MessageDeduplicationId: message.deduplicationId } : {}),
  };
}
