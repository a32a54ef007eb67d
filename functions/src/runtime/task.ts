import { PermanentError } from './errors.js';

/**
 * The message every agent receives: one stage of one workflow instance. `taskId` is the idempotency
 * key; `group` is the FIFO message group (for payments, the account) that keeps related work in order.
 */
export interface Task {
  readonly taskId: string;
  readonly workflow: string;
  readonly workflowId: string;
  readonly stage: string;
  readonly group: string;
  readonly input: unknown;
}

/** Task id of a workflow instance's stage: the same for every delivery of that stage's work. */
export function stageTaskId(workflowId: string, stage: string): string {
  return `${workflowId}:${stage}`;
}

// SQS FIFO MessageGroupId / MessageDeduplicationId: up to 128 characters of alphanumerics and punctuation.
const ID = /^[\x21-\x7e]{1,100}$/;

function requireId(value: unknown, field: string): string {
  if (typeof value !== 'string' || !ID.test(value)) {
    throw new PermanentError(`task.${field} must be 1 to 100 printable ASCII characters without spaces`);
  }
  return value;
}

/** Parses an SQS message body into a task; anything malformed is a permanent error. */
export function parseTask(body: string): Task {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new PermanentError('task body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new PermanentError('task body is not a JSON object');
  const fields = parsed as Record<string, unknown>;
  if (!('input' in fields)) throw new PermanentError('task.input is missing');
  return {
    taskId: requireId(fields.taskId, 'taskId'),
    workflow: requireId(fields.workflow, 'workflow'),
    workflowId: requireId(fields.workflowId, 'workflowId'),
    stage: requireId(fields.stage, 'stage'),
    group: requireId(fields.group, 'group'),
    input: fields.input,
  };
}
