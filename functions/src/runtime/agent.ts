import { SqsFifoPartialProcessorAsync, processPartialResponse } from '@aws-lambda-powertools/batch';
import { IdempotencyConfig, IdempotencyValidationError, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { ENV, TABLES } from '../workflow-definition.js';
import { requireEnv } from './env.js';
import { PermanentError } from './errors.js';
import { type SagaDefinition, type SagaRuntime, type StageOutcome, runStage } from './saga.js';
import { documentClient } from './store/dynamodb-client.js';
import { DynamoDbStepLog } from './store/dynamodb-step-log.js';
import { type Task, parseTask } from './task.js';

/** How long a completed task's stored outcome answers redeliveries (the step log keeps it for good). */
const COMPLETED_RECORD_SECONDS = 24 * 60 * 60;

export type SqsAgentHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

interface Shared {
  readonly persistence: DynamoDBPersistenceLayer;
  readonly stepLog: DynamoDbStepLog;
  readonly sqs: SQSClient;
  readonly logger: Logger;
}

/**
 * The Lambda handler of one stage's agent. Each SQS record is one task, run at most once per task id
 * (Powertools idempotency on DynamoDB), as one step of the workflow's saga. Failed records alone go
 * back to the queue; on a FIFO queue so does the rest of their message group, while other groups
 * carry on (Powertools batch, skipGroupOnError).
 */
export function createAgent<I>(saga: SagaDefinition<I>, stageName: string): SqsAgentHandler {
  const stageIndex = saga.workflow.stages.findIndex((stage) => stage.name === stageName);
  if (stageIndex < 0 || !saga.agents[stageName]) throw new Error(`workflow ${saga.workflow.name} has no stage ${stageName}`);
  // Created at the first invocation, when the environment is complete, then kept for the container.
  let shared: Shared | undefined;

  return async (event, context) => {
    shared ??= {
      persistence: new DynamoDBPersistenceLayer({
        tableName: requireEnv(ENV.idempotencyTable),
        keyAttr: TABLES.idempotency.partitionKey,
        expiryAttr: TABLES.idempotency.ttlAttribute,
        awsSdkV3Client: new DynamoDBClient({}),
      }),
      stepLog: new DynamoDbStepLog(documentClient(), requireEnv(ENV.workflowTable)),
      sqs: new SQSClient({}),
      logger: new Logger({ serviceName: saga.workflow.name, persistentKeys: { stage: stageName } }),
    };
    const { persistence, stepLog, sqs, logger } = shared;
    const send = async (queueUrl: string, task: Task, body: unknown) => {
      await sqs.send(
        new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(body), MessageGroupId: task.group, MessageDeduplicationId: task.taskId }),
      );
    };
    const runtime: SagaRuntime = {
      stepLog,
      deadline: { remainingMs: () => context.getRemainingTimeInMillis() },
      handOff: (task) => send(requireEnv(ENV.nextQueueUrl), task, task),
      escalate: (task, reason) => send(requireEnv(ENV.humanReviewQueueUrl), task, { ...task, reason }),
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
        lambdaContext: context,
      }),
    });

    const runTask = async (task: Task): Promise<StageOutcome> => {
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
        return outcome;
      } catch (error) {
        logger.error('task failed; the message returns to its queue', { messageId: record.messageId, error: error as Error });
        throw error;
      }
    };
    return processPartialResponse(event, processRecord, new SqsFifoPartialProcessorAsync(), { context, skipGroupOnError: true, throwOnFullBatchFailure: false });
  };
}
