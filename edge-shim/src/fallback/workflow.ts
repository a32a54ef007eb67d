/**
 * Which workflow the edge runs fallback agents for: a module exporting a workflow definition (the
 * same definition the CDK stack deploys), the payments workflow unless told otherwise, and where
 * the stages' entries are; and the workflow's queues at the shim.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GetQueueUrlCommand, QueueDoesNotExist, type SQSClient } from '@aws-sdk/client-sqs';
import type { StageQueues } from '../../../functions/src/edge/index.js';
import {
  DEAD_LETTER_RETENTION_SECONDS,
  humanReviewQueueName,
  isTypeScript,
  stageQueueNames,
  stageVisibilityTimeoutSeconds,
  tsxApiFor,
  type StageDefinition,
  type WorkflowDefinition,
} from '../../../functions/src/edge/index.js';
import type { DeclaredQueue } from '../hybrid/declared-queues.js';

// Run from source (npm start) or compiled (dist/, the `holdfast` command): the payments workflow and
// its agents are beside this module either way, as TypeScript or as JavaScript.
const COMPILED = !import.meta.url.endsWith('.ts');

/** The payments workflow, in this repository (or its build). */
export const DEFAULT_WORKFLOW_MODULE = `${fileURLToPath(new URL(`../../../functions/src/workflows/payments.${COMPILED ? 'js' : 'ts'}`, import.meta.url))}#payments`;

/** What the payments workflow's stage entries are relative to: the repository, or its build. */
export const DEFAULT_WORKFLOW_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export class WorkflowModuleError extends Error {
  override readonly name = 'WorkflowModuleError';
}

