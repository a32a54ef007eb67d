import type { SqsContext } from '../context.js';
import { SqsError } from '../errors.js';
import { type Input, optionalInteger, requiredString } from '../input.js';
import { TASK_HISTORY_MS } from '../move-tasks.js';
import { call } from '../storage/step.js';
import type { MoveTaskRow } from '../storage/records.js';

function entry(task: MoveTaskRow) {
  return {
    ...(task.status === 'RUNNING' ? { TaskHandle: task.task_handle } : {}),
    Status: task.status,
    SourceArn: task.source_arn,
    ...(task.destination_arn !== null ? { DestinationArn: task.destination_arn } : {}),
    ...(task.max_per_second !== null ? { MaxNumberOfMessagesPerSecond: task.max_per_second } : {}),
    ApproximateNumberOfMessagesMoved: task.moved,
    ApproximateNumberOfMessagesToMove: task.to_move,
    ...(task.status === 'FAILED' && task.failure_reason !== null ? { FailureReason: task.failure_reason } : {}),
    StartedTimestamp: task.started_at,
  };
}

/** The most recent move tasks of a source queue (1 by default, up to 10) from the last 14 days. */
export function* listMessageMoveTasks(context: SqsContext, input: Input) {
  const sourceArn = requiredString(input, 'SourceArn');
  const maxResults = optionalInteger(input, 'MaxResults', 1, 10) ?? 1;
  const source = yield* call(context.queues.byArn(sourceArn));
  if (!source) throw new SqsError('ResourceNotFoundException', "The resource that you specified for the SourceArn parameter doesn't exist.");
  // Tasks of an earlier queue of the same name are not this queue's.
  const since = Math.max(context.now - TASK_HISTORY_MS, source.createdAt);
  return { Results: (yield* call(context.moveTasks.recent(sourceArn, since, maxResults))).map(entry) };
}
