import type { SqsContext } from './context.js';
import { SqsError } from './errors.js';
import type { QueueAttributes } from './queue-attributes.js';
import { nextSequenceNumber } from './sequence-numbers.js';
import { type Step, call } from './storage/step.js';
import type { MessageContent, MessageRow, NewMessage, Queue } from './storage/records.js';

export interface RedrivePolicy {
  readonly deadLetterTargetArn: string;
  readonly maxReceiveCount: number;
}

interface RedriveAllowPolicy {
  readonly redrivePermission: 'allowAll' | 'denyAll' | 'byQueue';
  readonly sourceQueueArns?: string[];
}

const MAX_SOURCE_QUEUE_ARNS = 10;

const invalid = (attribute: string, value: string, reason: string) =>
  new SqsError('InvalidParameterValue', `Value ${value} for parameter ${attribute} is invalid. Reason: ${reason}`);

export function parseRedrivePolicy(value: string | undefined): RedrivePolicy | undefined {
  if (value === undefined || value === '') return undefined;
  const parsed = JSON.parse(value) as Record<string, unknown>;
  const arn = parsed.deadLetterTargetArn;
  // SQS accepts the count as a number or as a string of digits.
  const raw = parsed.maxReceiveCount;
  const count = typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : raw;
  if (raw === undefined) throw invalid('RedrivePolicy', value, 'Redrive policy does not contain mandatory attribute: maxReceiveCount.');
  if (typeof arn !== 'string' || arn === '') {
    throw invalid('RedrivePolicy', value, 'Redrive policy does not contain mandatory attribute: deadLetterTargetArn.');
  }
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 1000) {
    throw invalid('RedrivePolicy', value, `Invalid value for maxReceiveCount: ${String(raw)}, valid values are from 1 to 1000 both inclusive.`);
  }
  if (Object.keys(parsed).some((key) => key !== 'deadLetterTargetArn' && key !== 'maxReceiveCount')) {
    throw invalid('RedrivePolicy', value, 'Only following attributes are supported: [maxReceiveCount, deadLetterTargetArn].');
  }
  return { deadLetterTargetArn: arn, maxReceiveCount: count };
}

function parseRedriveAllowPolicy(value: string | undefined): RedriveAllowPolicy | undefined {
  if (value === undefined || value === '') return undefined;
  const unsupported = new SqsError(
    'InvalidParameterValue',
    "Invalid value for the parameter RedriveAllowPolicy. Reason: Amazon SQS can't create the redrive allow policy, as it's in an unsupported format.",
  );
  const parsed = JSON.parse(value) as Record<string, unknown>;
  const permission = parsed.redrivePermission;
  const sources = parsed.sourceQueueArns;
  const known = Object.keys(parsed).every((key) => key === 'redrivePermission' || key === 'sourceQueueArns');
  if (!known || (permission !== 'allowAll' && permission !== 'denyAll' && permission !== 'byQueue')) throw unsupported;
  if (sources !== undefined && (!Array.isArray(sources) || sources.some((arn) => typeof arn !== 'string'))) throw unsupported;
  const cannot = (reason: string) => invalid('RedriveAllowPolicy', value, `Amazon SQS can't create the redrive allow policy. ${reason}`);
  if (permission === 'byQueue') {
    if (!Array.isArray(sources) || sources.length === 0) {
      throw cannot('When you specify the byQueue permission type, you must also specify one or more sourceQueueArns values.');
    }
    if (sources.length > MAX_SOURCE_QUEUE_ARNS) {
      throw cannot(`The maximum number of source queue ARNs you can specify is ${MAX_SOURCE_QUEUE_ARNS}.`);
    }
  } else if (sources !== undefined) {
    throw cannot('To specify one or more source queue ARNs, you must set redrivePermission to byQueue.');
  }
  return { redrivePermission: permission, ...(Array.isArray(sources) ? { sourceQueueArns: sources as string[] } : {}) };
}

/** Whether a dead-letter queue's RedriveAllowPolicy lets the queue with this ARN use it. */
export function allowsSource(deadLetterQueue: Queue, sourceArn: string): boolean {
  const policy = parseRedriveAllowPolicy(deadLetterQueue.attributes.RedriveAllowPolicy);
  if (!policy || policy.redrivePermission === 'allowAll') return true;
  if (policy.redrivePermission === 'denyAll') return false;
  return policy.sourceQueueArns!.includes(sourceArn);
}

