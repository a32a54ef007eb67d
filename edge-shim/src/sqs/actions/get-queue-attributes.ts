import type { SqsContext } from '../context.js';
import { type Input, optionalStringList, requiredString } from '../input.js';
import { ALL_ATTRIBUTE_NAMES, checkRequestedAttribute } from '../queue-attributes.js';
import { queueByUrl } from '../queues.js';
import { call } from '../storage/step.js';

export function* getQueueAttributes(context: SqsContext, input: Input) {
  const queue = yield* queueByUrl(context.queues, requiredString(input, 'QueueUrl'));
  const requested = optionalStringList(input, 'AttributeNames') ?? [];
  for (const name of requested) checkRequestedAttribute(name, queue.fifo);
  const names = new Set(requested.includes('All') ? ALL_ATTRIBUTE_NAMES : requested);
  if (names.size === 0) return {};

  const computed: Record<string, string> = {
    CreatedTimestamp: String(Math.floor(queue.createdAt / 1000)),
    LastModifiedTimestamp: String(Math.floor(queue.modifiedAt / 1000)),
    QueueArn: queue.arn,
  };
  if (names.has('ApproximateNumberOfMessages') || names.has('ApproximateNumberOfMessagesNotVisible') || names.has('ApproximateNumberOfMessagesDelayed')) {
    const counts = yield* call(context.messages.counts(queue, context.now));
    computed.ApproximateNumberOfMessages = String(counts.visible);
    computed.ApproximateNumberOfMessagesNotVisible = String(counts.inFlight);
    computed.ApproximateNumberOfMessagesDelayed = String(counts.delayed);
  }
  const attributes: Record<string, string> = {};
  for (const name of names) {
    const value = computed[name] ?? queue.attributes[name];
    if (value !== undefined) attributes[name] = value;
  }
  return Object.keys(attributes).length > 0 ? { Attributes: attributes } : {};
}
