import type { SqsContext } from './context.js';
import type { Queue } from './queues.js';

// SQS sequence numbers are 20-digit decimal strings that only grow within a queue.
const BASE = 10n ** 19n;

export function nextSequenceNumber(context: SqsContext, queue: Queue): string {
  return (BASE + BigInt(context.queues.nextSequence(queue))).toString();
}
