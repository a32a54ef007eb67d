import { createHash, randomUUID } from 'node:crypto';
import type { SqsContext } from '../context.js';
import { SqsError, invalidParameter, missingParameter } from '../errors.js';
import { type Input, optionalInteger, optionalMap, optionalString, requiredString } from '../input.js';
import { hasInvalidCharacters, md5OfAttributes, md5OfBody, readMessageAttributes } from '../message-attributes.js';
import { HELD_FOR_REPLAY } from '../messages.js';
import { queueByUrl } from '../queues.js';
import { nextSequenceNumber } from '../sequence-numbers.js';
import { type Step, call } from '../storage/step.js';
import type { Queue } from '../storage/records.js';

const DEDUPLICATION_INTERVAL_MS = 5 * 60_000;
// Message group, deduplication and receive request attempt ids: 1 to 128 alphanumeric or punctuation characters.
export const ID_PATTERN = /^[A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]{1,128}$/;

export interface SendResult {
  MessageId: string;
  MD5OfMessageBody: string;
  MD5OfMessageAttributes?: string;
  MD5OfMessageSystemAttributes?: string;
  SequenceNumber?: string;
}

const notForQueueType = (name: string, value: unknown) =>
  invalidParameter(`Value ${String(value)} for parameter ${name} is invalid. Reason: The request include parameter that is not valid for this queue type.`);

// The only message system attribute SQS takes; it does not count toward the message size.
const TRACE_HEADER = 'AWSTraceHeader';

function readTraceHeader(input: Input): string | undefined {
  const system = optionalMap(input, 'MessageSystemAttributes');
  if (!system) return undefined;
  let traceHeader: string | undefined;
  for (const [name, value] of Object.entries(system)) {
    if (name !== TRACE_HEADER) {
      throw invalidParameter(`Message system attribute name '${name}' is invalid. The only supported message system attribute is ${TRACE_HEADER}.`);
    }
    const attribute = value as { DataType?: unknown; StringValue?: unknown; BinaryValue?: unknown } | null;
    if (attribute?.DataType !== 'String' || typeof attribute.StringValue !== 'string' || attribute.StringValue === '' || attribute.BinaryValue !== undefined) {
      throw invalidParameter(`Message system attribute '${TRACE_HEADER}' must contain a non-empty value of type 'String'.`);
    }
    if (hasInvalidCharacters(attribute.StringValue)) {
      throw new SqsError('InvalidMessageContents', `Message system attribute '${TRACE_HEADER}' contains characters outside the allowed set.`);
    }
    traceHeader = attribute.StringValue;
  }
  return traceHeader;
}

/** MD5OfMessageSystemAttributes: the message attribute digest over the system attributes. */
function md5OfTraceHeader(traceHeader: string): string {
  return md5OfAttributes({ [TRACE_HEADER]: { DataType: 'String', StringValue: traceHeader } });
}

/**
 * Validates and stores one message (SendMessage, or one entry of SendMessageBatch). Its size, the
 * body and the message attributes' names, types and values, must not exceed the queue's
 * MaximumMessageSize.
 */
export function* sendOne(context: SqsContext, queue: Queue, input: Input): Step<SendResult> {
  const body = optionalString(input, 'MessageBody');
  if (body === undefined || body === '') throw missingParameter('MessageBody');
  if (hasInvalidCharacters(body)) {
    throw new SqsError('InvalidMessageContents', 'Invalid binary character was found in the message body, the set of allowed characters is #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF');
  }
  const { attributes, size: attributesSize } = readMessageAttributes(optionalMap(input, 'MessageAttributes') ?? {});
  const size = Buffer.byteLength(body) + attributesSize;
  const maximum = Number(queue.attributes.MaximumMessageSize);
  if (size > maximum) {
    throw invalidParameter(`One or more parameters are invalid. Reason: Message must be shorter than ${maximum} bytes.`);
  }
  const traceHeader = readTraceHeader(input);
  const delaySeconds = optionalInteger(input, 'DelaySeconds', 0, 900);
  const groupId = optionalString(input, 'MessageGroupId');
  let deduplicationId = optionalString(input, 'MessageDeduplicationId');
  if (groupId !== undefined && !ID_PATTERN.test(groupId)) {
    throw invalidParameter(`Value ${groupId} for parameter MessageGroupId is invalid. Reason: MessageGroupId can only include alphanumeric and punctuation characters. 1 to 128 in length.`);
  }
  if (deduplicationId !== undefined && !ID_PATTERN.test(deduplicationId)) {
    throw invalidParameter(`Value ${deduplicationId} for parameter MessageDeduplicationId is invalid. Reason: MessageDeduplicationId can only include alphanumeric and punctuation characters. 1 to 128 in length.`);
  }

  const now = context.now;
  const attributeDigest = Object.keys(attributes).length > 0 ? md5OfAttributes(attributes) : undefined;
  const result: SendResult = {
    MessageId: randomUUID(),
    MD5OfMessageBody: md5OfBody(body),
    ...(attributeDigest ? { MD5OfMessageAttributes: attributeDigest } : {}),
    ...(traceHeader !== undefined ? { MD5OfMessageSystemAttributes: md5OfTraceHeader(traceHeader) } : {}),
  };

  if (queue.fifo) {
    if (delaySeconds !== undefined) throw notForQueueType('DelaySeconds', delaySeconds);
    if (groupId === undefined) throw missingParameter('MessageGroupId');
    if (deduplicationId === undefined) {
      if (queue.attributes.ContentBasedDeduplication !== 'true') {
        throw invalidParameter('The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly');
      }
      deduplicationId = createHash('sha256').update(body, 'utf8').digest('hex');
    }
    const scope = queue.attributes.DeduplicationScope === 'messageGroup' ? groupId : '';
    const earlier = yield* call(context.deduplication.find(queue.id, scope, deduplicationId, now));
    if (earlier) {
      // A duplicate is accepted and answered as the original, but not enqueued again.
      return { ...result, MessageId: earlier.message_id, ...(earlier.sequence_number ? { SequenceNumber: earlier.sequence_number } : {}) };
    }
    result.SequenceNumber = yield* nextSequenceNumber(context, queue);
    yield* call(context.deduplication.remember(queue.id, scope, deduplicationId, result.MessageId, result.SequenceNumber, now + DEDUPLICATION_INTERVAL_MS));
  } else if (deduplicationId !== undefined) {
    // A standard queue takes a MessageGroupId (it makes the queue a fair queue), not a deduplication id.
    throw notForQueueType('MessageDeduplicationId', deduplicationId);
  }

  const delay = (delaySeconds ?? Number(queue.attributes.DelaySeconds)) * 1000;
  const id = yield* call(context.messages.insert(queue, {
    message_id: result.MessageId,
    body,
    body_md5: result.MD5OfMessageBody,
    attributes: attributeDigest ? JSON.stringify(attributes) : null,
    attributes_md5: attributeDigest ?? null,
    trace_header: traceHeader ?? null,
    group_id: groupId ?? null,
    deduplication_id: queue.fifo ? deduplicationId! : null,
    sequence_number: result.SequenceNumber ?? null,
    dead_letter_source: null,
    sent_at: now,
    enqueued_at: now,
    visible_at: context.holdForReplay ? HELD_FOR_REPLAY : now + delay,
  }, now));
  if (context.holdForReplay) yield* call(context.messages.holdForReplay(id));
  else if (delay > 0) context.messagesAvailableAt(queue, now + delay);
  else context.messagesAvailable(queue);
  return result;
}

export function* sendMessage(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'));
  return { ...(yield* sendOne(context, queue, input)) };
}