/** Checks the redrive attributes a queue is created or updated with against the queues they name. */
export function* validateRedrivePolicies(context: SqsContext, name: string, fifo: boolean, attributes: QueueAttributes): Step<void> {
  parseRedriveAllowPolicy(attributes.RedriveAllowPolicy);
  const policy = parseRedrivePolicy(attributes.RedrivePolicy);
  if (!policy) return;
  const value = attributes.RedrivePolicy!;
  const arn = /^arn:[^:]+:([^:]*):[^:]*:[^:]*:([^:]+)$/.exec(policy.deadLetterTargetArn);
  if (!arn || arn[1] !== 'sqs') throw invalid('RedrivePolicy', value, 'Only SQS queues are valid resources for deadLetterTargetArn.');
  if (arn[2]!.endsWith('.fifo') !== fifo) throw invalid('RedrivePolicy', value, 'Dead-letter queue must be same type of queue as the source.');
  const target = yield* call(context.queues.byArn(policy.deadLetterTargetArn));
  if (!target) throw invalid('RedrivePolicy', value, 'Dead letter target does not exist.');
  if (target.name === name) throw invalid('RedrivePolicy', value, 'A queue cannot be its own dead-letter queue.');
  if (!allowsSource(target, context.queues.arnOf(name))) {
    throw invalid('RedrivePolicy', value, `Queue ${context.queues.arnOf(name)} is not allowed by the RedriveAllowPolicy of ${target.arn}.`);
  }
}

/** The queue a message goes to once it has been received maxReceiveCount times, if it is there. */
export function* deadLetterTarget(context: SqsContext, queue: Queue): Step<{ queue: Queue; maxReceiveCount: number } | undefined> {
  const policy = parseRedrivePolicy(queue.attributes.RedrivePolicy);
  const target = policy && (yield* call(context.queues.byArn(policy.deadLetterTargetArn)));
  return target ? { queue: target, maxReceiveCount: policy.maxReceiveCount } : undefined;
}

/** The queues whose RedrivePolicy names this queue as their dead-letter queue. */
export function* deadLetterSources(context: SqsContext, queue: Queue): Step<Queue[]> {
  return (yield* call(context.queues.all())).filter((source) => parseRedrivePolicy(source.attributes.RedrivePolicy)?.deadLetterTargetArn === queue.arn);
}

/**
 * Moves a message from one queue to another in one step: it leaves `from` and enters `to` as it is,
 * visible at once, with a sequence number of `to` when that is FIFO and whatever `changes` say.
 */
export function* transferMessage(
  context: SqsContext,
  from: Queue,
  message: MessageRow,
  to: Queue,
  changes: (content: MessageContent) => Partial<NewMessage>,
): Step<void> {
  // Read before the remove: deleting a message's state deletes its content.
  const content = yield* call(context.messages.content(message));
  yield* call(context.messages.remove(from, message, context.now));
  const sequenceNumber = to.fifo ? yield* nextSequenceNumber(context, to) : null;
  yield* call(context.messages.insert(
    to,
    {
      ...content,
      group_id: message.group_id,
      sequence_number: sequenceNumber,
      enqueued_at: message.enqueued_at,
      visible_at: context.now,
      ...changes(content),
    },
    context.now,
  ));
  context.messagesAvailable(to);
}

/**
 * Dead-letters a message: it leaves `from` for the dead-letter queue `to` with its id, body,
 * attributes and SentTimestamp, and remembers `from` as its DeadLetterQueueSourceArn. A standard
 * queue keeps the original enqueue time for retention; a FIFO queue restarts it, gives the message a
 * sequence number of its own and replaces its deduplication id with its message id (so that two
 * messages sharing a deduplication id in different sources both survive).
 */
export function deadLetterMessage(context: SqsContext, from: Queue, message: MessageRow, to: Queue): Step<void> {
  return transferMessage(context, from, message, to, (content) => ({
    dead_letter_source: from.arn,
    ...(to.fifo ? { deduplication_id: content.message_id, enqueued_at: context.now } : {}),
  }));
}
