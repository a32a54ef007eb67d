import type { SqsContext } from './context.js';
import { SqsError } from './errors.js';
import type { MessageRow } from './messages.js';
import type { QueueAttributes } from './queue-attributes.js';
import type { Queue } from './queues.js';
import { nextSequenceNumber } from './sequence-numbers.js';

export interface RedrivePolicy {
  readonly deadLetterTargetArn: string;
  readonly maxReceiveCount: number;
}

interface RedriveAllowPolicy {
  readonly redrivePermission: 'allowAll' | 'denyAll' | 'byQueue';
  readonly sourceQueueArns?: string[];
}

const invalid = (attribute: string, value: string, reason: string) =>
  new SqsError('InvalidParameterValue', `Value ${value} for parameter ${attribute} is invalid. Reason: ${reason}`);

export function parseRedrivePolicy(value: string | undefined): RedrivePolicy | undefined {
  if (value === undefined || value === '') return undefined;
  const parsed = JSON.parse(value) as Record<string, unknown>;
  const arn = parsed.deadLetterTargetArn;
  const count = typeof parsed.maxReceiveCount === 'string' ? Number(parsed.maxReceiveCount) : parsed.maxReceiveCount;
  if (typeof arn !== 'string' || arn === '') throw invalid('RedrivePolicy', value, 'Redrive policy does not contain mandatory attribute: deadLetterTargetArn.');
  if (count === undefined) throw invalid('RedrivePolicy', value, 'Redrive policy does not contain mandatory attribute: maxReceiveCount.');
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > 1000) {
    throw invalid('RedrivePolicy', value, 'Invalid value for maxReceiveCount: must be an integer from 1 to 1000.');
  }
  for (const key of Object.keys(parsed)) {
    if (key !== 'deadLetterTargetArn' && key !== 'maxReceiveCount') throw invalid('RedrivePolicy', value, `Unknown attribute ${key}.`);
  }
  return { deadLetterTargetArn: arn, maxReceiveCount: count };
}

function parseRedriveAllowPolicy(value: string | undefined): RedriveAllowPolicy | undefined {
  if (value === undefined || value === '') return undefined;
  const parsed = JSON.parse(value) as Record<string, unknown>;
  const permission = parsed.redrivePermission;
  const sources = parsed.sourceQueueArns;
  if (permission !== 'allowAll' && permission !== 'denyAll' && permission !== 'byQueue') {
    throw invalid('RedriveAllowPolicy', value, 'Invalid value for redrivePermission: must be allowAll, denyAll or byQueue.');
  }
  if (permission === 'byQueue') {
    if (!Array.isArray(sources) || sources.length < 1 || sources.length > 10 || sources.some((arn) => typeof arn !== 'string')) {
      throw invalid('RedriveAllowPolicy', value, 'sourceQueueArns must list 1 to 10 queue ARNs when redrivePermission is byQueue.');
    }
  } else if (sources !== undefined) {
    throw invalid('RedriveAllowPolicy', value, 'sourceQueueArns is allowed only when redrivePermission is byQueue.');
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
export function validateRedrivePolicies(context: SqsContext, name: string, fifo: boolean, attributes: QueueAttributes): void {
  parseRedriveAllowPolicy(attributes.RedriveAllowPolicy);
  const policy = parseRedrivePolicy(attributes.RedrivePolicy);
  if (!policy) return;
  const target = context.queues.byArn(policy.deadLetterTargetArn);
  const value = attributes.RedrivePolicy!;
  if (!target) throw invalid('RedrivePolicy', value, 'Dead letter target does not exist.');
  if (target.fifo !== fifo) {
    throw invalid('RedrivePolicy', value, fifo ? 'Dead-letter queue of a FIFO queue must be a FIFO queue.' : 'Dead-letter queue of a standard queue must be a standard queue.');
  }
  if (target.name === name) throw invalid('RedrivePolicy', value, 'A queue cannot be its own dead-letter queue.');
  if (!allowsSource(target, context.queues.arnOf(name))) {
    throw invalid('RedrivePolicy', value, 'Queue is not allowed to use the dead-letter queue by its RedriveAllowPolicy.');
  }
}

/** The queue a message goes to once it has been received maxReceiveCount times, if it is there. */
export function deadLetterTarget(context: SqsContext, queue: Queue): { queue: Queue; maxReceiveCount: number } | undefined {
  const policy = parseRedrivePolicy(queue.attributes.RedrivePolicy);
  const target = policy && context.queues.byArn(policy.deadLetterTargetArn);
  return target ? { queue: target, maxReceiveCount: policy.maxReceiveCount } : undefined;
}

/**
 * Moves a message to another queue, keeping its id, body, attributes and SentTimestamp. A standard
 * queue keeps its original enqueue time for retention; a FIFO queue restarts it, and the message gets
 * a sequence number of its new queue. `deadLetterSource` is the ARN it came from, when it is dead-lettered.
 */
export function moveMessage(context: SqsContext, from: Queue, message: MessageRow, to: Queue, deadLetterSource: string | null): void {
  context.messages.remove(from, message);
  context.messages.insert(to, {
    queue_id: to.id,
    message_id: message.message_id,
    body: message.body,
    body_md5: message.body_md5,
    attributes: message.attributes,
    attributes_md5: message.attributes_md5,
    trace_header: message.trace_header,
    group_id: message.group_id,
    deduplication_id: message.deduplication_id,
    sequence_number: to.fifo ? nextSequenceNumber(context, to) : null,
    dead_letter_source: deadLetterSource,
    sent_at: message.sent_at,
    enqueued_at: to.fifo ? context.now : message.enqueued_at,
    visible_at: context.now,
  });
  context.messagesAvailable(to);
}
