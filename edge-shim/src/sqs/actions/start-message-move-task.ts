import type { SqsContext } from '../context.js';
import { SqsError, invalidParameter } from '../errors.js';
import { type Input, optionalInteger, optionalString, requiredString } from '../input.js';
import { TASK_HISTORY_MS, encodeTaskHandle } from '../move-tasks.js';
import { deadLetterSources } from '../redrive.js';
import { call } from '../storage/step.js';

const notFound = (parameter: string) =>
  new SqsError('ResourceNotFoundException', `The resource that you specified for the ${parameter} parameter doesn't exist.`);

/**
 * Starts moving the messages of a dead-letter queue to DestinationArn or, without one, each back to
 * the queue it was dead-lettered from. The server's mover does the moving in the background.
 */
export function* startMessageMoveTask(context: SqsContext, input: Input) {
  const sourceArn = requiredString(input, 'SourceArn');
  const destinationArn = optionalString(input, 'DestinationArn');
  const maxPerSecond = optionalInteger(input, 'MaxNumberOfMessagesPerSecond', 1, 500);
  const source = yield* call(context.queues.byArn(sourceArn));
  if (!source) throw notFound('SourceArn');
  if ((yield* deadLetterSources(context, source)).length === 0) throw invalidParameter('Source queue must be configured as a Dead Letter Queue.');
  if (destinationArn !== undefined) {
    const destination = yield* call(context.queues.byArn(destinationArn));
    if (!destination) throw notFound('DestinationArn');
    if (destination.id === source.id) throw invalidParameter('Source queue arn and destination queue arn cannot be the same.');
    if (destination.fifo !== source.fifo) throw invalidParameter('The source queue and destination queue must be of the same queue type.');
  }
  if (yield* call(context.moveTasks.activeFor(sourceArn))) {
    throw invalidParameter('There is already a task running. Only one active task is allowed for a source queue arn at a given time.');
  }
  yield* call(context.moveTasks.forget(context.now - TASK_HISTORY_MS));
  const handle = encodeTaskHandle(sourceArn);
  yield* call(context.moveTasks.insert({
    task_handle: handle,
    source_arn: sourceArn,
    destination_arn: destinationArn ?? null,
    max_per_second: maxPerSecond ?? null,
    to_move: (yield* call(context.messages.counts(source, context.now))).visible,
    started_at: context.now,
  }));
  context.moveTasksChanged();
  return { TaskHandle: handle };
}
