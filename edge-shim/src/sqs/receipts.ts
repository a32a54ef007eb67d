import type { SqsContext } from './context.js';
import { SqsError, invalidParameter } from './errors.js';
import type { MessageRow } from './messages.js';
import type { Queue } from './queues.js';
import { decodeReceiptHandle } from './receipt-handles.js';

export type ReceiptState = { kind: 'gone' } | { kind: 'current'; message: MessageRow } | { kind: 'stale'; message: MessageRow };

/**
 * What a receipt handle given to DeleteMessage or ChangeMessageVisibility refers to now: a message
 * that is gone, the message as last received with this handle, or a message received again since
 * (or whose visibility timeout ran out) so that this handle is no longer its latest.
 */
export function resolveReceipt(context: SqsContext, queue: Queue, receiptHandle: string): ReceiptState {
  const handle = decodeReceiptHandle(receiptHandle);
  if (handle.queueId !== queue.id) {
    throw new SqsError('ReceiptHandleIsInvalid', `The input receipt handle "${receiptHandle}" is not a valid receipt handle.`);
  }
  const message = context.messages.byId(handle.messageId);
  // A purged message or one past retention is gone for every operation, even before the sweeper deletes it.
  if (!message || message.queue_id !== queue.id || context.messages.isDead(queue, message, context.now)) return { kind: 'gone' };
  return message.receipt_nonce === handle.nonce && message.visible_at > context.now ? { kind: 'current', message } : { kind: 'stale', message };
}

export const expiredReceipt = (receiptHandle: string) =>
  invalidParameter(`Value ${receiptHandle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.`);
