import type { WorkflowDefinition } from '../workflow-definition.js';
import { isPermanent } from './errors.js';
import { type Alternative, type FallbackOutcome, runFallbackChain } from './fallback.js';
import { type CallPolicy, type Deadline, callDependency } from './resilience.js';
import type { StepLogStore, StepRecord } from './store/types.js';
import { type Task, stageTaskId } from './task.js';

/** Name the fallback chain records when a step ended with the task on the human review queue. */
export const HUMAN_REVIEW = 'human-review';

export interface StepContext<I> {
  readonly workflowId: string;
  readonly input: I;
  /** Outcomes of the earlier steps, by step name. */
  readonly results: Readonly<Record<string, FallbackOutcome>>;
  /** Calls a downstream dependency under the agent's policy (retries, breaker, timeout). */
  call<T>(dependency: string, request: (signal: AbortSignal) => Promise<T>): Promise<T>;
}

/** Declarative configuration of one agent: how it performs its step and how the step is undone. */
export interface AgentDefinition<I> {
  /** Retry, timeout and circuit breaker of every downstream call the agent makes. */
  readonly policy: CallPolicy;
  /** Ways to perform the step, in order of preference; the first that answers wins. */
  readonly alternatives: readonly Alternative<StepContext<I>>[];
  /** Whether a step no alternative could answer goes to the human review queue. */
  readonly escalateToHumanReview: boolean;
  /** Undoes the step; it may run more than once, so it must be idempotent. */
  readonly compensate?: (context: StepContext<I>, outcome: FallbackOutcome) => Promise<void>;
}

export interface SagaDefinition<I> {
  readonly workflow: WorkflowDefinition;
  /** Validates a task's input; throws PermanentError when it is malformed. */
  readonly parseInput: (input: unknown) => I;
  /** One agent per stage of the workflow, by stage name. */
  readonly agents: Readonly<Record<string, AgentDefinition<I>>>;
}

/** What a stage's agent needs from its surroundings. */
export interface SagaRuntime {
  readonly stepLog: StepLogStore;
  readonly deadline: Deadline;
  /** Sends a task to the next stage's queue. */
  handOff(task: Task): Promise<void>;
  /** Puts a task on the human review queue. */
  escalate(task: Task, reason: string): Promise<void>;
}

export type StageOutcome =
  | { readonly status: 'completed'; readonly answeredBy: string }
  | { readonly status: 'escalated' }
  | { readonly status: 'compensated'; readonly failedStep: string; readonly error: string };

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/**
 * Runs one stage of a saga for a task, resuming from the step log: a completed step is not run
 * again (its stored outcome is handed on), a started one is run again (actions are idempotent), and
 * a step that failed for good has the completed steps before it compensated in reverse order.
 */
export async function runStage<I>(saga: SagaDefinition<I>, stageIndex: number, task: Task, runtime: SagaRuntime): Promise<StageOutcome> {
  const stage = saga.workflow.stages[stageIndex]!;
  const agent = saga.agents[stage.name]!;
  const input = saga.parseInput(task.input);
  if (stageIndex === 0) await runtime.stepLog.startSaga(task.workflowId, saga.workflow.name, task.input);

  const log = await runtime.stepLog.load(task.workflowId);
  if (!log.saga) throw new Error(`workflow ${task.workflowId} has no saga record: stage ${stage.name} ran before the first stage`);
  if (log.saga.status === 'compensating' || log.saga.status === 'compensated') return compensate(saga, task, input, runtime);
  if (log.saga.status === 'escalated') return { status: 'escalated' };

  const existing = log.steps.find((step) => step.index === stageIndex);
  if (existing?.status === 'completed') return afterStep(saga, stageIndex, task, existing.result as FallbackOutcome, runtime);
  if (existing && existing.status !== 'started') return compensate(saga, task, input, runtime);

  const started = await runtime.stepLog.transitionStep(task.workflowId, { name: stage.name, index: stageIndex }, ['absent', 'started'], { status: 'started' });
  // Another delivery moved the step on in the meantime: act on what it recorded.
  if (!started) return runStage(saga, stageIndex, task, runtime);

  const alternatives: Alternative<StepContext<I>>[] = [...agent.alternatives];
  if (agent.escalateToHumanReview) {
    alternatives.push({ name: HUMAN_REVIEW, run: async () => runtime.escalate(task, `no alternative answered step ${stage.name}`) });
  }
  const context = stepContext(task.workflowId, input, completedResults(log.steps), agent, runtime);
  let outcome: FallbackOutcome;
  try {
    outcome = await runFallbackChain(alternatives, context);
  } catch (error) {
    if (!isPermanent(error)) throw error;
    await runtime.stepLog.transitionStep(task.workflowId, { name: stage.name, index: stageIndex }, ['started'], { status: 'failed', error: describe(error) });
    return compensate(saga, task, input, runtime);
  }
  await runtime.stepLog.transitionStep(task.workflowId, { name: stage.name, index: stageIndex }, ['started'], { status: 'completed', result: outcome });
  return afterStep(saga, stageIndex, task, outcome, runtime);
}

