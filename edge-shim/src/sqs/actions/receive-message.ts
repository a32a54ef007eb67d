import type { SqsContext } from '../context.js';
import { SqsError, invalidParameter } from '../errors.js';
import { removeDead } from '../expiry.js';
import { isDead } from '../messages.js';
import { type Input, optionalInteger, optionalString, optionalStringList, requiredString } from '../input.js';
import { type MessageAttributes, md5OfAttributes } from '../message-attributes.js';
import { isKnownAttribute } from '../queue-attributes.js';
import { queueByUrl } from '../queues.js';
import { newNonce } from '../receipt-handles.js';
import { deadLetterTarget, deadLetterMessage } from '../redrive.js';
import type { MessagePort, QueuePort } from '../storage/ports.js';
import { type Step, call } from '../storage/step.js';
import { ID_PATTERN } from './send-message.js';
import type { AvailableGroup, MessageContent, MessageRow, Queue } from '../storage/records.js';

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
const ATTEMPT_INTERVAL_MS = 5 * 60_000;
// One receive examines at most this many messages, and this many FIFO groups, before it answers;
// what it could not get to yet (behind messages past retention, which it deletes as it meets them,
// or dead-letters) is left to the next round of a long poll, so that no transaction runs long.
const MAX_MESSAGES_EXAMINED = 200;
const MAX_GROUPS_EXAMINED = 200;
const GROUP_PAGE = 20;

export interface Taken {
  readonly messages: MessageRow[];
  /** Messages were deleted or dead-lettered on the way, or the budget ran out: another look may find more. */
  readonly more: boolean;
}

interface Selection {
  readonly systemAttributes: ReadonlySet<string>;
  readonly attributeNames: AttributeNameSelection;
}

/** MessageAttributeNames, prepared once per request so that each attribute costs one lookup per prefix length. */
interface AttributeNameSelection {
  readonly all: boolean;
  readonly exact: ReadonlySet<string>;
  /** From patterns `prefix.*`: the prefixes, and the lengths they come in. */
  readonly prefixes: ReadonlySet<string>;
  readonly prefixLengths: readonly number[];
}

function readSelection(input: Input): Selection {
  const system = [...(optionalStringList(input, 'AttributeNames') ?? []), ...(optionalStringList(input, 'MessageSystemAttributeNames') ?? [])];
  for (const name of system) {
    // AttributeNames also admits queue attribute names, which SQS ignores here.
    if (name !== 'All' && !(SYSTEM_ATTRIBUTES as readonly string[]).includes(name) && !isKnownAttribute(name)) {
      throw new SqsError('InvalidAttributeName', `Unknown Attribute ${name}.`);
    }
  }
  return { systemAttributes: new Set(system.includes('All') ? SYSTEM_ATTRIBUTES : system), attributeNames: readAttributeNames(input) };
}

/**
 * Message attributes by name: `All` for every one, `prefix.*` for those whose name starts with the
 * prefix (the docs' "all message attributes starting with a prefix, for example bar.*": the prefix
 * need not end in a dot, and `.*` alone, the empty prefix, is every one).
 */
function readAttributeNames(input: Input): AttributeNameSelection {
  let all = false;
  const exact = new Set<string>();
  const prefixes = new Set<string>();
  for (const pattern of optionalStringList(input, 'MessageAttributeNames') ?? []) {
    if (pattern.length === 0 || pattern.length > 256) throw invalidParameter(`Message attribute name '${pattern}' is invalid.`);
    if (pattern === 'All') all = true;
    else if (pattern.endsWith('.*')) prefixes.add(pattern.slice(0, -2));
    else exact.add(pattern);
  }
  const prefixLengths = [...new Set([...prefixes].map((prefix) => prefix.length))];
  return { all, exact, prefixes, prefixLengths };
}

function isSelected(name: string, selection: AttributeNameSelection): boolean {
  if (selection.all || selection.exact.has(name)) return true;
  return selection.prefixLengths.some((length) => length <= name.length && selection.prefixes.has(name.slice(0, length)));
}

