/**
 * An edge wired from a deployed stack (`--stack-outputs FILE[#STACK]`): the file `cdk deploy
 * --outputs-file` writes, read as it is. From the stack's outputs (their names are STACK_OUTPUTS)
 * the edge takes the region and its SQS endpoint, the tables its sync writes to, and the workflow's
 * name, under which it declares the workflow's queues and runs its fallback agents.
 */
import { readFileSync } from 'node:fs';
import { STACK_OUTPUTS, type WorkflowDefinition } from '../../functions/src/edge/index.js';
import { ConfigError, type ShimConfig } from './config.js';
import { workflowQueues } from './fallback/workflow.js';

export interface StackWiring {
  readonly stackName: string;
  readonly region: string;
  /** The region's SQS endpoint: where the stack's queue URLs point. */
  readonly sqsEndpoint: string;
  /** The name the stack deployed the workflow under, which its queues are named after. */
  readonly workflowName: string;
  /** The tables the sync writes to. */
  readonly tables: { readonly idempotency: string; readonly workflow: string; readonly state: string };
  /** The names of the stack's queues. */
  readonly queueNames: ReadonlySet<string>;
}

/** Reads `FILE[#STACK]`: the outputs of STACK, or of the one stack the file holds. Throws a ConfigError saying what is missing. */
export function readStackOutputs(spec: string): StackWiring {
  const hash = spec.lastIndexOf('#');
  const file = hash < 0 ? spec : spec.slice(0, hash);
  const wanted = hash < 0 ? undefined : spec.slice(hash + 1);
  let document: unknown;
  try {
    document = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(`cannot read the stack outputs ${file} (written by cdk deploy --outputs-file): ${(error as Error).message}`);
  }
  if (typeof document !== 'object' || document === null) throw new ConfigError(`the stack outputs ${file} must hold {"<stack>": {"<output>": "<value>", ...}}`);
  const stacks = Object.keys(document);
  if (wanted === undefined && stacks.length !== 1) {
    throw new ConfigError(`the stack outputs ${file} hold ${stacks.length === 0 ? 'no stack' : `the stacks ${stacks.join(', ')}`}: name one as ${file}#STACK`);
  }
  const stackName = wanted ?? stacks[0]!;
  const outputs = (document as Record<string, unknown>)[stackName];
  if (typeof outputs !== 'object' || outputs === null) throw new ConfigError(`the stack outputs ${file} have no stack ${stackName} (they have ${stacks.join(', ') || 'none'})`);
  const output = (name: string): string => {
    const value = (outputs as Record<string, unknown>)[name];
    if (typeof value !== 'string' || value === '') throw new ConfigError(`the outputs of stack ${stackName} in ${file} lack ${name}: was the stack deployed from this version of Holdfast?`);
    return value;
  };
  const humanReview = output(STACK_OUTPUTS.humanReviewQueueUrl);
  if (!URL.canParse(humanReview)) throw new ConfigError(`the output ${STACK_OUTPUTS.humanReviewQueueUrl} of stack ${stackName} is not a queue URL: ${humanReview}`);
  const queueUrls = Object.entries(outputs).filter(([name, value]) => name.endsWith(STACK_OUTPUTS.queueUrlSuffix) && typeof value === 'string' && URL.canParse(value));
  return {
    stackName,
    region: output(STACK_OUTPUTS.region),
    sqsEndpoint: new URL(humanReview).origin,
    workflowName: output(STACK_OUTPUTS.workflowName),
    tables: {
      idempotency: output(STACK_OUTPUTS.tables.idempotency),
      workflow: output(STACK_OUTPUTS.tables.workflow),
      state: output(STACK_OUTPUTS.tables.state),
    },
    queueNames: new Set(queueUrls.map(([, url]) => decodeURIComponent(new URL(url as string).pathname.split('/').pop()!))),
  };
}

/**
 * The configuration with what the stack says where no option said it: the upstream (an option
 * still names another endpoint, such as an emulator's), its region and the sync's tables. A region
 * given other than the stack's is refused: requests signed for it would never be taken there.
 */
export function withStackWiring(config: ShimConfig, wiring: StackWiring): ShimConfig {
  if (config.upstreamRegion !== undefined && config.upstreamRegion !== wiring.region) {
    throw new ConfigError(
      `the stack ${wiring.stackName} is in ${wiring.region}, but the upstream region given (--upstream-region, or AWS_REGION) is ${config.upstreamRegion}: give ${wiring.region}, or none`,
    );
  }
  return {
    ...config,
    upstream: config.upstream ?? wiring.sqsEndpoint,
    upstreamRegion: wiring.region,
    regionTables: { ...wiring.tables, ...config.regionTables },
  };
}

/** The workflow as the stack deployed it: under the stack's name for it, every queue of it among the stack's. */
export function deployedWorkflow(workflow: WorkflowDefinition, wiring: StackWiring): WorkflowDefinition {
  const deployed = { ...workflow, name: wiring.workflowName };
  const missing = workflowQueues(deployed)
    .map((queue) => queue.name)
    .filter((name) => !wiring.queueNames.has(name));
  if (missing.length > 0) {
    throw new ConfigError(`the stack ${wiring.stackName} has no queue ${missing.join(', ')}: was it deployed from this workflow definition (--workflow)?`);
  }
  return deployed;
}
