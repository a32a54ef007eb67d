import { ENV, type StageDefinition, type WorkflowDefinition } from '../workflow-definition.js';
import type { AwsConnection, StageQueues } from './connection.js';
import type { FunctionIdentity } from './context.js';

/** The variables Lambda sets for a function, plus the connection, then the caller's and the stage's own. */
export function stageEnvironment(options: {
  readonly workflow: WorkflowDefinition;
  readonly stage: StageDefinition;
  readonly identity: FunctionIdentity;
  readonly aws: AwsConnection;
  readonly queues: Readonly<Record<string, StageQueues>>;
  readonly environment?: Readonly<Record<string, string>>;
}): Record<string, string> {
  const { aws, workflow, stage, identity } = options;
  const index = workflow.stages.indexOf(stage);
  const next = workflow.stages[index + 1];
  const inherited = Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined));
  if (aws.credentials) delete inherited.AWS_SESSION_TOKEN;
  return {
    ...inherited,
    AWS_REGION: aws.region,
    AWS_DEFAULT_REGION: aws.region,
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
    AWS_LAMBDA_FUNCTION_NAME: identity.functionName,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    // Powertools reports a cold start only for this initialization type, as Lambda sets it.
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: identity.memoryLimitInMB,
    AWS_LAMBDA_LOG_GROUP_NAME: identity.logGroupName,
    AWS_LAMBDA_LOG_STREAM_NAME: identity.logStreamName,
    ...(aws.endpoint && { AWS_ENDPOINT_URL: aws.endpoint }),
    ...(aws.credentials && {
      AWS_ACCESS_KEY_ID: aws.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: aws.credentials.secretAccessKey,
      ...(aws.credentials.sessionToken && { AWS_SESSION_TOKEN: aws.credentials.sessionToken }),
    }),
    ...options.environment,
    ...(next && { [ENV.nextQueueUrl]: options.queues[next.name]!.queueUrl }),
  };
}
