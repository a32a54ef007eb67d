import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { ENV, type TableKey } from '../workflow-definition.js';
import { requireEnv } from './env.js';
import { REGION, type Site, edgeSite } from './site.js';
import { openSiteDatabase, siteStores } from './store/site-database.js';
import { TABLE_VARIABLES, dynamoDbStores } from './store/stores.js';
import type { Stores } from './store/types.js';
import type { Task } from './task.js';

/**
 * Everything an agent depends on, handed in as values: where it runs, the stores of its backend,
 * its saga's settings, and how it passes tasks on. `createAgent` builds them from the environment
 * unless given.
 */
export interface AgentDependencies<S = undefined> {
  readonly site: Site;
  readonly stores: Stores;
  /** The saga's own settings (its limits and the like). */
  readonly settings: S;
  /** Sends a task to the next stage's queue. */
  handOff(task: Task): Promise<void>;
  /** Puts a task on the human review queue, with why. */
  escalate(task: Task, reason: string): Promise<void>;
}

/**
 * Hand-off and escalation as sends to SQS FIFO queues: the task's group as message group, its id as
 * deduplication id. At the edge the client points at the shim, which keeps them until the region is back.
 */
export function sqsTaskQueues(
  sqs: SQSClient,
  queues: { readonly nextQueueUrl: () => string; readonly humanReviewQueueUrl: () => string },
): Pick<AgentDependencies, 'handOff' | 'escalate'> {
  const send = async (queueUrl: string, task: Task, body: unknown) => {
    await sqs.send(
      new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: JSON.stringify(body), MessageGroupId: task.group, MessageDeduplicationId: task.taskId }),
    );
  };
  return {
    handOff: (task) => send(queues.nextQueueUrl(), task, task),
    escalate: (task, reason) => send(queues.humanReviewQueueUrl(), task, { ...task, reason }),
  };
}

/**
 * The dependencies the environment configures. With HOLDFAST_EDGE_SITE_ID set the agent runs at
 * that edge site on the database HOLDFAST_EDGE_DATABASE names: an SQLite file, or a `postgres://`
 * (or `postgresql://`) URL when the site's shim nodes share a PostgreSQL database, whose schema it
 * brings up to date first; otherwise in the region, on the DynamoDB tables the stack names
 * (IDEMPOTENCY_TABLE, ...). The saga's settings: what `readSettings` reads. Queues: NEXT_QUEUE_URL
 * and HUMAN_REVIEW_QUEUE_URL, read when first used; the SDK clients take endpoint, region and
 * credentials from the environment as usual (AWS_ENDPOINT_URL points them at the shim at the edge).
 */
export async function dependenciesFromEnvironment<S>(readSettings: (env: NodeJS.ProcessEnv) => S, env: NodeJS.ProcessEnv = process.env): Promise<AgentDependencies<S>> {
  // First: settings that do not read right fail the agent before it opens a store.
  const settings = readSettings(env);
  const edgeSiteId = env[ENV.edgeSiteId];
  let site: Site;
  let stores: Stores;
  if (edgeSiteId) {
    site = edgeSite(edgeSiteId);
    stores = siteStores(await openSiteDatabase(requireEnv(ENV.edgeDatabase, env)));
  } else {
    site = REGION;
    const tables = Object.fromEntries(
      (Object.entries(TABLE_VARIABLES) as [TableKey, string][]).flatMap(([key, variable]) => (env[variable] ? [[key, env[variable]]] : [])),
    );
    stores = dynamoDbStores(new DynamoDBClient({}), tables);
  }
  const queues = sqsTaskQueues(new SQSClient({}), {
    nextQueueUrl: () => requireEnv(ENV.nextQueueUrl, env),
    humanReviewQueueUrl: () => requireEnv(ENV.humanReviewQueueUrl, env),
  });
  return { site, stores, settings, ...queues };
}
