import type { Action } from '../context.js';
import { addPermission } from './add-permission.js';
import { cancelMessageMoveTask } from './cancel-message-move-task.js';
import { changeMessageVisibility } from './change-message-visibility.js';
import { changeMessageVisibilityBatch } from './change-message-visibility-batch.js';
import { createQueue } from './create-queue.js';
import { deleteMessage } from './delete-message.js';
import { deleteMessageBatch } from './delete-message-batch.js';
import { deleteQueue } from './delete-queue.js';
import { getQueueAttributes } from './get-queue-attributes.js';
import { getQueueUrl } from './get-queue-url.js';
import { listDeadLetterSourceQueues } from './list-dead-letter-source-queues.js';
import { listMessageMoveTasks } from './list-message-move-tasks.js';
import { listQueueTags } from './list-queue-tags.js';
import { listQueues } from './list-queues.js';
import { purgeQueue } from './purge-queue.js';
import { removePermission } from './remove-permission.js';
import { sendMessage } from './send-message.js';
import { sendMessageBatch } from './send-message-batch.js';
import { setQueueAttributes } from './set-queue-attributes.js';
import { startMessageMoveTask } from './start-message-move-task.js';
import { tagQueue } from './tag-queue.js';
import { untagQueue } from './untag-queue.js';

/**
 * The SQS operations that run as one transaction, by the name both wire protocols use for it.
 * ReceiveMessage is not here: it may wait for messages (long polling), so SqsService runs it itself,
 * as a loop of transactions each making one attempt (the loop is `SqsService.receive`, an attempt
 * `receiveMessages` in receive-message.ts).
 */
export const ACTIONS: Readonly<Record<string, Action>> = {
  AddPermission: addPermission,
  CancelMessageMoveTask: cancelMessageMoveTask,
  ChangeMessageVisibility: changeMessageVisibility,
  ChangeMessageVisibilityBatch: changeMessageVisibilityBatch,
  CreateQueue: createQueue,
  DeleteMessage: deleteMessage,
  DeleteMessageBatch: deleteMessageBatch,
  DeleteQueue: deleteQueue,
  GetQueueAttributes: getQueueAttributes,
  GetQueueUrl: getQueueUrl,
  ListDeadLetterSourceQueues: listDeadLetterSourceQueues,
  ListMessageMoveTasks: listMessageMoveTasks,
  ListQueueTags: listQueueTags,
  ListQueues: listQueues,
  PurgeQueue: purgeQueue,
  RemovePermission: removePermission,
  SendMessage: sendMessage,
  SendMessageBatch: sendMessageBatch,
  SetQueueAttributes: setQueueAttributes,
  StartMessageMoveTask: startMessageMoveTask,
  TagQueue: tagQueue,
  UntagQueue: untagQueue,
};
