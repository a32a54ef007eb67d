import { edgeSite } from '../runtime/site.js';
import { isPostgresLocation } from '../runtime/store/site-database.js';
import { ENV, type WorkflowDefinition } from '../workflow-definition.js';

export interface EdgeAgentEnvironmentOptions {
  readonly workflow: WorkflowDefinition;
  /** The stage to run; it must be marked `runsAtEdge`. */
  readonly stage: string;
  /** This edge site's id (letters, digits, `_`, `.`, `-`; not `region`): its writer id in counters and checkpoints. */
  readonly siteId: string;
  /**
   * The edge database: a file (SQLite, next to the shim's own; created on first use), or a
   * `postgres://` (or `postgresql://`) URL, the database the site's shim nodes share.
   */
  readonly database: string;
  /** The shim's URL of each stage's queue, by stage name (the next stage's is the one used). */
  readonly queueUrls: Readonly<Record<string, string>>;
  /** The shim's URL of the workflow's human review queue. */
  readonly humanReviewQueueUrl: string;
}

/**
 * The environment variables that make a stage's agent a fallback agent at an edge site: stores in
 * `database` (SQLite or PostgreSQL) instead of DynamoDB, this site in the step context, hand-off to the next
 * stage's queue and escalation to the human review queue at the shim. Give them to the local runner
 * (`environment`) running the stage against the shim, along with the workflow's own configuration
 * (gateway URLs, edge limits); the runner adds the AWS endpoint, region and credentials. Run one
 * stage per runner, with a workflow of that stage alone: a runner given several stages sets each
 * one's NEXT_QUEUE_URL to the stage after it in the workflow it was given.
 */
export function edgeAgentEnvironment(options: EdgeAgentEnvironmentOptions): Record<string, string> {
  const { workflow } = options;
  const index = workflow.stages.findIndex((stage) => stage.name === options.stage);
  const stage = workflow.stages[index];
  if (!stage) throw new Error(`workflow ${workflow.name} has no stage ${options.stage}`);
  if (!stage.runsAtEdge) throw new Error(`stage ${stage.name} of ${workflow.name} does not run at the edge (runsAtEdge: false)`);
  edgeSite(options.siteId);
  if (!options.database) throw new Error('the edge database (a file or a postgres:// URL) is required');
  // A URL of another scheme is refused here, rather than by each agent at its first task.
  isPostgresLocation(options.database);
  const next = workflow.stages[index + 1];
  const nextQueueUrl = next && options.queueUrls[next.name];
  if (next && !nextQueueUrl) throw new Error(`no queue URL given for stage ${next.name}, which ${stage.name} hands its tasks to`);
  return {
    [ENV.edgeSiteId]: options.siteId,
    [ENV.edgeDatabase]: options.database,
    [ENV.humanReviewQueueUrl]: options.humanReviewQueueUrl,
    ...(nextQueueUrl && { [ENV.nextQueueUrl]: nextQueueUrl }),
    // The handlers' metrics are CloudWatch EMF lines, which nothing reads at the edge: the shim's /metrics counts there.
    POWERTOOLS_METRICS_DISABLED: 'true',
  };
}
