import { SqsFifoPartialProcessorAsync, processPartialResponse } from '@aws-lambda-powertools/batch';
import { IdempotencyConfig, IdempotencyValidationError, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import type { BasePersistenceLayer } from '@aws-lambda-powertools/idempotency/persistence';
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics } from '@aws-lambda-powertools/metrics';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { type AgentDependencies, dependenciesFromEnvironment } from './dependencies.js';
import { PermanentError } from './errors.js';
import { HoldfastLogFormatter } from './log-formatter.js';
import { DeadlineExceededError } from './resilience.js';
import { type SagaDefinition, type SagaRuntime, type StageOutcome, runStage } from './saga.js';
import { type Task, parseTask } from './task.js';

/** How long a completed task's stored outcome answers redeliveries (the step log keeps it for good). */
const COMPLETED_RECORD_SECONDS = 24 * 60 * 60;

export type SqsAgentHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

interface Prepared<S> {
  readonly dependencies: AgentDependencies<S>;
  readonly persistence: BasePersistenceLayer;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** The CloudWatch namespace of the agents' metrics (EMF, through the function's log). */
export const METRICS_NAMESPACE = 'Holdfast';

/** The metric each outcome of a task counts under; a task that failed returns to its queue. */
const OUTCOME_METRICS = { completed: 'TasksCompleted', escalated: 'TasksEscalated', compensated: 'TasksCompensated', failed: 'TasksFailed' } as const;

/**
 * The in-progress record must expire with the invocation's deadline. Powertools takes a remaining
 * time of 0 (the deadline has passed, as for a record a batch reaches late) for "unknown" and writes
 * a record that never expires in progress, blocking the task for a day if the worker then dies: a
 * deadline already past is given as 1 ms, so the record is free for the next delivery at once.
 */
function inProgressDeadline(context: Context): Context {
  return { ...context, getRemainingTimeInMillis: () => Math.max(1, context.getRemainingTimeInMillis()) };
}

/**
 * The Lambda handler of one stage's agent. Each SQS record is one task, run at most once per task id
 * (Powertools idempotency), as one step of the workflow's saga. Failed records alone go back to the
 * queue; on a FIFO queue so does the rest of their message group, while other groups carry on
 * (Powertools batch, skipGroupOnError).
 *
 * `dependencies` are the site, stores, saga settings and queues the agent uses; without them they
 * are built from the environment at the first invocation (dependencies.ts), so that the same
 * handler module runs on DynamoDB in the region and on SQLite or PostgreSQL at the edge.
 */
export function createAgent<I, S>(saga: SagaDefinition<I, S>, stageName: string, dependencies?: AgentDependencies<S>): SqsAgentHandler {
  const stageIndex = saga.workflow.stages.findIndex((stage) => stage.name === stageName);
  const stage = saga.workflow.stages[stageIndex];
  if (!stage || !saga.agents[stageName]) throw new Error(`workflow ${saga.workflow.name} has no stage ${stageName}`);
  // Made at the first invocation, when the environment is complete, then kept for the container;
  // made again at the next one if it failed (a database not reachable yet).
  let prepared: Promise<Prepared<S>> | undefined;
  const prepare = async (): Promise<Prepared<S>> => {
    const given = dependencies ?? (await dependenciesFromEnvironment(saga.settingsFromEnvironment));
    if (given.site.atEdge && !stage.runsAtEdge) {
      throw new Error(`stage ${stageName} of ${saga.workflow.name} does not run at the edge (runsAtEdge: false); its tasks wait for the region`);
    }
    return {
      dependencies: given,
      persistence: given.stores.idempotencyLayer(),
      logger: new Logger({ serviceName: saga.workflow.name, persistentKeys: { stage: stageName, site: given.site.id }, logFormatter: new HoldfastLogFormatter() }),
      // At the edge POWERTOOLS_METRICS_DISABLED is set (edgeAgentEnvironment): no CloudWatch reads the lines there.
      metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName: saga.workflow.name, defaultDimensions: { stage: stageName } }),
    };
  };

  return async (event, context) => {
    prepared ??= prepare().catch((error: unknown) => {
      prepared = undefined;
      throw error;
    });
    const ready = await prepared;
    // The invocation's request id, function and cold start on every line it logs.
    ready.logger.addContext(context);
    ready.metrics.captureColdStartMetric(context.functionName);
    try {
      return await handleBatch(event, context, ready);
    } finally {
      ready.metrics.publishStoredMetrics();
    }
  };

  async function handleBatch(event: SQSEvent, context: Context, { dependencies: given, persistence, logger, metrics }: Prepared<S>): Promise<SQSBatchResponse> {
    const runtime: SagaRuntime<S> = {
      site: given.site,
      stores: given.stores,
      settings: given.settings,
      deadline: { remainingMs: () => context.getRemainingTimeInMillis() },
      handOff: given.handOff,
      escalate: given.escalate,
    };
    // Per invocation: the in-progress record must expire with this invocation's own deadline.
    const runTaskOnce = makeIdempotent((task: Task): Promise<StageOutcome> => runStage(saga, stageIndex, task, runtime), {
      persistenceStore: persistence,
      keyPrefix: `${saga.workflow.name}.${stageName}`,
      config: new IdempotencyConfig({
        eventKeyJmesPath: 'taskId',
        // The same task id with any other content is refused (IdempotencyValidationError, see runTask).
        payloadValidationJmesPath: '[workflow, workflowId, stage, group, input]',
        throwOnNoIdempotencyKey: true,
        expiresAfterSeconds: COMPLETED_RECORD_SECONDS,
        lambdaContext: inProgressDeadline(context),
      }),
    });

    const runTask = async (task: Task): Promise<StageOutcome> => {
      // A record the batch reaches after the deadline is not started: it returns to the queue.
      if (context.getRemainingTimeInMillis() <= 0) throw new DeadlineExceededError(`no time left in the invocation to start task ${task.taskId}`);
      try {
        return await runTaskOnce(task);
      } catch (error) {
        if (!(error instanceof IdempotencyValidationError)) throw error;
        throw new PermanentError(`task ${task.taskId} was already received with a different payload`, { cause: error });
      }
    };

    const processRecord = async (record: SQSRecord): Promise<StageOutcome> => {
      try {
        const task = parseTask(record.body);
        if (task.workflow !== saga.workflow.name || task.stage !== stageName) {
          throw new PermanentError(`task for ${task.workflow}/${task.stage} reached the ${saga.workflow.name}/${stageName} agent`);
        }
        const outcome = await runTask(task);
        logger.info('task done', { taskId: task.taskId, messageId: record.messageId, outcome });
        metrics.addMetric(OUTCOME_METRICS[outcome.status], MetricUnit.Count, 1);
        return outcome;
      } catch (error) {
        logger.error('task failed; the message returns to its queue', { messageId: record.messageId, error: error as Error });
        metrics.addMetric(OUTCOME_METRICS.failed, MetricUnit.Count, 1);
        throw error;
      }
    };
    return processPartialResponse(event, processRecord, new SqsFifoPartialProcessorAsync(), { context, skipGroupOnError: true, throwOnFullBatchFailure: false });
  }
}