function completedResults(steps: readonly StepRecord[]): Record<string, FallbackOutcome> {
  const results: Record<string, FallbackOutcome> = {};
  for (const step of steps) if (step.result !== undefined) results[step.step] = step.result as FallbackOutcome;
  return results;
}

function stepContext<I>(workflowId: string, input: I, results: Record<string, FallbackOutcome>, agent: AgentDefinition<I>, runtime: SagaRuntime): StepContext<I> {
  return {
    workflowId,
    input,
    results,
    call: (dependency, request) => callDependency(dependency, agent.policy, runtime.deadline, request),
  };
}

async function afterStep<I>(saga: SagaDefinition<I>, stageIndex: number, task: Task, outcome: FallbackOutcome, runtime: SagaRuntime): Promise<StageOutcome> {
  if (outcome.answeredBy === HUMAN_REVIEW) {
    await runtime.stepLog.setSagaStatus(task.workflowId, ['running'], 'escalated');
    return { status: 'escalated' };
  }
  const next = saga.workflow.stages[stageIndex + 1];
  if (next) {
    await runtime.handOff({ ...task, taskId: stageTaskId(task.workflowId, next.name), stage: next.name });
  } else {
    await runtime.stepLog.setSagaStatus(task.workflowId, ['running'], 'completed');
  }
  return { status: 'completed', answeredBy: outcome.answeredBy };
}

/**
 * Compensates, newest first, every step completed before the one that failed. Each compensation is
 * bracketed by conditional writes (completed -> compensating -> compensated), so a crash or
 * redelivery carries on with the steps not yet compensated.
 */
async function compensate<I>(saga: SagaDefinition<I>, task: Task, input: I, runtime: SagaRuntime): Promise<StageOutcome> {
  await runtime.stepLog.setSagaStatus(task.workflowId, ['running'], 'compensating');
  const { steps } = await runtime.stepLog.load(task.workflowId);
  const failed = steps.find((step) => step.status === 'failed');
  const results = completedResults(steps);
  for (const step of [...steps].reverse()) {
    if (step.status !== 'completed' && step.status !== 'compensating') continue;
    const agent = saga.agents[step.step]!;
    const key = { name: step.step, index: step.index };
    if (!(await runtime.stepLog.transitionStep(task.workflowId, key, ['completed', 'compensating'], { status: 'compensating' }))) continue;
    if (agent.compensate) await agent.compensate(stepContext(task.workflowId, input, results, agent, runtime), step.result as FallbackOutcome);
    await runtime.stepLog.transitionStep(task.workflowId, key, ['compensating'], { status: 'compensated' });
  }
  await runtime.stepLog.setSagaStatus(task.workflowId, ['compensating'], 'compensated');
  return { status: 'compensated', failedStep: failed?.step ?? 'unknown', error: failed?.error ?? '' };
}
