import type { StageDefinition, WorkflowDefinition } from '../workflow-definition.js';
import { PermanentError, isPermanent } from './errors.js';
import { type Alternative, type FallbackOutcome, runFallbackChain } from './fallback.js';
import { type CallPolicy, type Deadline, callDependency } from './resilience.js';
import { type Site, siteMark } from './site.js';
import type { StepRecord, Stores } from './store/types.js';
import { type CarriedStep, type Task, stageTaskId } from './task.js';

/** Name the fallback chain records when a step ended with the task on the human review queue. */
export const HUMAN_REVIEW = 'human-review';

export interface StepContext<I, S = undefined> {
  readonly workflowId: string;
  readonly input: I;
  /** Outcomes of the earlier steps, by step name. */
  readonly results: Readonly<Record<string, FallbackOutcome>>;
  /** Where the step runs: the region, or an edge site while the region is down (degraded mode). */
  readonly site: Site;
  /** The stores of the backend the agent runs on (no ledger at the edge). */
  readonly stores: Stores;
  /** The saga's own settings (its limits and the like). */
  readonly settings: S;
  /** Calls a downstream dependency under the agent's policy (retries, breaker, timeout). */
  call<T>(dependency: string, request: (signal: AbortSignal) => Promise<T>): Promise<T>;
}

/** Declarative configuration of one agent: how it performs its step and how the step is undone. */
export interface AgentDefinition<I, S = undefined> {
  /** Retry, timeout and circuit breaker of every downstream call the agent makes. */
  readonly policy: CallPolicy;
  /** Ways to perform the step, in order of preference; the first that answers wins. */
  readonly alternatives: readonly Alternative<StepContext<I, S>>[];
  /** Whether a step no alternative could answer goes to the human review queue. */
  readonly escalateToHumanReview: boolean;
  /**
   * Decides, before any alternative runs, whether the step may be done here at all: a reason sends
   * the task to human review (or, for an agent that does not escalate, fails the step for good).
   */
  readonly admit?: (context: StepContext<I, S>) => Promise<string | undefined>;
  /** Undoes the step; it may run more than once, so it must be idempotent. */
  readonly compensate?: (context: StepContext<I, S>, outcome: FallbackOutcome) => Promise<void>;
}

export interface SagaDefinition<I, S = undefined> {
  readonly workflow: WorkflowDefinition;
  /** Validates a task's input; throws PermanentError when it is malformed. */
  readonly parseInput: (input: unknown) => I;
  /** One agent per stage of the workflow, by stage name. */
  readonly agents: Readonly<Record<string, AgentDefinition<I, S>>>;
  /**
   * Reads the saga's own settings from the environment (throws saying which is wrong): an agent
   * built from the environment reads them once, with its other dependencies. `() => undefined` for
   * a saga that has none.
   */
  readonly settingsFromEnvironment: (env: NodeJS.ProcessEnv) => S;
}

