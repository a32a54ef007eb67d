import type { SqsContext } from '../context.js';
import { type Input, requiredString } from '../input.js';
import { queueByUrl } from '../queues.js';
import { expiredReceipt, resolveReceipt } from '../receipt-handles.js';
import { type Step, call } from '../storage/step.js';
import type { Queue } from '../storage/records.js';

/**
 * Deletes the message a receipt handle names. Deleting a message already gone succeeds. An outdated
 * handle still deletes a standard queue's message, as SQS does; on a FIFO queue it is refused, since
 * the message may be in another consumer's hands in order. A handle of a receive the store does not
 * know (the message was never received, as far as it knows) deletes nothing: no consumer got the
 * message from it. SQS answers a handle that is not the latest so: the request succeeds, but the
 * message is not deleted.
 */
export function* deleteOne(context: SqsContext, queue: Queue, receiptHandle: string): Step<void> {
  const receipt = yield* resolveReceipt(context, queue, receiptHandle);
  if (receipt.kind === 'gone') return;
  if (receipt.kind !== 'current' && queue.fifo) throw expiredReceipt(receiptHandle);
  if (receipt.kind === 'unknown') return;
  yield* call(context.messages.remove(queue, receipt.message, context.now));
  if (queue.fifo) context.messagesAvailable(queue); // the group may be unlocked now
}

export function* deleteMessage(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'));
  yield* deleteOne(context, queue, requiredString(input, 'ReceiptHandle'));
  return {};
}