function selectAttributes(all: MessageAttributes, selection: AttributeNameSelection): MessageAttributes {
  return Object.fromEntries(Object.entries(all).filter(([name]) => isSelected(name, selection)));
}

/** A message as ReceiveMessage answers it. */
export interface ReceivedMessage {
  MessageId: string;
  ReceiptHandle: string;
  MD5OfBody: string;
  Body: string;
  Attributes?: Record<string, string>;
  MD5OfMessageAttributes?: string;
  MessageAttributes?: MessageAttributes;
}

function format(context: SqsContext, queue: Queue, state: MessageRow, content: MessageContent, selection: Selection): ReceivedMessage {
  const message = { ...state, ...content };
  const system: Record<string, string | undefined> = {
    SenderId: context.queues.accountId,
    SentTimestamp: String(message.sent_at),
    ApproximateReceiveCount: String(message.receive_count),
    ApproximateFirstReceiveTimestamp: String(message.first_received_at),
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
    ReceiptHandle: context.receipts.encode({ queueId: queue.id, messageId: message.id, nonce: message.receipt_nonce! }),
    MD5OfBody: message.body_md5,
    Body: message.body,
    ...(Object.keys(attributes).length > 0 ? { Attributes: attributes } : {}),
    // The digest covers the attributes returned, not all the message has.
    ...(hasAttributes ? { MD5OfMessageAttributes: md5OfAttributes(messageAttributes), MessageAttributes: messageAttributes } : {}),
  };
}

type DeadLetterTarget = { queue: Queue; maxReceiveCount: number } | undefined;

/** Whether a message must go to the dead-letter queue instead of being received once more. */
function redrives(target: DeadLetterTarget, message: MessageRow): target is NonNullable<DeadLetterTarget> {
  return target !== undefined && message.receive_count >= target.maxReceiveCount;
}

/** Standard: the visible messages that have waited longest, in no promised order. */
function* receiveStandard(context: SqsContext, queue: Queue, deadLetter: DeadLetterTarget, limit: number, visibleFor: number): Step<Taken> {
  const now = context.now;
  const taken: MessageRow[] = [];
  const takenIds = new Set<number>();
  let examined = 0;
  let cleared = false;
  while (taken.length < limit && examined < MAX_MESSAGES_EXAMINED) {
    // Messages taken with a visibility timeout of 0 are still visible: ask for as many more.
    const requested = limit - taken.length + takenIds.size;
    const candidates = yield* call(context.messages.visible(queue, now, requested));
    let progressed = false;
    for (const message of candidates) {
      if (takenIds.has(message.id)) continue;
      examined += 1;
      progressed = true;
      if (isDead(context, queue, message)) {
        yield* removeDead(context, queue, message);
        cleared = true;
      } else if (redrives(deadLetter, message)) {
        yield* deadLetterMessage(context, queue, message, deadLetter.queue);
        cleared = true;
      } else if (taken.length < limit) {
        yield* call(context.messages.markReceived(message, now, now + visibleFor, newNonce()));
        taken.push(message);
        takenIds.add(message.id);
      }
    }
    if (!progressed || candidates.length < requested) break;
  }
  return { messages: taken, more: taken.length === 0 && cleared };
}

/**
 * The first messages of a FIFO group that may be received now, in order, up to `wanted`: it stops
 * at a delayed message (nothing behind it may go first), deletes those past retention and
 * dead-letters those received too often on the way, within the receive's `budget` of messages.
 */
function* takeFromGroup(context: SqsContext, queue: Queue, deadLetter: DeadLetterTarget, groupId: string, wanted: number, budget: { left: number }): Step<Taken> {
  const messages: MessageRow[] = [];
  let cleared = false;
  let afterId = 0;
  while (messages.length < wanted && budget.left > 0) {
    const asked = Math.min(wanted - messages.length, budget.left);
    const batch = yield* call(context.messages.groupMessages(queue, groupId, asked, afterId));
    for (const message of batch) {
      afterId = message.id;
      budget.left -= 1;
      if (isDead(context, queue, message)) {
        yield* removeDead(context, queue, message);
        cleared = true;
      } else if (message.visible_at > context.now) {
        return { messages, more: cleared };
      } else if (redrives(deadLetter, message)) {
        yield* deadLetterMessage(context, queue, message, deadLetter.queue);
        cleared = true;
      } else {
        messages.push(message);
      }
    }
    if (batch.length < asked) break;
  }
  return { messages, more: cleared };
}

