import { PermanentError } from './errors.js';
import type { FallbackOutcome } from './fallback.js';
import type { SiteMark } from './site.js';

/**
 * An earlier step's outcome, carried by the tasks of the stages after it, so that a stage can run
 * at a site whose store never saw that step (a workflow begun in the region carried on at the edge,
 * or the reverse): later steps read it, and a compensation undoes it.
 */
export interface CarriedStep {
  readonly step: string;
  readonly index: number;
  readonly outcome: FallbackOutcome;
  /** Where and when the step ran. */
  readonly ranAt?: SiteMark;
}

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
  /** The completed earlier steps, in order; absent on a workflow's first task. */
  readonly trail?: readonly CarriedStep[];
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

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function parseCarriedStep(value: unknown, position: number): CarriedStep {
  const malformed = (what: string) => new PermanentError(`task.trail[${position}]: ${what}`);
  if (!isObject(value)) throw malformed('must be an object');
  const { step, index, outcome, ranAt } = value;
  if (typeof step !== 'string' || step.length === 0) throw malformed('step must be a stage name');
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0) throw malformed('index must be a non-negative integer');
  if (!isObject(outcome) || typeof outcome.answeredBy !== 'string' || !Array.isArray(outcome.skipped)) throw malformed('outcome must be a step outcome');
  if (ranAt === undefined) return { step, index, outcome: outcome as unknown as FallbackOutcome };
  if (!isObject(ranAt) || typeof ranAt.site !== 'string' || typeof ranAt.atEdge !== 'boolean' || typeof ranAt.at !== 'string') {
    throw malformed('ranAt must name a site, whether it is an edge site, and a time');
  }
  return { step, index, outcome: outcome as unknown as FallbackOutcome, ranAt: { site: ranAt.site, atEdge: ranAt.atEdge, at: ranAt.at } };
}

/** Parses an SQS message body into a task; anything malformed is a permanent error. */
export function parseTask(body: string): Task {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new PermanentError('task body is not JSON');
  }
  if (!isObject(parsed)) throw new PermanentError('task body is not a JSON object');
  const fields = parsed;
  if (!('input' in fields)) throw new PermanentError('task.input is missing');
  if (fields.trail !== undefined && !Array.isArray(fields.trail)) throw new PermanentError('task.trail must be an array');
  return {
    taskId: requireId(fields.taskId, 'taskId'),
    workflow: requireId(fields.workflow, 'workflow'),
    workflowId: requireId(fields.workflowId, 'workflowId'),
    stage: requireId(fields.stage, 'stage'),
    group: requireId(fields.group, 'group'),
    input: fields.input,
    ...(fields.trail !== undefined && { trail: (fields.trail as unknown[]).map(parseCarriedStep) }),
  };
}
