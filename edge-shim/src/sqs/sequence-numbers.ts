import type { SqsContext } from './context.js';
import { type Step, call } from './storage/step.js';
import type { Queue } from './storage/records.js';

// SQS sequence numbers are 20-digit decimal strings that only grow within a queue.
const BASE = 10n ** 19n;

export function* nextSequenceNumber(context: SqsContext, queue: Queue): Step<string> {
  return (BASE + BigInt(yield* call(context.queues.nextSequence(queue)))).toString();
}
