import type { SqsContext } from '../context.js';
import { SqsError, invalidParameter } from '../errors.js';
import { type Input, optionalInteger, optionalString, optionalStringList, requiredString } from '../input.js';
import { type MessageAttributes, md5OfAttributes } from '../message-attributes.js';
import { type MessageRow, retentionCutoff } from '../messages.js';
import type { Queue } from '../queues.js';
import { encodeReceiptHandle, newNonce } from '../receipt-handles.js';
import { deadLetterTarget, moveMessage } from '../redrive.js';

const SYSTEM_ATTRIBUTES = [
  'SenderId',
  'SentTimestamp',
  'ApproximateReceiveCount',
  'ApproximateFirstReceiveTimestamp',
  'SequenceNumber',
  'MessageDeduplicationId',
  'MessageGroupId',
  'AWSTraceHeader',
  'DeadLetterQueueSourceArn',
] as const;
const ATTEMPT_ID = /^[A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]{1,128}$/;
const ATTEMPT_INTERVAL_MS = 5 * 60_000;
// A receive looks at this many FIFO groups at the most, so that a queue whose groups are all
// delayed cannot make one receive scan without end.
const MAX_GROUPS_EXAMINED = 1000;

interface Selection {
  readonly systemAttributes: ReadonlySet<string>;
  readonly attributeNames: readonly string[];
}

/** How long a receive may wait for messages: WaitTimeSeconds, or the queue's default. */
export function receiveWaitSeconds(context: SqsContext, input: Input): { queue: Queue; seconds: number } {
  const queue = context.queues.byUrl(requiredString(input, 'QueueUrl'));
  const seconds = optionalInteger(input, 'WaitTimeSeconds', 0, 20) ?? Number(queue.attributes.ReceiveMessageWaitTimeSeconds);
  return { queue, seconds };
}

function readSelection(input: Input): Selection {
  const system = [...(optionalStringList(input, 'AttributeNames') ?? []), ...(optionalStringList(input, 'MessageSystemAttributeNames') ?? [])];
  for (const name of system) {
    if (name !== 'All' && !(SYSTEM_ATTRIBUTES as readonly string[]).includes(name)) {
      throw new SqsError('InvalidAttributeName', `Unknown Attribute ${name}.`);
    }
  }
  const attributeNames = optionalStringList(input, 'MessageAttributeNames') ?? [];
  for (const name of attributeNames) {
    if (name.length === 0 || name.length > 256) throw invalidParameter(`Message attribute name '${name}' is invalid.`);
  }
  return { systemAttributes: new Set(system.includes('All') ? SYSTEM_ATTRIBUTES : system), attributeNames };
}

function selectAttributes(all: MessageAttributes, names: readonly string[]): MessageAttributes {
  const wanted = (name: string) =>
    names.some((pattern) =>
      pattern === 'All' || pattern === '.*' ? true : pattern.endsWith('.*') ? name.startsWith(pattern.slice(0, -1)) : pattern === name,
    );
  return Object.fromEntries(Object.entries(all).filter(([name]) => wanted(name)));
}

function format(context: SqsContext, queue: Queue, message: MessageRow, selection: Selection) {
  const system: Record<string, string | undefined> = {
    SenderId: context.queues.accountId,
    SentTimestamp: String(message.sent_at),
    ApproximateReceiveCount: String(message.receive_count),
    ApproximateFirstReceiveTimestamp: String(message.first_received_at ?? message.received_at),
    SequenceNumber: message.sequence_number ?? undefined,
    MessageDeduplicationId: message.deduplication_id ?? undefined,
    MessageGroupId: message.group_id ?? undefined,
    AWSTraceHeader: message.trace_header ?? undefined,
    DeadLetterQueueSourceArn: message.dead_letter_source ?? undefined,
  };
  const attributes: Record<string, string> = {};
  for (const name of selection.systemAttributes) {
    const value = system[name];
    if (value !== undefined) attributes[name] = value;
  }
  const messageAttributes = message.attributes ? selectAttributes(JSON.parse(message.attributes) as MessageAttributes, selection.attributeNames) : {};
  const hasAttributes = Object.keys(messageAttributes).length > 0;
  return {
    MessageId: message.message_id,
    ReceiptHandle: encodeReceiptHandle({ queueId: queue.id, messageId: message.id, nonce: message.receipt_nonce! }),
    MD5OfBody: message.body_md5,
    Body: message.body,
    ...(Object.keys(attributes).length > 0 ? { Attributes: attributes } : {}),
    ...(hasAttributes ? { MD5OfMessageAttributes: md5OfAttributes(messageAttributes), MessageAttributes: messageAttributes } : {}),
  };
}