/**
 * FIFO: from each message group with nothing in flight, its first messages in order, as many from
 * one group as possible before the next; a group is locked until the messages taken from it are
 * visible again. Groups are visited longest available first, through an index of them by the time
 * they became available, so neither locked groups nor a huge group cost anything to pass.
 */
function* receiveFifo(context: SqsContext, queue: Queue, deadLetter: DeadLetterTarget, limit: number, visibleFor: number): Step<Taken> {
  const now = context.now;
  const taken: MessageRow[] = [];
  const visited = new Set<string>();
  const budget = { left: MAX_MESSAGES_EXAMINED };
  let after: AvailableGroup | undefined;
  let cleared = false;
  pages: while (taken.length < limit) {
    if (visited.size >= MAX_GROUPS_EXAMINED || budget.left <= 0) return { messages: taken, more: taken.length === 0 };
    const groups = yield* call(context.messages.availableGroups(queue, now, after, GROUP_PAGE));
    if (groups.length === 0) break;
    for (const group of groups) {
      after = group;
      // A group whose first messages this receive deleted can come up again further on.
      if (visited.has(group.group_id)) continue;
      visited.add(group.group_id);
      const fromGroup = yield* takeFromGroup(context, queue, deadLetter, group.group_id, limit - taken.length, budget);
      cleared ||= fromGroup.more;
      if (fromGroup.messages.length > 0) {
        for (const message of fromGroup.messages) yield* call(context.messages.markReceived(message, now, now + visibleFor, newNonce()));
        yield* call(context.messages.lockGroup(queue, group.group_id, now + visibleFor));
        taken.push(...fromGroup.messages);
      } else {
        // Its first message is delayed: out of the way until it shows.
        yield* call(context.messages.refreshGroup(queue, group.group_id));
      }
      if (taken.length >= limit) break pages;
    }
  }
  return { messages: taken, more: taken.length === 0 && cleared };
}

/**
 * A FIFO receive retried with its ReceiveRequestAttemptId within 5 minutes gets the same messages
 * and receipt handles back, and their visibility timeout starts again, as long as none of them was
 * deleted, received again or had its visibility changed, and their visibility timeout has not run
 * out. Otherwise the retry is a new receive.
 */
function* repeatAttempt(context: SqsContext, queue: Queue, attemptId: string, visibleFor: number): Step<MessageRow[] | undefined> {
  const earlier = yield* call(context.receiveAttempts.find(queue.id, attemptId, context.now));
  if (!earlier) return undefined;
  const messages: Array<MessageRow | undefined> = [];
  for (const { id } of earlier.messages) messages.push(yield* call(context.messages.byId(id)));
  const untouched = messages.every((message, index) => {
    const then = earlier.messages[index]!;
    return message !== undefined && message.receipt_nonce === then.nonce && message.visible_at === then.visibleAt && message.visible_at > context.now;
  });
  if (!untouched) return undefined;
  const visibleAt = context.now + visibleFor;
  for (const message of messages as MessageRow[]) yield* call(context.messages.setVisibleAt(queue, message, visibleAt, context.now));
  yield* call(context.receiveAttempts.remember(queue.id, attemptId, attemptRecord(messages as MessageRow[]), earlier.expiresAt));
  return messages as MessageRow[];
}

const attemptRecord = (messages: MessageRow[]) =>
  messages.map((message) => ({ id: message.id, nonce: message.receipt_nonce!, visibleAt: message.visible_at }));

/** A ReceiveMessage request, read and checked once for every round of its long poll. */
export interface ReceiveRequest {
  readonly queue: Queue;
  readonly limit: number;
  readonly visibleFor: number;
  /** How long the receive may wait for messages: WaitTimeSeconds, or the queue's default. */
  readonly waitSeconds: number;
  readonly selection: Selection;
  readonly attemptId: string | undefined;
  /**
   * Whether messages received maxReceiveCount times go to the dead-letter queue instead: always for
   * clients; not for the edge's replay, whose attempts at handing a message to the region are not
   * receives by a consumer.
   */
  readonly deadLetters: boolean;
}