/** What a stage's agent needs from its surroundings. */
export interface SagaRuntime<S = undefined> {
  readonly site: Site;
  readonly stores: Stores;
  readonly settings: S;
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
export async function runStage<I, S>(saga: SagaDefinition<I, S>, stageIndex: number, task: Task, runtime: SagaRuntime<S>): Promise<StageOutcome> {
  const stage = saga.workflow.stages[stageIndex]!;
  const agent = saga.agents[stage.name]!;
  const input = saga.parseInput(task.input);
  const { stepLog } = runtime.stores;
  const key = { name: stage.name, index: stageIndex };

  const log = await openSagaLog(saga, stageIndex, task, runtime);
  if (log.saga.status === 'compensating' || log.saga.status === 'compensated') return compensate(saga, task, input, runtime);
  if (log.saga.status === 'escalated') return { status: 'escalated' };

  const existing = log.steps.find((step) => step.index === stageIndex);
  if (existing?.status === 'completed') return afterStep(saga, stageIndex, task, existing, runtime);
  if (existing && existing.status !== 'started') return compensate(saga, task, input, runtime);

  const started = await stepLog.transitionStep(task.workflowId, key, ['absent', 'started'], { status: 'started', ranAt: siteMark(runtime.site) });
  // Another delivery moved the step on in the meantime: act on what it recorded.
  if (!started) return runStage(saga, stageIndex, task, runtime);

  const context = stepContext(task.workflowId, input, completedResults(log.steps), agent, runtime);
  let outcome: FallbackOutcome;
  try {
    outcome = await performStep(agent, stage, task, context, runtime);
  } catch (error) {
    if (!isPermanent(error)) throw error;
    await stepLog.transitionStep(task.workflowId, key, ['started'], { status: 'failed', error: describe(error) });
    return compensate(saga, task, input, runtime);
  }
  const completed = await stepLog.transitionStep(task.workflowId, key, ['started'], { status: 'completed', result: outcome });
  // Another delivery finished or failed the step meanwhile: what it recorded stands.
  if (!completed) return runStage(saga, stageIndex, task, runtime);
  return afterStep(saga, stageIndex, task, completed, runtime);
}

/**
 * The saga's log at this site. The first stage starts the saga record; a later stage whose site has
 * no record of the saga (it began at another site) starts one from its task, which must carry every
 * earlier step. Carried steps this site has not recorded are recorded as they were, so that later
 * steps read them and compensations find them here.
 */
async function openSagaLog<I, S>(saga: SagaDefinition<I, S>, stageIndex: number, task: Task, runtime: SagaRuntime<S>) {
  const { stepLog } = runtime.stores;
  const trail = task.trail ?? [];
  for (const carried of trail) {
    const expected = saga.workflow.stages[carried.index];
    if (carried.index >= stageIndex || expected?.name !== carried.step) {
      throw new PermanentError(`task ${task.taskId} carries step ${carried.step} at index ${carried.index}, which is not an earlier stage of ${saga.workflow.name}`);
    }
  }
  if (stageIndex === 0) await stepLog.startSaga(task.workflowId, saga.workflow.name, task.input);
  let log = await stepLog.load(task.workflowId);
  if (!log.saga) {
    const missing = saga.workflow.stages.slice(0, stageIndex).filter((_, index) => !trail.some((carried) => carried.index === index));
    if (missing.length > 0) {
      throw new Error(
        `workflow ${task.workflowId} has no saga record here and its task does not carry stage ${missing.map((stage) => stage.name).join(', ')}: ` +
          `stage ${saga.workflow.stages[stageIndex]!.name} ran before the first stage`,
      );
    }
    await stepLog.startSaga(task.workflowId, saga.workflow.name, task.input);
  }
  const imported = await Promise.all(
    trail
      .filter((carried) => !log.steps.some((step) => step.index === carried.index))
      .map((carried) =>
        stepLog.transitionStep(task.workflowId, { name: carried.step, index: carried.index }, ['absent'], {
          status: 'completed',
          result: carried.outcome,
          ...(carried.ranAt && { ranAt: carried.ranAt }),
        }),
      ),
  );
  if (imported.length > 0 || !log.saga) log = await stepLog.load(task.workflowId);
  return { saga: log.saga!, steps: log.steps };
}

/**
 * Runs the step's alternatives. At the edge the ones that need the region are skipped (recorded in
 * the outcome); the agent's admission check may send the task straight to human review.
 */
async function performStep<I, S>(agent: AgentDefinition<I, S>, stage: StageDefinition, task: Task, context: StepContext<I, S>, runtime: SagaRuntime<S>): Promise<FallbackOutcome> {
  const escalation: Alternative<StepContext<I, S>> = {
    name: HUMAN_REVIEW,
    run: async () => runtime.escalate(task, `no alternative answered step ${stage.name}`),
  };
  const refusal = await agent.admit?.(context);
  if (refusal !== undefined) {
    if (!agent.escalateToHumanReview) throw new PermanentError(refusal);
    await runtime.escalate(task, refusal);
    return { answeredBy: HUMAN_REVIEW, value: undefined, skipped: [{ name: 'admission', reason: refusal }] };
  }
  const atEdge = runtime.site.atEdge;
  const usable = agent.alternatives.filter((alternative) => !(atEdge && alternative.regionOnly));
  const skipped = agent.alternatives
    .filter((alternative) => !usable.includes(alternative))
    .map((alternative) => ({ name: alternative.name, reason: `needs the region; running at edge site ${runtime.site.id}` }));
  return runFallbackChain(agent.escalateToHumanReview ? [...usable, escalation] : usable, context, skipped);
}

function completedResults(steps: readonly StepRecord[]): Record<string, FallbackOutcome> {
  const results: Record<string, FallbackOutcome> = {};
  for (const step of steps) if (step.result !== undefined) results[step.step] = step.result as FallbackOutcome;
  return results;
}

function stepContext<I, S>(workflowId: string, input: I, results: Record<string, FallbackOutcome>, agent: AgentDefinition<I, S>, runtime: SagaRuntime<S>): StepContext<I, S> {
  return {
    workflowId,
    input,
    results,
    site: runtime.site,
    stores: runtime.stores,
    settings: runtime.settings,
    call: (dependency, request) => callDependency(dependency, agent.policy, runtime.deadline, request),
  };
}

/** The steps a task hands on: those it carried, then this one. */
function nextTrail(task: Task, step: StepRecord): CarriedStep[] {
  const carried = (task.trail ?? []).filter((earlier) => earlier.index !== step.index);
  return [...carried, { step: step.step, index: step.index, outcome: step.result as FallbackOutcome, ...(step.ranAt && { ranAt: step.ranAt }) }];
}

async function afterStep<I, S>(saga: SagaDefinition<I, S>, stageIndex: number, task: Task, step: StepRecord, runtime: SagaRuntime<S>): Promise<StageOutcome> {
  const outcome = step.result as FallbackOutcome;
  if (outcome.answeredBy === HUMAN_REVIEW) {
    await runtime.stores.stepLog.setSagaStatus(task.workflowId, ['running'], 'escalated');
    return { status: 'escalated' };
  }
  const next = saga.workflow.stages[stageIndex + 1];
  if (next) {
    await runtime.handOff({ ...task, taskId: stageTaskId(task.workflowId, next.name), stage: next.name, trail: nextTrail(task, step) });
  } else {
    await runtime.stores.stepLog.setSagaStatus(task.workflowId, ['running'], 'completed');
  }
  return { status: 'completed', answeredBy: outcome.answeredBy };
}

/**
 * Compensates, newest first, every step completed before the one that failed. Each compensation is
 * bracketed by conditional writes (completed -> compensating -> compensated), so a crash or
 * redelivery carries on with the steps not yet compensated.
 *
 * At the edge, a step of a stage that never runs there (the ledger) cannot be undone: its
 * compensation needs the region's book of record. Then nothing is compensated at the edge; the saga
 * is escalated and the task goes to human review, which reaches the region with the replay.
 */
async function compensate<I, S>(saga: SagaDefinition<I, S>, task: Task, input: I, runtime: SagaRuntime<S>): Promise<StageOutcome> {
  const { stepLog } = runtime.stores;
  const { saga: record, steps } = await stepLog.load(task.workflowId);
  const toUndo = [...steps].reverse().filter((step) => step.status === 'completed' || step.status === 'compensating');
  if (runtime.site.atEdge && record?.status === 'running') {
    const needRegion = toUndo.filter((step) => saga.agents[step.step]!.compensate && !stageNamed(saga.workflow, step.step).runsAtEdge);
    if (needRegion.length > 0) {
      const failed = steps.find((step) => step.status === 'failed');
      const reason =
        `step ${failed?.step ?? task.stage} failed for good at edge site ${runtime.site.id} (${failed?.error ?? 'no error recorded'}); ` +
        `undoing ${needRegion.map((step) => step.step).join(', ')} needs the region`;
      // Escalated first, then recorded: a crash in between escalates again (deduplicated by task id), never not at all.
      await runtime.escalate(task, reason);
      await stepLog.setSagaStatus(task.workflowId, ['running'], 'escalated');
      return { status: 'escalated' };
    }
  }
  await stepLog.setSagaStatus(task.workflowId, ['running'], 'compensating');
  const failed = steps.find((step) => step.status === 'failed');
  const results = completedResults(steps);
  for (const step of toUndo) {
    const agent = saga.agents[step.step]!;
    const key = { name: step.step, index: step.index };
    if (!(await stepLog.transitionStep(task.workflowId, key, ['completed', 'compensating'], { status: 'compensating', compensatedAt: siteMark(runtime.site) }))) continue;
    if (agent.compensate) await agent.compensate(stepContext(task.workflowId, input, results, agent, runtime), step.result as FallbackOutcome);
    await stepLog.transitionStep(task.workflowId, key, ['compensating'], { status: 'compensated' });
  }
  await stepLog.setSagaStatus(task.workflowId, ['compensating'], 'compensated');
  return { status: 'compensated', failedStep: failed?.step ?? 'unknown', error: failed?.error ?? '' };
}

function stageNamed(workflow: WorkflowDefinition, name: string): StageDefinition {
  const stage = workflow.stages.find((candidate) => candidate.name === name);
  if (!stage) throw new Error(`workflow ${workflow.name} has no stage ${name}`);
  return stage;
}