/** Whether a message must go to the dead-letter queue instead of being received once more. */
function redriven(context: SqsContext, queue: Queue, message: MessageRow): boolean {
  const target = deadLetterTarget(context, queue);
  if (!target || message.receive_count < target.maxReceiveCount) return false;
  moveMessage(context, queue, message, target.queue, queue.arn);
  return true;
}

function receiveStandard(context: SqsContext, queue: Queue, limit: number, visibleFor: number): MessageRow[] {
  const taken: MessageRow[] = [];
  for (let round = 0; round < 3 && taken.length < limit; round++) {
    const candidates = context.messages.ready(queue, context.now, limit - taken.length);
    for (const message of candidates) {
      if (!redriven(context, queue, message)) taken.push(message);
    }
    if (taken.length === candidates.length) break; // nothing was dead-lettered: nothing more to find
  }
  for (const message of taken) context.messages.markReceived(message, context.now, context.now + visibleFor, newNonce());
  return taken;
}

/**
 * FIFO: messages in order from the groups with nothing in flight, oldest group first, as many from
 * one group as possible; a group is locked until the messages taken from it are visible again.
 */
function receiveFifo(context: SqsContext, queue: Queue, limit: number, visibleFor: number): MessageRow[] {
  const now = context.now;
  const cutoff = retentionCutoff(queue, now);
  const taken: MessageRow[] = [];
  const visited = new Set<string>();
  let afterHead = 0;
  while (taken.length < limit && visited.size < MAX_GROUPS_EXAMINED) {
    const groups = context.messages.unlockedGroups(queue.id, now, afterHead, 20);
    if (groups.length === 0) break;
    for (const { group_id: groupId, head_id: headId } of groups) {
      afterHead = headId;
      // A group whose head moved while this receive removed messages can show up twice.
      if (visited.has(groupId)) continue;
      visited.add(groupId);
      const fromGroup: MessageRow[] = [];
      for (const message of context.messages.groupMessages(queue.id, groupId, limit - taken.length + 10)) {
        if (fromGroup.length + taken.length >= limit) break;
        if (message.id <= queue.purgedThrough || message.enqueued_at <= cutoff) {
          context.messages.remove(queue, message);
          continue;
        }
        if (message.visible_at > now) break; // still delayed: nothing behind it may go first
        if (redriven(context, queue, message)) continue;
        fromGroup.push(message);
      }
      for (const message of fromGroup) context.messages.markReceived(message, now, now + visibleFor, newNonce());
      if (fromGroup.length > 0) context.messages.lockGroup(queue.id, groupId, now + visibleFor);
      taken.push(...fromGroup);
      if (taken.length >= limit) break;
    }
  }
  return taken;
}

/** A FIFO receive retried with its ReceiveRequestAttemptId gets the same messages and handles back. */
function repeatAttempt(context: SqsContext, queue: Queue, attemptId: string): MessageRow[] | undefined {
  const earlier = context.receiveAttempts.find(queue.id, attemptId, context.now);
  if (!earlier) return undefined;
  const messages = earlier.map(({ id }) => context.messages.byId(id));
  const unchanged = messages.every(
    (message, index) => message !== undefined && message.receipt_nonce === earlier[index]!.nonce && message.visible_at > context.now,
  );
  return unchanged ? (messages as MessageRow[]) : undefined;
}

export function receiveMessage(context: SqsContext, input: Input) {
  const queue = context.queues.byUrl(requiredString(input, 'QueueUrl'));
  const limit = optionalInteger(input, 'MaxNumberOfMessages', 1, 10) ?? 1;
  const visibleFor = (optionalInteger(input, 'VisibilityTimeout', 0, 43_200) ?? Number(queue.attributes.VisibilityTimeout)) * 1000;
  optionalInteger(input, 'WaitTimeSeconds', 0, 20);
  const selection = readSelection(input);
  const attemptId = queue.fifo ? optionalString(input, 'ReceiveRequestAttemptId') : undefined;
  if (attemptId !== undefined && !ATTEMPT_ID.test(attemptId)) {
    throw invalidParameter('Value for parameter ReceiveRequestAttemptId is invalid. Reason: It can only include alphanumeric and punctuation characters, 1 to 128 in length.');
  }

  let messages = attemptId === undefined ? undefined : repeatAttempt(context, queue, attemptId);
  if (!messages) {
    messages = queue.fifo ? receiveFifo(context, queue, limit, visibleFor) : receiveStandard(context, queue, limit, visibleFor);
    if (attemptId !== undefined && messages.length > 0) {
      context.receiveAttempts.remember(
        queue.id,
        attemptId,
        messages.map((message) => ({ id: message.id, nonce: message.receipt_nonce! })),
        context.now + ATTEMPT_INTERVAL_MS,
      );
    }
  }
  return { Messages: messages.map((message) => format(context, queue, message, selection)) };
}