export function* readReceiveRequest(queues: QueuePort, input: Input): Step<ReceiveRequest> {
  const queue = yield* queueByUrl(queues, requiredString(input, 'QueueUrl'));
  const limit = optionalInteger(input, 'MaxNumberOfMessages', 1, 10) ?? 1;
  const visibleFor = (optionalInteger(input, 'VisibilityTimeout', 0, 43_200) ?? Number(queue.attributes.VisibilityTimeout)) * 1000;
  const waitSeconds = optionalInteger(input, 'WaitTimeSeconds', 0, 20) ?? Number(queue.attributes.ReceiveMessageWaitTimeSeconds);
  const selection = readSelection(input);
  // ReceiveRequestAttemptId applies only to FIFO queues; standard queues ignore it.
  const attemptId = queue.fifo ? optionalString(input, 'ReceiveRequestAttemptId') : undefined;
  if (attemptId !== undefined && !ID_PATTERN.test(attemptId)) {
    throw invalidParameter('Value for parameter ReceiveRequestAttemptId is invalid. Reason: It can only include alphanumeric and punctuation characters, 1 to 128 in length.');
  }
  return { queue, limit, visibleFor, waitSeconds, selection, attemptId, deadLetters: true };
}

/**
 * Whether a receive could not take anything now, known without a transaction: nothing visible (or
 * no FIFO group available) and no earlier attempt to repeat. Such a receive, the usual one of a
 * consumer polling an empty or locked queue, costs one indexed read.
 */
export function* surelyEmpty(messages: MessagePort, request: ReceiveRequest, now: number): Step<boolean> {
  return request.attemptId === undefined && !(yield* call(messages.anyAvailable(request.queue, now)));
}


export interface ReceiveOutcome {
  /** As SQS answers: no Messages key at all when nothing was received. */
  readonly output: { Messages?: ReceivedMessage[] };
  /** Nothing was received, but trying again at once may find something (see `Taken.more`). */
  readonly more: boolean;
}

/** What taking messages needs of a receive request. */
export type TakeRequest = Pick<ReceiveRequest, 'queue' | 'limit' | 'visibleFor' | 'attemptId' | 'deadLetters'>;

/**
 * One attempt at taking messages as a receive does: marked received, each with a new receipt nonce,
 * FIFO groups locked. For the receives of clients, and for the edge's replay, which hands them to
 * the region instead of answering them.
 */
export function* takeMessages(context: SqsContext, request: TakeRequest): Step<Taken> {
  const { queue, limit, visibleFor, attemptId } = request;
  const repeated = attemptId === undefined ? undefined : yield* repeatAttempt(context, queue, attemptId, visibleFor);
  if (repeated) return { messages: repeated, more: false };
  // Looked up once per receive, not once for every message it meets.
  const deadLetter = request.deadLetters ? yield* deadLetterTarget(context, queue) : undefined;
  const taken = queue.fifo ? yield* receiveFifo(context, queue, deadLetter, limit, visibleFor) : yield* receiveStandard(context, queue, deadLetter, limit, visibleFor);
  if (attemptId !== undefined && taken.messages.length > 0) {
    yield* call(context.receiveAttempts.remember(queue.id, attemptId, attemptRecord(taken.messages), context.now + ATTEMPT_INTERVAL_MS));
  }
  return taken;
}

/** One attempt at receiving, for the long polling loop of the service. */
export function* receiveMessages(context: SqsContext, request: ReceiveRequest): Step<ReceiveOutcome> {
  const { messages, more } = yield* takeMessages(context, request);
  if (messages.length === 0) return { output: {}, more };
  const formatted: ReceivedMessage[] = [];
  for (const message of messages) formatted.push(format(context, request.queue, message, yield* call(context.messages.content(message)), request.selection));
  return { output: { Messages: formatted }, more };
}
