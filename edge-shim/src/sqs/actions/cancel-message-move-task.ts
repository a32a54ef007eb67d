import type { SqsContext } from '../context.js';
import { SqsError } from '../errors.js';
import { type Input, requiredString } from '../input.js';
import { decodeTaskHandle } from '../move-tasks.js';
import { call } from '../storage/step.js';

/** Stops a running task; what it already moved stays moved. It is CANCELLING until the mover stops it. */
export function* cancelMessageMoveTask(context: SqsContext, input: Input) {
  const handle = requiredString(input, 'TaskHandle');
  const { sourceArn } = decodeTaskHandle(handle);
  if (!(yield* call(context.queues.byArn(sourceArn)))) {
    throw new SqsError('ResourceNotFoundException', "The resource that you specified for the SourceArn parameter doesn't exist.");
  }
  const task = yield* call(context.moveTasks.byHandle(handle));
  if (!task || task.status !== 'RUNNING') throw new SqsError('ResourceNotFoundException', 'Task does not exist.');
  yield* call(context.moveTasks.setStatus(handle, 'CANCELLING'));
  context.moveTasksChanged();
  return { ApproximateNumberOfMessagesMoved: task.moved };
}
