import type { SqsContext } from '../context.js';
import { SqsError, invalidParameter, missingParameter } from '../errors.js';
import { type Input, optionalInteger, requiredString } from '../input.js';
import { queueByUrl } from '../queues.js';
import { expiredReceipt, resolveReceipt } from '../receipt-handles.js';
import { type Step, call } from '../storage/step.js';
import type { Queue } from '../storage/records.js';

const MAX_VISIBILITY_MS = 43_200_000;

/** Sets a received message's visibility timeout anew, counted from now, within 12 hours of its receive. */
export function* changeVisibilityOne(context: SqsContext, queue: Queue, receiptHandle: string, seconds: number): Step<void> {
  const receipt = yield* resolveReceipt(context, queue, receiptHandle);
  if (receipt.kind === 'gone') {
    throw invalidParameter(`Value ${receiptHandle} for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.`);
  }
  if (receipt.kind === 'unknown' || receipt.message.visible_at <= context.now) {
    throw new SqsError('MessageNotInflight', 'The message referred to is not in flight.');
  }
  if (receipt.kind === 'stale') throw expiredReceipt(receiptHandle);
  const { message } = receipt;
  const visibleAt = context.now + seconds * 1000;
  if (visibleAt - message.received_at! > MAX_VISIBILITY_MS) {
    throw invalidParameter(`Value ${seconds} for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds]`);
  }
  const shortened = visibleAt < message.visible_at;
  yield* call(context.messages.setVisibleAt(queue, message, visibleAt, context.now));
  // Waiting receives sleep until the next message's visibility ends: it may now end sooner.
  if (shortened) context.messagesAvailableAt(queue, visibleAt);
}

export function readVisibilityTimeout(input: Input): number {
  const seconds = optionalInteger(input, 'VisibilityTimeout', 0, 43_200);
  if (seconds === undefined) throw missingParameter('VisibilityTimeout');
  return seconds;
}

export function* changeMessageVisibility(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'));
  yield* changeVisibilityOne(context, queue, requiredString(input, 'ReceiptHandle'), readVisibilityTimeout(input));
  return {};
}