export interface LoadedWorkflow {
  readonly workflow: WorkflowDefinition;
  /** The directory stage entries are relative to. */
  readonly entryRoot: string;
  /** The module file the definition came from. */
  readonly modulePath: string;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const looksLikeWorkflow = (value: unknown) => isObject(value) && typeof value.name === 'string' && Array.isArray(value.stages);

/** The nearest directory at or above `start` with a package.json: the project a module belongs to. */
function projectRoot(start: string): string | undefined {
  for (let directory = start; ; directory = dirname(directory)) {
    if (existsSync(join(directory, 'package.json'))) return directory;
    if (dirname(directory) === directory) return undefined;
  }
}

/**
 * Loads a workflow definition from `spec`: `MODULE[#EXPORT]`, MODULE a file path (relative to
 * `cwd`). Without `#EXPORT` the module's default export is used, else its one export that is a
 * workflow definition. Stage entries are relative to `entryRoot` if given, else to the project the
 * module belongs to (the nearest directory above it with a package.json), as the CDK app that
 * deploys the same definition reads them.
 */
export async function loadWorkflowModule(spec: string, options: { entryRoot?: string; cwd?: string } = {}): Promise<LoadedWorkflow> {
  const cwd = options.cwd ?? process.cwd();
  const hash = spec.lastIndexOf('#');
  const file = hash < 0 ? spec : spec.slice(0, hash);
  const exportName = hash < 0 ? undefined : spec.slice(hash + 1);
  if (file === '' || exportName === '') throw new WorkflowModuleError(`give the workflow as MODULE or MODULE#EXPORT, not '${spec}'`);
  const modulePath = resolve(cwd, file);
  if (!existsSync(modulePath) || !statSync(modulePath).isFile()) throw new WorkflowModuleError(`workflow module ${modulePath} does not exist`);

  let exports: Record<string, unknown>;
  try {
    exports = (await importModule(modulePath)) as Record<string, unknown>;
  } catch (error) {
    throw new WorkflowModuleError(`cannot load workflow module ${modulePath}: ${(error as Error).message}`, { cause: error });
  }
  let chosen: unknown;
  if (exportName !== undefined) {
    if (!(exportName in exports)) throw new WorkflowModuleError(`workflow module ${modulePath} has no export named ${exportName}`);
    chosen = exports[exportName];
  } else if (looksLikeWorkflow(exports.default)) {
    chosen = exports.default;
  } else {
    const candidates = Object.keys(exports).filter((name) => looksLikeWorkflow(exports[name]));
    if (candidates.length !== 1) {
      throw new WorkflowModuleError(
        candidates.length === 0
          ? `workflow module ${modulePath} exports no workflow definition (an object with a name and stages)`
          : `workflow module ${modulePath} exports several workflow definitions (${candidates.join(', ')}): name one as ${file}#NAME`,
      );
    }
    chosen = exports[candidates[0]!];
  }
  const workflow = checkWorkflowDefinition(chosen, `${file}${exportName ? `#${exportName}` : ''}`);
  const entryRoot = options.entryRoot !== undefined ? resolve(cwd, options.entryRoot) : (projectRoot(dirname(modulePath)) ?? dirname(modulePath));
  return { workflow, entryRoot, modulePath };
}

/** A module, TypeScript too: run from source, the shim loads it as it loads itself; compiled, through tsx. */
async function importModule(path: string): Promise<unknown> {
  if (!COMPILED || !isTypeScript(path)) return import(pathToFileURL(path).href);
  const { tsImport } = (await import(tsxApiFor(path))) as { tsImport(specifier: string, parentURL: string): Promise<unknown> };
  return tsImport(pathToFileURL(path).href, import.meta.url);
}

/** Checks what the supervisor and the local runner rely on in a definition; throws saying what is wrong. */
export function checkWorkflowDefinition(value: unknown, where: string): WorkflowDefinition {
  const fail = (what: string): never => {
    throw new WorkflowModuleError(`workflow definition ${where}: ${what}`);
  };
  if (!isObject(value)) return fail('is not an object');
  if (typeof value.name !== 'string' || !/^[A-Za-z0-9_-]{1,40}$/.test(value.name)) fail('name must be 1 to 40 letters, digits, - or _');
  if (!Array.isArray(value.stages) || value.stages.length === 0) fail('stages must be a non-empty array');
  const names = new Set<string>();
  (value.stages as unknown[]).forEach((stage, index) => {
    if (!isObject(stage)) return fail(`stages[${index}] is not an object`);
    const label = `stage ${typeof stage.name === 'string' ? stage.name : `[${index}]`}`;
    if (typeof stage.name !== 'string' || !/^[A-Za-z0-9_-]{1,40}$/.test(stage.name)) fail(`${label}: name must be 1 to 40 letters, digits, - or _`);
    if (names.has(stage.name as string)) fail(`${label} appears twice`);
    names.add(stage.name as string);
    if (typeof stage.entry !== 'string' || stage.entry === '') fail(`${label}: entry must name the handler module`);
    if (typeof stage.runsAtEdge !== 'boolean') fail(`${label}: runsAtEdge must be true or false`);
    const whole = (field: string, min: number, max: number) => {
      const number = stage[field];
      if (typeof number !== 'number' || !Number.isInteger(number) || number < min || number > max) fail(`${label}: ${field} must be a whole number from ${min} to ${max}`);
    };
    whole('timeoutSeconds', 1, 900);
    whole('batchSize', 1, 10);
    whole('maxConcurrency', 1, 1000);
    whole('maxReceiveCount', 1, 1000);
    whole('memoryMb', 128, 10240);
  });
  return value as unknown as WorkflowDefinition;
}

/**
 * The stages that run at the edge, each entry resolved under `entryRoot` to a file that exists: a
 * `.ts` entry whose file is not there is taken as compiled, the `.js` beside it (a build).
 */
export function edgeStages(workflow: WorkflowDefinition, entryRoot: string): StageDefinition[] {
  return workflow.stages
    .filter((stage) => stage.runsAtEdge)
    .map((stage) => {
      const entry = isAbsolute(stage.entry) ? stage.entry : resolve(entryRoot, stage.entry);
      const compiled = entry.replace(/\.ts$/, '.js');
      const file = existsSync(entry) ? entry : existsSync(compiled) ? compiled : undefined;
      if (!file) throw new WorkflowModuleError(`the entry of stage ${stage.name} of ${workflow.name}, ${entry}, does not exist (entries are relative to ${entryRoot})`);
      return { ...stage, entry: file };
    });
}

export interface WorkflowQueues {
  /** Every stage's queue and dead-letter queue, by stage name. */
  readonly queues: Record<string, StageQueues>;
  readonly humanReviewQueueUrl: string;
}

/** The workflow's queues at an SQS endpoint (the shim), by the names the stack gives them. */
export async function resolveWorkflowQueues(sqs: SQSClient, workflow: WorkflowDefinition): Promise<WorkflowQueues> {
  const url = async (name: string) => {
    try {
      const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
      return QueueUrl!;
    } catch (error) {
      if (error instanceof QueueDoesNotExist) throw new WorkflowModuleError(`workflow ${workflow.name} needs the queue ${name}, which does not exist at the shim`, { cause: error });
      throw error;
    }
  };
  const queues: Record<string, StageQueues> = {};
  for (const stage of workflow.stages) {
    const names = stageQueueNames(workflow, stage);
    queues[stage.name] = { queueUrl: await url(names.queue), deadLetterQueueUrl: await url(names.deadLetter) };
  }
  return { queues, humanReviewQueueUrl: await url(humanReviewQueueName(workflow)) };
}

/**
 * The workflow's queues as the stack creates them (each stage's FIFO queue, with its visibility
 * timeout and redrive policy, its dead-letter queue, and the human review queue), for the edge to
 * know before it ever reached the region. A redrive policy names its dead-letter queue by an ARN of
 * any account: the edge maps it by name.
 */
export function workflowQueues(workflow: WorkflowDefinition): DeclaredQueue[] {
  const fifo = { FifoQueue: 'true' };
  const queues: DeclaredQueue[] = workflow.stages.flatMap((stage) => {
    const names = stageQueueNames(workflow, stage);
    const RedrivePolicy = JSON.stringify({ deadLetterTargetArn: `arn:aws:sqs:edge:000000000000:${names.deadLetter}`, maxReceiveCount: stage.maxReceiveCount });
    return [
      { name: names.deadLetter, attributes: { ...fifo, MessageRetentionPeriod: String(DEAD_LETTER_RETENTION_SECONDS) } },
      { name: names.queue, attributes: { ...fifo, VisibilityTimeout: String(stageVisibilityTimeoutSeconds(stage)), RedrivePolicy } },
    ];
  });
  return [...queues, { name: humanReviewQueueName(workflow), attributes: fifo }];
}
